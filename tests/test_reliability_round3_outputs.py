"""Round three, data loss: --overwrite replaces only a regular file, never a device, FIFO, socket or link."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from tiny_runs import QUIET, tiny_config

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("round3-outputs") / "run"
    fit(tiny_config(fmnist_dir), out, log=QUIET)
    return out


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
