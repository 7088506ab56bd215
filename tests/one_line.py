"""The check of a command's stderr shared by the error tests: one line, no traceback, naming each part."""

from __future__ import annotations

import pytest


def one_line(capsys: pytest.CaptureFixture, *parts: str) -> str:
    """The captured stderr, asserted to be one line without a traceback that holds each of ``parts``."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, err
    return err
