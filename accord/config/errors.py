"""The one error a config raises."""

from ..errors import UserError


class ConfigError(UserError):
    """A config that cannot run; the message is one line meant for the user."""
