"""Integration on the real Fashion-MNIST files (Debian's dataset-fashion-mnist), skipped without them."""

from __future__ import annotations

import json

import pytest

from accord.cli import main
from accord.data import build_splits
from accord.data.idx import DEBIAN_FASHION_MNIST

pytestmark = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed in {DEBIAN_FASHION_MNIST} (apt-get install dataset-fashion-mnist)",
)


def test_real_splits():
    splits = build_splits("fashion_mnist")
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54_000, 6_000, 10_000)
    image, label = splits.test[0]
    assert tuple(image.shape) == (1, 28, 28) and 0 <= label < 10


@pytest.mark.parametrize("method", ["", "-agmax", "-tied"])
def test_real_training_through_the_cli(method, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--config",
            f"FashionMNIST-ResNet8-standard{method}",
            "--epochs",
            "1",
            "--set",
            "train_subset=6000",
            "--set",
            "batch_size=32",
            "--set",
            "lr_batch=32",
            "--set",
            "val_fraction=0.05",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_top1"] > 70, summary  # chance is 10%; measured 73.8 (ce), 74.8 (agmax), 74.1 (tied)


@pytest.mark.slow
def test_a_committed_grid_cell_retrains_bit_for_bit(tmp_path):
    """The baseline's seed-0 cell of docs/results/fashion-mnist/grid, from its saved config.yaml, with the
    grid's one thread per cell (--jobs 2 on 2 cores): every epoch's numbers are the committed ones."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    cell = Path(__file__).parent.parent / "docs/results/fashion-mnist/grid/FashionMNIST-ResNet8-standard/seed0"
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "accord", "train", "--config", str(cell / "config.yaml"), "--out", str(out)]
    subprocess.run(cmd, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True)
    strip = ("seconds", "images_per_s", "views_per_s")

    def records(path: Path) -> list[dict]:
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return [{k: v for k, v in r.items() if k not in strip} for r in rows]

    assert records(out / "metrics.jsonl") == records(cell / "metrics.jsonl")
    summary, committed = (json.loads((p / "summary.json").read_text()) for p in (out, cell))
    assert summary["test_top1"] == committed["test_top1"]
