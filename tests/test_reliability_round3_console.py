"""Round three: Ctrl-C while starting, a closed or full stdout: one line, never a traceback or a lost run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from reliability_runs import CHILD_ENV, REPO, train_args


@pytest.mark.parametrize("delay", [0.2, 0.6])
def test_sigint_while_starting_is_one_line_and_exit_130(fmnist_dir, tmp_path, delay):
    child = subprocess.Popen(
        [sys.executable, "-m", "accord", *train_args(fmnist_dir, tmp_path / "run")],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(delay)  # inside the imports (torch takes seconds)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("accord: ") and "Traceback" not in err, err
