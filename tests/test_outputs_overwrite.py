"""Outputs never overwrite anything by surprise.

``export``, ``eval --corruptions`` and ``import-agmax`` refuse an existing output file unless
``--overwrite``, and never write over a run's own files; ``train`` keeps files it did not name itself and
creates its ``--out`` folder only once the run is known to be buildable; ``compare`` refuses existing runs;
``--overwrite`` replaces only a regular file, never a device, FIFO, socket or symlink.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest
import torch
from tiny_runs import TINY, train_args

from accord.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def run(tiny_run: Path) -> Path:
    return tiny_run


def run_digests(run: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(run.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{run}", "--out", "{run}/checkpoint-best.pt"],
        ["export", "{run}/checkpoint-last.pt", "--out", "{run}/metrics.jsonl"],
        ["export", "{run}", "--out", "{run}/summary.json", "--overwrite"],
        ["eval", "--checkpoint", "{run}/checkpoint-last.pt", "--corruptions", "--limit", "5",
         "--out", "{run}/checkpoint-best.pt"],
        ["eval", "--checkpoint", "{run}/checkpoint-last.pt", "--corruptions", "--limit", "5",
         "--out", "{run}/config.yaml", "--overwrite"],
    ],
)  # fmt: skip
def test_commands_never_write_over_a_runs_own_files(run, argv, capsys):
    before = run_digests(run)
    assert main([a.format(run=run) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "is a file of the run in" in err and err.count("\n") == 1
    assert run_digests(run) == before


def test_an_existing_output_is_refused_unless_overwrite(run, tmp_path, capsys):
    target = tmp_path / "thesis.safetensors"
    target.write_bytes(b"my own file")
    assert main(["export", str(run), "--out", str(target)]) == 2
    assert "already exists; use --overwrite" in capsys.readouterr().err
    assert target.read_bytes() == b"my own file"
    assert main(["export", str(run), "--out", str(target), "--overwrite"]) == 0
    assert target.read_bytes() != b"my own file"

    report = tmp_path / "notes.json"
    report.write_text("mine")
    argv = ["eval", "--checkpoint", str(run / "checkpoint-last.pt"), "--corruptions", "jpeg", "--limit", "5"]
    assert main([*argv, "--out", str(report)]) == 2  # refused before the evaluation runs
    assert report.read_text() == "mine"
    assert main([*argv, "--out", str(report), "--overwrite"]) == 0 and report.read_text() != "mine"


def test_import_agmax_refuses_an_existing_output(tmp_path, capsys):
    target = tmp_path / "r50.pt"
    target.write_bytes(b"keep")
    torch.save({"model_state_dict": {}}, tmp_path / "src.pth")
    assert main(["import-agmax", str(tmp_path / "src.pth"), "--arch", "resnet50", "--out", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err and target.read_bytes() == b"keep"


def test_an_output_under_a_file_is_one_line(run, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["export", str(run), "--out", str(tmp_path / "file" / "m.safetensors")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# ------------------------------------------------------------------------- train: files it did not name


def test_train_keeps_the_users_temp_files_and_validates_first(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / ".thesis.tmp").write_text("three years of work")
    assert main([*train_args(fmnist_dir, out), "--set", "model=NoSuchNet"]) == 2
    assert "unknown model 'NoSuchNet'" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [".thesis.tmp"]  # nothing deleted, nothing written

    (out / ".checkpoint-last.pt.k3j2.tmp").write_bytes(b"half of accord's own write")
    (out / "config.yaml").write_text("a run was here\n")
    (out / ".accord-run.json").write_text('{"run_id": "0"}\n')  # accord's mark: the run files are its own
    assert main([*train_args(fmnist_dir, out), "--overwrite"]) == 0
    assert (out / ".thesis.tmp").read_text() == "three years of work"
    assert not (out / ".checkpoint-last.pt.k3j2.tmp").exists()  # accord's own orphan of a killed write


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "model=NoSuchNet"], "unknown model 'NoSuchNet'"),
        (["--set", "view_policies=[nosuch, crop-flip]"], "unknown token 'nosuch'"),
        (["--dataset", "nosuch"], "'dataset': 'nosuch' is not one of fashion_mnist"),
    ],
)
def test_unknown_model_policy_or_dataset_creates_no_folder(fmnist_dir, tmp_path, extra, message, capsys):
    out = tmp_path / "new" / "run"
    assert main([*train_args(fmnist_dir, out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "new").exists()


def test_out_that_is_a_file_or_under_a_file_is_one_line(fmnist_dir, tmp_path, capsys):
    (tmp_path / "f").write_text("not a folder")
    for out, message in ((tmp_path / "f", "is a file, not a folder"), (tmp_path / "f" / "run", "is a file")):
        assert main(train_args(fmnist_dir, out)) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert (tmp_path / "f").read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_one_line(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(train_args(fmnist_dir, out)) == 2
    finally:
        out.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err


def test_read_only_out_is_refused_by_the_lock_file_too(tmp_path, monkeypatch):
    """As root (which writes anyway) the lock file's open is the first write; a failure there is one line."""
    from accord.engine.lock import RunLock
    from accord.engine.runfiles import RunFolderError

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("accord.engine.lock.os.open", refuse)
    with pytest.raises(RunFolderError, match="cannot write in this folder"):
        RunLock(tmp_path).acquire()


# ------------------------------------------------------------------------------------ compare: no silent replace


def test_compare_refuses_existing_runs_unless_overwrite(fmnist_dir, tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in TINY.items() if k not in ("epochs", "train_subset")]
    argv = ["compare", "--config", "FashionMNIST-ResNet8-standard", "--methods", "ce", "--data-dir", str(fmnist_dir),
            "--epochs", "1", "--train-subset", "64", *sets, "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    run = tmp_path / "FashionMNIST-ResNet8-standard"
    before = run_digests(run)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{run} already holds a run (" in err and "; use --overwrite" in err and err.count("\n") == 1
    assert run_digests(run) == before
    assert main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize("command", ["plot", "bench"])
def test_plot_and_bench_never_write_over_a_run_file(run, command, capsys):
    before = run_digests(run)
    argv = ["plot", str(run)] if command == "plot" else ["bench"]
    assert main([*argv, "--out", str(run / "checkpoint-best.pt")]) == 2
    assert "is a file of the run in" in capsys.readouterr().err
    assert run_digests(run) == before


def special_files(folder: Path) -> dict[str, Path]:
    """A FIFO, a socket, a symlink to a user's file and (as root) a character device."""
    made = {"fifo": folder / "fifo"}
    os.mkfifo(made["fifo"])
    made["socket"] = folder / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(made["socket"]))
    user_file = folder / "thesis.txt"
    user_file.write_text("mine")
    made["symlink"] = folder / "link.safetensors"
    made["symlink"].symlink_to(user_file)
    if os.geteuid() == 0:
        made["device"] = folder / "null-device"
        os.mknod(made["device"], 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return made


@pytest.mark.parametrize("command", ["export", "eval"])
def test_overwrite_never_replaces_a_device_fifo_socket_or_symlink(run, tmp_path, command, capsys):
    for kind, target in special_files(tmp_path).items():
        before = os.lstat(target)
        argv = (
            ["export", str(run), "--out", str(target), "--overwrite"]
            if command == "export"
            else ["eval", "--checkpoint", str(run / "checkpoint-last.pt"), "--corruptions", "noise", "--limit", "4",
                  "--out", str(target), "--overwrite"]
        )  # fmt: skip
        assert main(argv) == 2, kind
        err = capsys.readouterr().err
        assert "not a regular file" in err and err.count("\n") == 1, (kind, err)
        after = os.lstat(target)
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino, kind
    assert (tmp_path / "thesis.txt").read_text() == "mine"
