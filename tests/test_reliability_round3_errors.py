"""Round three: `--out .`, damaged metrics and a lone best checkpoint are one true line, not a traceback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tiny_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors") / "run"
    fit(tiny_config(fmnist_dir), out, log=QUIET)
    return out


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def one_line(capsys, *parts: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for part in parts:
        assert part in err, err


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
