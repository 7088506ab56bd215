"""Round three, data loss: the run folder's lock holds whatever happens to its pid file."""

from __future__ import annotations

import json
import signal

import pytest
from tiny_runs import QUIET, start_long_run, tiny_config, wait_until

from accord.cli import main
from accord.engine import fit
from accord.engine.lock import RunLock, RunLocked

pytestmark = pytest.mark.usefixtures("one_thread")


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
