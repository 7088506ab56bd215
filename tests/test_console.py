"""Ctrl-C while starting, a closed or full stdout: one line, never a traceback or a lost run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from tiny_runs import CHILD_ENV, REPO, train_args


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


def test_a_closed_stdout_never_stops_the_run(fmnist_dir, tmp_path):
    """`accord train ... | head -1`: the reader goes after the first line; the run finishes all the same."""
    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "accord", *train_args(fmnist_dir, out, epochs=3)],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )  # fmt: skip
    child.stdout.readline()
    child.stdout.close()  # as `head -1` exits
    err = child.stderr.read()
    assert child.wait(timeout=120) == 0, err
    assert (out / "summary.json").is_file() and len((out / "metrics.jsonl").read_text().splitlines()) == 3
    assert err.count("accord: stdout failed (Broken pipe); going on without console output") == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_full_stdout_never_stops_the_run(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "accord", *train_args(fmnist_dir, out)],
            cwd=REPO, env=CHILD_ENV, stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "summary.json").is_file()
    assert done.stderr.count("accord: stdout failed (No space left on device)") == 1, done.stderr
    assert "Exception ignored" not in done.stderr
