"""What a user gets: the training loop with its loader, against the same steps on ready tensors.

Each configuration (a view policy, with its views made in the loader workers or on the device) is a real
run: accord's own :func:`~accord.engine.run.build_run` on Fashion-MNIST (Debian's files, or a synthetic set
of the same shape when they are absent), its :func:`~accord.engine.run.train_loader` and the loop's
:func:`~accord.engine.loop.train_one_epoch`. *End to end* is one epoch of that loop (loader workers,
host-to-device copy, device views, step); *step only* is the same loop, same model and optimizer, over
batches of finished views made beforehand and already on the device. Both are timed in the same round,
interleaved with every other configuration, and ``end_to_end_ratio`` is the median over rounds of
``end-to-end views/s / step-only views/s``: 1 means the input path costs nothing.

The first batch of each epoch is taken before the clock starts (worker start-up is a per-epoch cost that
a short benchmark epoch would exaggerate).
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import Config, load_config
from ..data.idx import DEBIAN_FASHION_MNIST
from ..engine.epochsetup import EpochSetup
from ..engine.loop import train_one_epoch
from ..engine.optim import create_optimizer
from ..engine.run import Run, build_run, train_loader
from ..losses import METHODS, method_spec
from ..step import build_step

E2E_POLICIES = ("crop-flip", "crop-flip-randaug_2_14")
AUGMENT_ON = ("loader", "device")


def e2e_method() -> str:
    """The method of the end-to-end runs: the last benchmarked method of two views (Tied-Augment among the built-in
    ones). They time the input path and the loop around the step, which the method changes little."""
    two_view = [name for name, spec in METHODS.items() if spec.bench and spec.views == 2]
    if not two_view:
        raise RuntimeError("accord bench's end-to-end runs need a benchmarked two-view method (MethodSpec.bench)")
    return two_view[-1]


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzipped), the format of Fashion-MNIST's files."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def synthetic_fashion_mnist(root: Path, images: int) -> Path:
    """Random 28 px grey images with labels 0-9, as Fashion-MNIST's four IDX files under ``root``."""
    rng = np.random.default_rng(0)
    for split, n in (("train", images), ("t10k", 10)):
        write_idx(root / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    return root


def e2e_config(
    model: str,
    policy: str,
    augment_on: str,
    batch: int,
    steps: int,
    workers: int,
    data_dir: Path | None,
    folder: FolderRun | None = None,
) -> Config:
    """A two-view run of :func:`e2e_method` with ``steps + 1`` batches per epoch: on Fashion-MNIST, or with ``folder``
    on an image folder at its image size (ResNet-50's recipe: its optimiser and evaluation, the views named)."""
    overrides = {
        "model": model,
        "method": e2e_method(),
        "policy": policy,
        "view_policies": None,
        "augment_on": augment_on,
        "batch_size": batch,
        "train_subset": (steps + 1) * batch,
        "val_fraction": 0.0,
        "workers": workers,
        "data_dir": str(data_dir) if data_dir else None,
    }
    if folder is not None:
        overrides |= {"image_size": folder.image_size, "amp": folder.amp}
        return load_config("ResNet50-standard", overrides)
    return load_config("FashionMNIST-ResNet8-standard", overrides)


@dataclass(frozen=True)
class FolderRun:
    """What an image-folder end-to-end run changes: the image size and the precision of its steps."""

    image_size: int = 224
    amp: str = "none"


class Measured:
    """One configuration's run, its loop pieces and its ready batches (finished views on the device)."""

    def __init__(self, cfg: Config, device: torch.device) -> None:
        self.run: Run = build_run(cfg, device)
        self.step = build_step(self.run.model, self.run.criterion, method_spec(cfg.method.method))
        params = list(self.run.model.parameters()) + list(self.run.criterion.parameters())
        self.optimizer = create_optimizer(params, cfg.optim)
        micro = cfg.optim.batch_size if cfg.optim.accum_steps > 1 else None  # one process: the global batch
        self.setup = EpochSetup(device=device, views=self.run.views, log_interval=10**9, micro_batch=micro)
        self.epoch = 0
        self.ready: list[tuple[Tensor, Tensor]] = []
        for x, y in train_loader(self.run, 0):
            x, y = x.to(device), y.to(device)
            with torch.no_grad():
                self.ready.append((self.run.views(x) if self.run.views is not None else x, y))

    def end_to_end(self) -> float:
        """Views/s of one epoch of the loop over the run's own loader (after its first batch)."""
        self.epoch += 1
        self.run.train_set.set_epoch(self.epoch)
        batches = iter(train_loader(self.run, self.epoch))
        next(batches)
        return self._loop(batches)

    def step_only(self) -> float:
        """Views/s of the same loop over the ready batches (after the first), with no views to make."""
        setup = EpochSetup(device=self.setup.device, log_interval=10**9, micro_batch=self.setup.micro_batch)
        return self._loop(self.ready[1:], setup)

    def _loop(self, batches: Any, setup: EpochSetup | None = None) -> float:
        stats = train_one_epoch(self.step, batches, self.optimizer, setup or self.setup, log=lambda _: None)
        return stats["views_per_s"]


def measure_end_to_end(
    model: str,
    batch: int,
    steps: int,
    repeats: int,
    device: str,
    workers: int = 2,
    data_dir: Path | None = None,
    policies: tuple[str, ...] = E2E_POLICIES,
    folder: FolderRun | None = None,
) -> dict[str, Any]:
    """End-to-end and step-only views/s and their paired ratio, per policy and ``augment_on``; with ``folder``,
    ``data_dir`` is an image folder (its train/ has ``steps + 1`` batches or more)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = f"image folder {data_dir}" if folder is not None else "fashion_mnist"
        if data_dir is None and not DEBIAN_FASHION_MNIST.is_dir():
            data_dir, source = synthetic_fashion_mnist(Path(tmp), (steps + 1) * batch), "synthetic 28 px"
        runs = {
            (p, on): Measured(e2e_config(model, p, on, batch, steps, workers, data_dir, folder), torch.device(device))
            for p in policies
            for on in AUGMENT_ON
        }
        rates: dict[tuple[str, str], dict[str, list[float]]] = {k: {"e2e": [], "step": []} for k in runs}
        for _ in range(max(repeats, 1) + 1):  # the first round warms up and is dropped
            for key, measured in runs.items():
                rates[key]["step"].append(measured.step_only())
                rates[key]["e2e"].append(measured.end_to_end())
    ratio: dict[str, dict[str, float]] = {p: {} for p in policies}
    views_per_s: dict[str, dict[str, dict[str, float]]] = {p: {} for p in policies}
    for (policy, on), r in rates.items():
        e2e, step = r["e2e"][1:], r["step"][1:]
        ratio[policy][on] = statistics.median(a / b for a, b in zip(e2e, step, strict=True))
        views_per_s[policy][on] = {"end_to_end": statistics.median(e2e), "step_only": statistics.median(step)}
    return {
        "end_to_end_ratio": ratio,
        "end_to_end_views_per_s": views_per_s,
        "end_to_end_setup": {
            "data": source,
            "model": model,
            "method": e2e_method(),
            "views": 2,
            "batch": batch,
            "steps": steps,
            "workers": workers,
            "threads": torch.get_num_threads(),
        },
    }


def format_end_to_end(result: dict[str, Any]) -> list[str]:
    """Table lines: end-to-end and step-only views/s and their ratio, per policy and ``augment_on``."""
    s = result["end_to_end_setup"]
    lines = [
        "",
        f"end to end: {s['model']}, {s['method']} ({s['views']} views), batch {s['batch']}, {s['steps']} steps per"
        f" epoch, {s['workers']} workers, {s['threads']} threads, {s['data']}",
        "",
        "| policy | augment_on | end-to-end views/s | step-only views/s | end_to_end_ratio |",
        "|---|---|---|---|---|",
    ]
    for policy, by_place in result["end_to_end_ratio"].items():
        for on, value in by_place.items():
            v = result["end_to_end_views_per_s"][policy][on]
            lines.append(f"| {policy} | {on} | {v['end_to_end']:.0f} | {v['step_only']:.0f} | {value:.3f} |")
    return lines
