"""The error of export and import."""

from ..errors import UserError


class ExportError(UserError):
    """A checkpoint or state dict that cannot be exported or converted; the message says why."""
