"""accord's log: library code logs with ``logging.getLogger(__name__)`` (as timm does), and the ``accord`` logger
writes each record to the current stderr as the command line's lines read: ``accord: warning: ...``.

:func:`logger` gives the ``accord`` logger that handler once, so a script calling accord sees the same lines as
the ``accord`` command, and the records do not reach the application's own handlers twice (``propagate`` off).
An application routing accord's records elsewhere replaces it: ``logging.getLogger("accord").handlers.clear()``
and ``logging.getLogger("accord").propagate = True``.
"""

from __future__ import annotations

import logging
import sys

ROOT = "accord"


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
    """``logging.getLogger(name)`` for a module of accord, the ``accord`` logger given its stderr handler."""
    root = logging.getLogger(ROOT)
    if not any(isinstance(h, StderrHandler) for h in root.handlers):
        root.addHandler(StderrHandler())
        root.propagate = False
    return logging.getLogger(name)
