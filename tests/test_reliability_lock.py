"""One writer per run folder (issue 17, item 5): an OS file lock, released when its holder dies."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from reliability_runs import CHILD_ENV, REPO, train_args

from accord.cli import main
from accord.engine.lock import RunLock, RunLocked

pytestmark = pytest.mark.usefixtures("one_thread")


def wait_until(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.05)


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_dies_with_it(fmnist_dir, tmp_path, capsys):
    """As when a killed `accord grid` is run again while its orphaned cell still trains: the second
    `train --resume` in the same folder is refused, and metrics.jsonl never gets an epoch twice."""
    out = tmp_path / "cell"
    child = subprocess.Popen(
        [sys.executable, "-m", "accord", *train_args(fmnist_dir, out, epochs=500)],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: (out / "checkpoint-last.pt").is_file(), child)
        assert main(["train", "--resume", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"another accord process (pid {child.pid}) is training in this folder" in err
        assert err.count("\n") == 1
        assert main([*train_args(fmnist_dir, out), "--overwrite"]) == 2  # nor may it be replaced meanwhile
        assert "another accord process" in capsys.readouterr().err
        assert (out / "checkpoint-last.pt").is_file()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == sorted(set(epochs))  # one writer: each epoch once
    with RunLock(out):  # SIGKILL released it
        pass


def test_lock_is_exclusive_within_and_across_processes(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLocked, match=r"pid \d+"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire()  # released on exit
