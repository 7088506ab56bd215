"""A run saved before its method's fragment stopped restating the loss's defaults, or before the two-view CE
control was a method of its own, has the setting of its cell: a report compares it with today's runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from accord.config import load_config
from accord.losses import METHODS, baseline_method
from accord.report_cells import run_setting

SMALL = "FashionMNIST-ResNet8-standard"


def _run(tmp_path: Path, cell: str) -> Path:
    run = tmp_path / cell / "seed0"
    run.mkdir(parents=True)
    return run


@pytest.mark.parametrize("method", [m for m in METHODS if m != baseline_method()])
def test_a_run_saved_with_fewer_loss_options_has_its_cells_setting(tmp_path: Path, method: str) -> None:
    cell = f"{SMALL}-{method}"
    saved = load_config(cell).as_flat()
    defaults = {k: p.default for k, p in inspect.signature(METHODS[method].loss).parameters.items()}
    saved["loss"] = {k: v for k, v in saved["loss"].items() if v != defaults.get(k, inspect.Parameter.empty)}
    # as a run saved when the loss options at their defaults were not stated (its fragment's own ones were)
    assert run_setting(_run(tmp_path, cell), saved) == {"epochs": saved["epochs"]}


def test_a_two_view_baseline_run_in_a_two_view_control_cell_has_its_cells_setting(tmp_path: Path) -> None:
    control = next(m for m, s in METHODS.items() if s.loss is METHODS[baseline_method()].loss and s.views == 2)
    cell = f"{SMALL}-{control}"
    saved = load_config(cell).as_flat() | {"method": baseline_method(), "loss": {}}  # as it was saved before
    assert run_setting(_run(tmp_path, cell), saved) == {"epochs": saved["epochs"]}
    saved["num_views"] = 3  # another number of views is another run
    assert "num_views" in run_setting(_run(tmp_path / "b", cell), saved)
