"""The one error a config raises."""


class ConfigError(ValueError):
    """A config that cannot run; the message is one line meant for the user."""
