"""`--resume DIR` never ignores an option it cannot honour; `--resume DIR --epochs N` extends the run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from tiny_runs import QUIET, tiny_config

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "run"
    fit(tiny_config(fmnist_dir, epochs=2), out, log=QUIET)
    return out


@pytest.mark.parametrize(
    ("extra", "flag"),
    [(["--seed", "3"], "--seed"), (["--train-subset", "32"], "--train-subset"), (["--data-dir", "x"], "--data-dir"),
     (["--dataset", "cifar10"], "--dataset"), (["--epochs", "1"], "--epochs 1")],
)  # fmt: skip
def test_resume_refuses_an_option_it_cannot_honour_naming_it(finished, tmp_path, extra, flag, capsys):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    before = (run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(run), *extra]) == 2
    err = capsys.readouterr().err
    assert flag in err and err.count("\n") == 1, err
    assert (run / "metrics.jsonl").read_text() == before


def test_resume_with_more_epochs_extends_a_finished_run(finished, tmp_path, capsys):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("extending ") == 1 and "from 2 to 3 epochs" in out
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 3
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
    assert main(["train", "--resume", str(run)]) == 0  # the extended run resumes as its own
