"""A run's checkpoints are never mixed with another run's, --overwrite removes only what accord wrote, and an
edited config.yaml is refused on resume."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml
from tiny_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_runs(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, tiny_run: Path) -> tuple[Path, Path]:
    other = tmp_path_factory.mktemp("identity") / "b"
    fit(tiny_config(fmnist_dir, seed=1), other, log=QUIET)
    return tiny_run, other  # seeds 0 (the default) and 1


@pytest.mark.parametrize("name", ["checkpoint-last.pt", "checkpoint-best.pt"])
def test_another_runs_checkpoint_is_never_resumed(two_runs, tmp_path, name, capsys):
    a, b = two_runs
    mine = tmp_path / "a"
    shutil.copytree(a, mine)
    shutil.copy(b / name, mine / name)  # the other run's file, copied in by hand
    before = {p.name: digest(p) for p in mine.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{name}: belongs to another run" in err and err.count("\n") == 1
    assert {p.name: digest(p) for p in mine.iterdir() if p.is_file()} == before


def test_an_edited_config_yaml_is_refused_naming_the_keys(two_runs, tmp_path, capsys):
    mine = tmp_path / "a"
    shutil.copytree(two_runs[0], mine)
    saved = yaml.safe_load((mine / "config.yaml").read_text())
    saved["lr"], saved["weight_decay"] = 0.5, 0.0
    (mine / "config.yaml").write_text(yaml.safe_dump(saved))
    summary = digest(mine / "summary.json")
    assert main(["train", "--resume", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "differs from the config its checkpoint trained with: lr (" in err and "weight_decay (" in err
    assert err.count("\n") == 1
    assert digest(mine / "summary.json") == summary


def test_overwrite_refuses_a_folder_it_cannot_prove_is_a_run(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "experiment"
    (out / "tensorboard" / "other-experiment").mkdir(parents=True)
    (out / "tensorboard" / "other-experiment" / "events.out.tfevents.1").write_text("theirs")
    (out / "config.yaml").write_text("# my hand-written config\nlr: 0.1\n")
    assert main([*train_args(fmnist_dir, out), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "no .accord-run.json" in err and err.count("\n") == 1
    assert (out / "config.yaml").read_text() == "# my hand-written config\nlr: 0.1\n"
    assert (out / "tensorboard" / "other-experiment" / "events.out.tfevents.1").read_text() == "theirs"


def test_overwrite_of_a_run_keeps_other_tensorboard_folders(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(fmnist_dir), out, log=QUIET)
    theirs = out / "tensorboard" / "other-experiment" / "events.out.tfevents.1"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("theirs")
    (out / "tensorboard" / "events.out.tfevents.0.accord").write_text("the run's own")
    fit(tiny_config(fmnist_dir), out, overwrite=True, log=QUIET)
    assert theirs.read_text() == "theirs"
    assert not (out / "tensorboard" / "events.out.tfevents.0.accord").exists()
