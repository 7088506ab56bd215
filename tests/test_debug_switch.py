"""ACCORD_DEBUG: a ValueError or OSError that ends a command is one line, or with the switch its traceback
(here a ValueError of `accord predict`, raised before it reads anything)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ARGV = [sys.executable, "-m", "accord", "predict", "no-run", "no-image.png", "--batch-size", "0"]


@pytest.mark.parametrize("value", ["", "0", "1"])
def test_the_switch_shows_the_traceback_only_when_set(value, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "ACCORD_DEBUG": value}
    done = subprocess.run(ARGV, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    if value in ("", "0"):
        assert len(lines) == 1 and lines[0].startswith("accord: error:"), done.stderr
    else:
        assert lines[0] == "Traceback (most recent call last):", done.stderr
