"""A config key renamed since a run was saved: the run's ``config.yaml`` and checkpoints still resume, evaluate,
export and report under the new name; a user's config file or ``--set`` that spells the old name is refused in one
line naming the new one. The cases come from :data:`accord.config.schema.RENAMED_KEYS`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from one_line import one_line

from accord.cli import main
from accord.config import ConfigError, load_config, load_saved_config, parse_overrides
from accord.config.schema import KEYS, RENAMED_KEYS
from accord.report_cells import check_like_with_like

pytestmark = pytest.mark.usefixtures("one_thread")

RENAMES = sorted(RENAMED_KEYS.items())


def as_saved_before(flat: dict) -> dict:
    """``flat`` as an accord that spelled every renamed key the old way saved it."""
    old = {new: old for old, new in RENAMED_KEYS.items()}
    return {old.get(k, k): v for k, v in flat.items()}


def test_every_old_name_is_no_key_now_and_every_new_name_is_one() -> None:
    assert RENAMES and all(old not in KEYS and new in KEYS for old, new in RENAMES)


@pytest.mark.parametrize(("old", "new"), RENAMES)
def test_set_with_an_old_name_is_refused_naming_the_new(old: str, new: str, capsys) -> None:
    with pytest.raises(ConfigError, match=f"'{old}' is now '{new}'"):
        parse_overrides([f"{old}=null"])
    assert main(["train", "--set", f"{old}=null", "--out", "unused"]) == 2
    one_line(capsys, repr(old), repr(new))


@pytest.mark.parametrize(("old", "new"), RENAMES)
def test_a_config_file_with_an_old_name_is_refused_naming_the_new(old: str, new: str, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"base": "FashionMNIST-ResNet8-standard", old: None}))
    with pytest.raises(ConfigError, match=f"{path}: config key '{old}' is now '{new}'"):
        load_config(path)


def _as_saved_before(run: Path) -> None:
    """Rewrite ``run``'s config.yaml and checkpoints as the accord that spelled the old names wrote them."""
    config = run / "config.yaml"
    config.write_text(yaml.safe_dump(as_saved_before(yaml.safe_load(config.read_text())), sort_keys=False))
    for path in run.glob("checkpoint-*.pt"):
        ckpt = torch.load(path, weights_only=True)
        ckpt["config"] = as_saved_before(ckpt["config"])
        torch.save(ckpt, path)


@pytest.fixture
def run_saved_before(tiny_run: Path, tmp_path: Path) -> Path:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    _as_saved_before(run)
    assert set(RENAMED_KEYS) <= set(yaml.safe_load((run / "config.yaml").read_text()))
    return run


def test_a_saved_config_with_old_names_reads_as_today(run_saved_before: Path, tiny_run: Path) -> None:
    now = load_saved_config(tiny_run / "config.yaml").as_flat()
    assert load_saved_config(run_saved_before / "config.yaml").as_flat() == now


def test_a_run_saved_with_old_names_evaluates_exports_and_resumes(run_saved_before: Path, tmp_path: Path, capsys):
    assert main(["eval", "--checkpoint", str(run_saved_before / "checkpoint-last.pt"), "--limit", "20"]) == 0
    assert "test top-1" in capsys.readouterr().out
    assert main(["export", str(run_saved_before), "--out", str(tmp_path / "model.safetensors")]) == 0
    assert (tmp_path / "model.safetensors").is_file()
    assert main(["train", "--resume", str(run_saved_before), "--epochs", "2"]) == 0
    assert "from 1 to 2 epochs" in capsys.readouterr().out


def test_a_report_compares_a_run_saved_with_old_names_with_one_saved_today(tiny_run: Path, tmp_path: Path) -> None:
    saved = yaml.safe_load((tiny_run / "config.yaml").read_text())
    runs = []
    for seed, flat in enumerate((saved, as_saved_before(saved))):
        run = tmp_path / "FashionMNIST-ResNet8-standard" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({**flat, "seed": seed}))
        runs.append((run, "ResNet8", "standard", seed))
    check_like_with_like(tmp_path, runs, {})  # refuses runs whose settings differ


COMMITTED = sorted((Path(__file__).parent.parent / "docs" / "results").rglob("config.yaml"))


def test_every_committed_run_config_retrains_as_a_config_file() -> None:
    """The committed runs' config.yaml (docs/results) are read by ``accord train --config`` to retrain a cell: they
    spell every key as today, and as a config file resolve to what they hold as a saved config."""
    assert COMMITTED
    for path in COMMITTED:
        as_file, as_saved = load_config(path).as_flat(), load_saved_config(path).as_flat()
        assert {**as_file, "name": None} == {**as_saved, "name": None}, path
