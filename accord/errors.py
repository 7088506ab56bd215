"""The error of the user's input: what the command line prints as one line, without a traceback.

Every error accord raises about what a user asked for or gave it (a config, a flag, a data set, a run folder, a
file) is a :class:`UserError` (``ConfigError``, the data set's, the export's... are kinds of it); any other
exception that ends a command is a bug in accord and shows its traceback.
"""


class UserError(ValueError):
    """Input accord cannot use: a config, a flag, a data set, a file or a folder; the message is one line for the
    user, naming the thing and what would do."""
