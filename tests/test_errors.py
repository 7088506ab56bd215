"""One line, not a traceback: a checkpoint of another run on --resume, a full disk, ``grid --jobs 0``, a bogus
checkpoint dict to ``eval``, ``--out .``, damaged metrics, a lone best checkpoint."""

from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from one_line import one_line
from tiny_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit, load_checkpoint
from accord.engine.checkpoint import save_atomic

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, tiny_run: Path) -> dict[str, Path]:
    agmax = tmp_path_factory.mktemp("foreign") / "FashionMNIST-ResNet8-standard-agmax"
    fit(tiny_config(fmnist_dir, "FashionMNIST-ResNet8-standard-agmax"), agmax, log=QUIET)
    return {"FashionMNIST-ResNet8-standard": tiny_run, "FashionMNIST-ResNet8-standard-agmax": agmax}


@pytest.fixture(scope="module")
def finished(runs: dict[str, Path]) -> Path:
    """A finished one-epoch CE run (read only: a test copies it)."""
    return runs["FashionMNIST-ResNet8-standard"]


def agmax_copy(runs: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(runs["FashionMNIST-ResNet8-standard-agmax"], tmp_path / "agmax"))


def test_resume_from_a_ce_runs_checkpoint_is_one_line(runs, tmp_path, capsys):
    out = agmax_copy(runs, tmp_path)
    shutil.copy(runs["FashionMNIST-ResNet8-standard"] / "checkpoint-last.pt", out / "checkpoint-last.pt")
    assert main(["train", "--resume", str(out)]) == 2
    one_line(capsys, f"{out / 'checkpoint-last.pt'}: belongs to another run")  # refused before its keys are read


def test_resume_from_a_resnet20_checkpoint_is_one_line(runs, tmp_path, capsys):
    from accord.models import create_model

    out = agmax_copy(runs, tmp_path)
    ckpt = load_checkpoint(out / "checkpoint-last.pt")
    ckpt["model"] = create_model("ResNet20", 10, 1, 0.0).state_dict()
    save_atomic(ckpt, out / "checkpoint-last.pt")
    assert main(["train", "--resume", str(out)]) == 2
    one_line(capsys, "does not fit this run's ResNet8: unexpected", "another model or method")


class FullDisk(io.RawIOBase):
    """A file whose writes fail with ENOSPC after ``room`` bytes, as on a full disk."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.f.fileno()

    def flush(self) -> None:
        self.f.flush()

    def close(self) -> None:
        super().close()  # flushes self.f first
        self.f.close()


def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_loses_nothing(fmnist_dir, tmp_path, monkeypatch, capsys):
    from tiny_runs import train_args

    fdopen, writes = os.fdopen, [0]

    def fill_up(fd, *args, **kwargs):
        f = fdopen(fd, *args, **kwargs)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".checkpoint-"):
            writes[0] += 1
            if writes[0] > 2:  # epoch 1's best and last are written, epoch 2's are not
                return FullDisk(f, room=1000)
        return f

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(os, "fdopen", fill_up)
        assert main(train_args(fmnist_dir, out, epochs=2)) == 2
    err = one_line(capsys, f"{out}/checkpoint-", "cannot write (the write failed;", "MiB free on that disk")
    assert "enforce fail" not in err
    assert load_checkpoint(out / "checkpoint-last.pt")["epoch"] == 0  # epoch 1's, whole
    assert not list(out.glob(".*.tmp"))
    assert main(["train", "--resume", str(out)]) == 0  # room again: the run continues


def test_grid_jobs_zero_is_one_line(tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(["grid", "--models", "FashionMNIST-ResNet8", "--methods", "ce", "--jobs", "0", "--out", str(out)]) == 2
    one_line(capsys, "--jobs 0", "at least 1")
    assert not out.exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"model": {}, "config": {}}, "its model state is empty"),
        ({"model": {"w": torch.zeros(1)}, "config": {}}, "its config has no model or dataset"),
        ({"model": {"w": torch.zeros(1)}, "config": {"model": "ResNet8", "dataset": "fashion_mnist"}},
         "does not fit"),
    ],
)  # fmt: skip
def test_eval_of_a_bogus_checkpoint_dict_is_one_line(fmnist_dir, tmp_path, payload, message, capsys):
    torch.save(payload, tmp_path / "bogus.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "bogus.pt"), "--data-dir", str(fmnist_dir)]) == 2
    one_line(capsys, str(tmp_path / "bogus.pt"), message)


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def test_out_dot_trains_in_the_current_folder(fmnist_dir, tmp_path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(train_args(fmnist_dir, Path("."))) == 0
    assert (here / "summary.json").is_file()


@pytest.mark.parametrize("text", ["{}\n", "[1, 2]\n", '{"epoch": "1"}\n'])
def test_a_line_that_is_no_epoch_record_is_named_on_resume(finished, tmp_path, text, capsys):
    run = copy(finished, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write(text)
    assert main(["train", "--resume", str(run)]) == 2
    one_line(capsys, f"{run / 'metrics.jsonl'}, line 2: not an epoch record")


def test_an_empty_metrics_file_is_one_line_on_resume(finished, tmp_path, capsys):
    run = copy(finished, tmp_path)
    (run / "metrics.jsonl").write_text("")
    assert main(["train", "--resume", str(run)]) == 2
    one_line(capsys, "metrics.jsonl: no epoch recorded")


def test_plot_names_a_line_that_is_no_epoch_record(finished, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run = copy(finished, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2}\n')
    assert main(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 2
    one_line(capsys, f"{run / 'metrics.jsonl'}, line 2: not an epoch record")


def test_only_the_best_checkpoint_left_never_advises_deleting_it(finished, tmp_path, capsys):
    run = copy(finished, tmp_path)
    (run / "checkpoint-last.pt").unlink()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint-best.pt alone cannot continue training" in err and "start it again" not in err
    assert err.count("\n") == 1


def test_a_fifo_named_metrics_jsonl_is_named_not_read_on_resume(finished, tmp_path, capsys):
    run = copy(finished, tmp_path)
    (run / "metrics.jsonl").unlink()
    os.mkfifo(run / "metrics.jsonl")
    assert main(["train", "--resume", str(run)]) == 2  # before: blocked forever in open()
    one_line(capsys, "metrics.jsonl: is a FIFO, not a regular file")
