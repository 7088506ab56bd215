"""accord's warnings: library code logs with ``logging.getLogger(__name__)`` (as timm does), and a module whose
warnings the command line shows gets its logger from :func:`logger`, which writes each record to the current stderr
as the command line's lines read: ``accord: warning: ...``.

Each such module logger has that one handler and does not propagate, so a script calling accord sees the same lines
as the ``accord`` command, not twice through its own handlers; the other loggers of accord (``accord.timm_loop``'s, in
timm's loop) are left to the application. An application routing a module's warnings elsewhere replaces the
handler: ``logging.getLogger("accord.data.datasets").handlers.clear()`` and ``.propagate = True``.
"""

from __future__ import annotations

import logging
import sys


class StderrHandler(logging.Handler):
    """Writes ``accord: <level>: <message>`` to the current ``sys.stderr`` (a redirected one included)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"accord: {record.levelname.lower()}: {record.getMessage()}"

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's rule: a failed write never ends the program
            self.handleError(record)


def logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` for a module of accord, given its stderr handler (once)."""
    log = logging.getLogger(name)
    if not any(isinstance(h, StderrHandler) for h in log.handlers):
        log.addHandler(StderrHandler())
        log.propagate = False
    return log
