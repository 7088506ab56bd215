"""The error of export and import."""


class ExportError(ValueError):
    """A checkpoint or state dict that cannot be exported or converted; the message says why."""
