"""One writer per run folder: an OS file lock, released when its holder dies, that holds whatever happens to its
pid file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest
from tiny_runs import CHILD_ENV, QUIET, REPO, start_long_run, tiny_config, train_args, wait_until

from accord.cli import main
from accord.engine import fit
from accord.engine.lock import RunLock, RunLocked

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_second_writer_is_refused_naming_the_holder_and_the_lock_dies_with_it(fmnist_dir, tmp_path, capsys):
    """As when a killed `accord grid` is run again while its orphaned cell still trains: the second
    `train --resume` in the same folder is refused, and metrics.jsonl never gets an epoch twice."""
    out = tmp_path / "cell"
    child = start_long_run(fmnist_dir, out)
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


@pytest.mark.slow
def test_a_grid_killed_and_run_again_does_not_start_a_second_writer(fmnist_dir, tmp_path):
    """SIGKILL to the `accord grid` parent only: its cell keeps training. Running the grid again must not
    start a second `train --resume` in the cell's folder."""
    out = tmp_path / "grid"
    args = [
        "grid", "--models", "FashionMNIST-ResNet8", "--methods", "ce", "--seeds", "1", "--epochs", "500",
        "--train-subset", "64", "--out", str(out), "--set", f"data_dir={fmnist_dir}", "--set", "batch_size=32",
        "--set", "lr_batch=32", "--set", "workers=0", "--set", "val_fraction=0.2",
    ]  # fmt: skip
    cell = out / "FashionMNIST-ResNet8-standard" / "seed0"
    grid = subprocess.Popen(
        [sys.executable, "-m", "accord", *args], cwd=REPO, env=CHILD_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    orphan = None
    try:
        wait_until(lambda: (cell / "checkpoint-last.pt").is_file() and (cell / ".accord.lock").stat().st_size, grid)
        orphan = int((cell / ".accord.lock").read_text())
        grid.send_signal(signal.SIGKILL)  # the parent only: the cell's process lives on
        grid.wait()
        os.kill(orphan, 0)  # still running
        assert main(args) == 1  # the cell is refused, so the grid is unfinished
        log = (cell / "train.log").read_text()
        assert f"another accord process (pid {orphan}) is training in this folder" in log
        epochs = [json.loads(line)["epoch"] for line in (cell / "metrics.jsonl").read_text().splitlines()]
        assert epochs == sorted(set(epochs))
    finally:
        for pid in (grid.pid, orphan):  # the cell runs in its own process group, so each is ended by its pid
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    fit(tiny_config(fmnist_dir), out, log=QUIET)
    users = tmp_path / "notes.txt"
    users.write_text("my notes\n")
    (out / ".accord.lock").unlink()
    (out / ".accord.lock").symlink_to(users)
    assert main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert ".accord.lock: is a symlink" in err and err.count("\n") == 1
    assert users.read_text() == "my notes\n"


def test_the_lock_holds_when_its_file_is_deleted(tmp_path):
    with RunLock(tmp_path):
        (tmp_path / ".accord.lock").unlink()
        with pytest.raises(RunLocked, match="pid unknown"):
            RunLock(tmp_path).acquire()


def test_deleting_the_lock_file_of_a_training_process_lets_no_second_writer_in(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "cell"
    child = start_long_run(fmnist_dir, out)
    try:
        wait_until(lambda: (out / "checkpoint-last.pt").is_file(), child)
        (out / ".accord.lock").unlink()
        assert main(["train", "--resume", str(out)]) == 2
        assert "another accord process" in capsys.readouterr().err
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == sorted(set(epochs))
