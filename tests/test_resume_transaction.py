"""A resume changes a run only by checkpoints it writes; a start that fails leaves nothing; a run folder
is never placed where it would be read as data, and an output is known writable before the work."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from tiny_runs import train_args

import accord.engine.trainer as trainer
from accord.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(tiny_run: Path) -> Path:
    return tiny_run  # one epoch


def files(run: Path) -> dict[str, str]:
    """Every file of the run but the lock's pid file, by its SHA-256."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.iterdir())
        if p.is_file() and p.name != ".accord.lock"
    }


def test_an_extension_stopped_before_its_first_checkpoint_leaves_the_run_as_it_was(
    finished, tmp_path, monkeypatch, capsys
):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    before = files(run)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C (its second press), a kill: before the first new checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "train_one_epoch", interrupted)
        assert main(["train", "--resume", str(run), "--epochs", "10"]) == 130
    assert files(run) == before  # summary.json kept, config.yaml still says 1 epoch
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 1
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 0  # not refused as "the run has 10 epochs"
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_an_extension_commits_with_its_first_checkpoint(finished, tmp_path, monkeypatch):
    """Stopped by a signal at its first step, the extension has written a checkpoint: it is the run's now."""
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    real = trainer.Checkpointer.due
    monkeypatch.setattr(trainer.Checkpointer, "due", lambda self, step: True)  # a checkpoint after every step
    monkeypatch.setattr(trainer.AgreedStop, "raise_if_stopped", _stop_after_saving)
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 143
    monkeypatch.setattr(trainer.Checkpointer, "due", real)
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 3
    assert not (run / "summary.json").exists()


def _stop_after_saving(self, where, saved=False):
    import signal

    raise trainer.TrainingInterrupted(signal.SIGTERM, Path("."), where)


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_a_lost_metrics_record_is_refused_on_resume(finished, tmp_path, damage, capsys):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    metrics = run / "metrics.jsonl"
    if damage == "deleted":
        metrics.unlink()
    else:
        metrics.write_text("")
    before = files(run)
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert "metrics.jsonl" in err and err.count("\n") == 1, err
    assert files(run) == before  # no summary of the new epochs alone, the config still the run's


def test_a_failed_start_leaves_no_folder_holding_only_the_lock(fmnist_dir, tmp_path, monkeypatch, capsys):
    def fails(*args, **kwargs):
        raise ValueError("the optimizer cannot be made")  # any failure after the folder is taken, before the run

    monkeypatch.setattr(trainer, "create_optimizer", fails)
    out = tmp_path / "run"
    assert main(train_args(fmnist_dir, out)) == 1  # not the user's input: an internal error, with its traceback
    assert "the optimizer cannot be made" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()  # a folder of the user's: kept, and left as it was (empty)
    assert main(train_args(fmnist_dir, out)) == 1
    assert out.is_dir() and list(out.iterdir()) == []


@pytest.mark.parametrize("where", ["inside", "itself"])
def test_out_inside_the_data_folder_is_refused(imagefolder_dir, tmp_path, where, capsys):
    data = Path(shutil.copytree(imagefolder_dir, tmp_path / "data"))
    listing = sorted(p.relative_to(data) for p in data.rglob("*"))
    out = data / "train" / "runs" if where == "inside" else data
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(data), "--img-size", "32", "-b", "8", "--epochs",
            "1", "--set=workers=0", "--out", str(out)]  # fmt: skip
    if where == "itself":
        argv.append("--overwrite")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "inside the data folder" in err and err.count("\n") == 1, err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == listing


def test_a_grid_inside_the_data_folder_is_refused_before_any_cell(fmnist_dir, tmp_path, capsys):
    data = Path(shutil.copytree(fmnist_dir, tmp_path / "data"))
    argv = ["grid", "--models", "FashionMNIST-ResNet8", "--methods", "ce", "--seeds", "1", "--epochs", "1",
            f"--set=data_dir={data}", "--out", str(data / "grid")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "inside the data folder" in err and err.count("\n") == 1, err
    assert not list((data / "grid").glob("*/seed0/*"))  # no cell started


def test_eval_refuses_an_unwritable_output_before_evaluating(finished, tmp_path, monkeypatch, capsys):
    import accord.engine.writer as writer
    import accord.evaluation as evaluation

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root writes anywhere: make the check see a read-only folder
        real = os.access
        monkeypatch.setattr(writer.os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode))
    monkeypatch.setattr(evaluation, "evaluate_checkpoint_robustness", _never)
    argv = ["eval", "--checkpoint", str(finished / "checkpoint-last.pt"), "--corruptions", "jpeg",
            "--out", str(folder / "r.json")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not writable" in err and err.count("\n") == 1, err


def _never(*args, **kwargs):
    raise AssertionError("the evaluation ran before the output was checked")
