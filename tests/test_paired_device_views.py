"""scripts/paired_device_views.py pairs device and loader cells by seed and reports the mean difference."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "scripts" / "paired_device_views.py"


def _load():
    spec = importlib.util.spec_from_file_location("paired_device_views", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plant(root: Path, config: str, tops: dict[int, float]) -> None:
    for seed, top1 in tops.items():
        folder = root / config / f"seed{seed}"
        folder.mkdir(parents=True)
        summary = {"seed": seed, "test_top1": top1, "last_test_top1": top1, "train_seconds": 1.0}
        (folder / "summary.json").write_text(json.dumps(summary))


def test_device_minus_loader_paired_by_seed_with_a_t_interval(tmp_path: Path) -> None:
    device, loader = tmp_path / "device", tmp_path / "loader"
    _plant(device, "FashionMNIST-ResNet8-auto_augment-tied", {0: 81.0, 1: 83.0, 2: 80.0})  # seed 2: no partner
    _plant(loader, "FashionMNIST-ResNet8-auto_augment-tied", {0: 80.0, 1: 80.0, 3: 90.0})
    _plant(loader, "FashionMNIST-ResNet8-auto_augment", {0: 70.0})  # no device cell: not listed
    lines = _load().table(device, loader).splitlines()
    assert len(lines) == 3
    # differences 1 and 3: mean 2, sd sqrt(2), half-width t(0.975, 1) * sqrt(2) / sqrt(2) = 12.706
    assert lines[2] == (
        "| FashionMNIST-ResNet8 | auto_augment | tied | 0, 1 | 80.00 | 82.00 | +2.00 [-10.71, +14.71] |"
    )


def test_the_committed_table_is_what_the_committed_cells_give() -> None:
    results = SCRIPT.parent.parent / "docs/results/fashion-mnist"
    table = _load().table(results / "device-views", results / "grid")
    assert table.count("\n| FashionMNIST-ResNet8 | auto_augment |") == 2  # CE and Tied-Augment, 5 seeds each
    assert table in (results / "device-views/README.md").read_text()
