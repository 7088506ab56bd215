"""The tiny run the tests share: a CE ResNet-8 on generated Fashion-MNIST-format data, one thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from accord.config import load_config

REPO = Path(__file__).resolve().parents[1]
NAME = "FashionMNIST-ResNet8-standard"
#: What every tiny run shares: batches of 32 (the lr set for 32), the fixture's 100 test images in one batch, no
#: loader workers, a step line each step. A test adds its epochs, images and checkpoints.
QUICK = {"batch_size": 32, "lr_batch": 32, "eval_batch_size": 100, "workers": 0, "log_interval": 1}
# 64 training images / batch 32 = 2 steps an epoch; the test set is the fixture's 100 images
TINY = {**QUICK, "epochs": 1, "train_subset": 64, "val_fraction": 0.2}
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
QUIET: Callable[[str], None] = lambda _: None  # noqa: E731


def tiny_config(data_dir: Path, name: str = NAME, **extra) -> dict:
    return load_config(name, {**TINY, "data_dir": str(data_dir), **extra})


def train_args(data_dir: Path, out: Path, name: str = NAME, **extra) -> list[str]:
    """``accord train`` arguments of the tiny run."""
    sets = [f"--set={k}={json.dumps(v)}" for k, v in {**TINY, **extra}.items()]
    return ["train", "--config", name, "--data-dir", str(data_dir), *sets, "--out", str(out)]


PYTHON = sys.executable


def start_long_run(data_dir: Path, out: Path) -> subprocess.Popen:
    """A child ``accord train`` of the tiny run for 500 epochs (it trains until the test stops it)."""
    return subprocess.Popen(
        [PYTHON, "-m", "accord", *train_args(data_dir, out, epochs=500)],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail if the child exits first or makes no progress in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.05)
