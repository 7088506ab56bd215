"""The library's warnings go through ``logging`` (a handler of the application's sees them) and still reach stderr as
the command line's ``accord: warning: ...`` lines; accord's other loggers (timm's loop) stay the application's."""

from __future__ import annotations

import logging
import os

import accord.timm_loop  # noqa: F401  (its loggers exist)
from accord.engine import run


def test_a_library_warning_is_a_log_record_and_a_stderr_line(capsys):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    run.log.addHandler(keep)
    workers = 10**6 + os.getpid()  # said once per number: one no other test asks for
    try:
        cpus = run.loader_workers(workers)
    finally:
        run.log.removeHandler(keep)
    assert [r.levelno for r in records] == [logging.WARNING]
    assert (
        capsys.readouterr().err
        == f"accord: warning: workers: {workers} is more than the {cpus} CPUs here; using {cpus}\n"
    )


def test_accords_other_loggers_are_left_to_the_application():
    assert logging.getLogger("accord").propagate and not logging.getLogger("accord").handlers
    assert logging.getLogger("accord.timm_loop.tasks").propagate
