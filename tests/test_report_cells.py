"""A report compares like with like: runs whose configs differ in anything but the seed (and their cell) are
refused, whatever key differs (every key of the schema is tried); a seed folder must hold its own seed; and the
commands that make the runs (grid, compare) refuse settings that would make unlike or duplicate runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from one_line import one_line

from accord.cli import main
from accord.config import KEYS, load_config
from accord.report import write_report

BASE = "FashionMNIST-ResNet8-standard"
AGMAX = "FashionMNIST-ResNet8-standard-agmax"


def run(root: Path, config: str, seed: int, mutate: str | None = None, **changed: Any) -> Path:
    """A finished run folder as accord writes it: config.yaml (the cell's config, ``changed`` written over it,
    the key ``mutate`` given another value) and summary.json."""
    folder = root / config / f"seed{seed}"
    folder.mkdir(parents=True)
    flat = {**load_config(config.partition("@")[0], {"seed": seed}).as_flat(), **changed}
    if mutate is not None:
        flat[mutate] = other(flat[mutate])
    (folder / "config.yaml").write_text(yaml.safe_dump(flat))
    summary = {"seed": seed, "test_top1": 80.0 + seed, "last_test_top1": 79.0, "train_seconds": 6.0}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def other(value: Any) -> Any:
    """A value unlike ``value`` of a kind a config could hold."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return [*value, value[0] if value else 1]
    if isinstance(value, dict):
        return {**value, "other": 1}
    return 1  # null


COMPARED = sorted(k for k in KEYS if k != "seed")  # every key of the schema but the seed


@pytest.mark.parametrize("key", COMPARED)
def test_runs_that_differ_in_any_key_are_not_compared(key: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    run(tmp_path / "cells", BASE, 0)
    run(tmp_path / "cells", AGMAX, 0, mutate=key)  # another cell, another setting
    run(tmp_path / "seeds", BASE, 0)
    run(tmp_path / "seeds", BASE, 1, mutate=key)  # one cell, two settings
    for root in (tmp_path / "cells", tmp_path / "seeds"):
        assert main(["report", str(root)]) == 2
        one_line(capsys, key, "differ only in cell and seed")
        assert not (root / "report.md").exists()


def test_runs_that_differ_only_in_seed_and_cell_are_reported(tmp_path: Path):
    for seed in (0, 1):
        run(tmp_path, BASE, seed, epochs=2, train_subset=200)
        run(tmp_path, AGMAX, seed, epochs=2, train_subset=200)
        run(tmp_path, f"{BASE}@2x", seed, epochs=4, train_subset=200)  # twice the epochs: its own budget
    assert "| standard |" in write_report(tmp_path)


def test_keys_a_grid_set_for_one_method_must_agree_within_it(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "grid.json").write_text(
        json.dumps({"sessions": [], "per_method_overrides": {"agmax": {"loss": {"dl_weight": 2}}}})
    )
    run(tmp_path, BASE, 0)
    run(tmp_path, AGMAX, 0, loss={"dl_weight": 2})
    assert "| standard |" in write_report(tmp_path)  # a per-method setting, recorded by the grid
    run(tmp_path, AGMAX, 1, loss={"dl_weight": 3})
    assert main(["report", str(tmp_path)]) == 2
    one_line(capsys, "loss", "seed0", "seed1")


@pytest.mark.parametrize("where", ["summary", "config"])
def test_a_seed_folder_must_hold_its_own_seed(where: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    run(tmp_path, BASE, 0)
    seed0 = run(tmp_path, AGMAX, 0)
    copy = tmp_path / AGMAX / "seed7"
    shutil.copytree(seed0, copy)  # a copied seed0 named seed7 would count one run twice
    if where == "config":  # the summary was edited to match; the config still says seed 0
        (copy / "summary.json").write_text((copy / "summary.json").read_text().replace('"seed": 0', '"seed": 7'))
    assert main(["report", str(tmp_path)]) == 2
    one_line(capsys, "seed7", "seed 0")


@pytest.mark.parametrize("option", ["--models", "--augs", "--methods"])
@pytest.mark.parametrize("value", ["", ",", " , "])
def test_grid_refuses_an_empty_list(option: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    args = {"--models": "FashionMNIST-ResNet8", "--augs": "standard", "--methods": "ce"} | {option: value}
    out, nowhere = tmp_path / "grid", f"--set=data_dir={tmp_path / 'no-data'}"  # nothing could train
    assert main(["grid", *[x for kv in args.items() for x in kv], "--seeds", "1", nowhere, "--out", str(out)]) == 2
    one_line(capsys, option)
    assert not out.exists()


@pytest.mark.parametrize("item", ["seed=7", "agmax:seed=7"])
def test_grid_refuses_a_seed_among_its_settings(item: str, tmp_path: Path, capsys: pytest.CaptureFixture):
    out, nowhere = tmp_path / "grid", f"--set=data_dir={tmp_path / 'no-data'}"  # nothing could train
    argv = ["grid", "--models", "FashionMNIST-ResNet8", "--methods", "ce,agmax", "--seeds", "1", nowhere, "--set", item]
    assert main([*argv, "--out", str(out)]) == 2
    one_line(capsys, "seed", "--seeds")
    assert not out.exists()


@pytest.mark.parametrize("methods", ["ce,ce", "agmax,tied,agmax", ",", ""])
def test_compare_refuses_duplicate_or_empty_methods_before_training(
    methods: str, tmp_path: Path, capsys: pytest.CaptureFixture
):
    out, nowhere = tmp_path / "compare", f"--set=data_dir={tmp_path / 'no-data'}"  # nothing could train
    assert main(["compare", "--config", BASE, "--methods", methods, nowhere, "--out", str(out)]) == 2
    one_line(capsys, "--methods")
    assert not out.exists()
