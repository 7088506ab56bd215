"""One training epoch and one evaluation pass."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..models import MultiViewModel
from ..views import MixedBatch


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the terms."""


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    if amp == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_one_epoch(
    model: MultiViewModel,
    criterion: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    on_step: Callable[[int], None],
    *,
    global_step: int,
    device: torch.device,
    mixer: Callable[[Tensor, Tensor], MixedBatch] | None = None,
    amp: str = "none",
    channels_last: bool = False,
    log_interval: int = 50,
    description: str = "train",
) -> dict[str, float]:
    """Train over ``loader`` once. ``on_step(global_step)`` runs before each update (lr, weight schedules).

    ``mixer`` applies MixUp/CutMix to each batch. Returns the mean of every loss term, the training top-1
    of view 1, images/s and views/s. Loss terms
    are summed on the device and read back every ``log_interval`` steps, where a NaN/Inf stops the run.
    """
    model.train()
    criterion.train()
    sums: dict[str, Tensor] = {}
    correct = torch.zeros((), device=device)
    images = views = steps = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=description, leave=False, dynamic_ncols=True, disable=not sys.stderr.isatty())
    for x, y in bar:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        target, extra = y, {}
        if mixer is not None:
            mixed = mixer(x, y)
            x, target = mixed.images, mixed.target
            if mixed.feature_mix is not None:
                extra["feature_mix"] = mixed.feature_mix
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        on_step(global_step)
        with autocast(amp, device):
            out = model(x)
        terms = criterion(out.logits, target, out.features, **extra)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()

        global_step += 1
        steps += 1
        images += y.shape[0]
        views += x.shape[0]
        for name, value in terms.items():
            sums[name] = sums.get(name, 0) + value.detach()
        correct += (out.logits[: y.shape[0]].argmax(1) == y).sum()  # view 1 against the unmixed labels
        if steps % log_interval == 0:
            means = {k: float(v) / steps for k, v in sums.items()}
            _check_finite(means, global_step)
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
    seconds = time.perf_counter() - start
    stats = {k: float(v) / max(steps, 1) for k, v in sums.items()}
    _check_finite(stats, global_step)
    stats.update(
        train_top1=100.0 * float(correct) / max(images, 1),
        images_per_s=images / seconds,
        views_per_s=views / seconds,
        seconds=seconds,
        steps=steps,
    )
    return stats


def _check_finite(terms: dict[str, float], step: int) -> None:
    bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
    if bad:
        detail = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss by step {step}: {detail}")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    device: torch.device,
    amp: str = "none",
    channels_last: bool = False,
) -> dict[str, Any]:
    """Top-1 and top-5 accuracy (%) of ``model`` in eval mode over ``loader``."""
    model.eval()
    top1 = top5 = total = 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(amp, device):
            logits = model(x)
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == y[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        total += y.shape[0]
    if total == 0:
        return {"top1": float("nan"), "top5": float("nan"), "n": 0}
    return {"top1": 100.0 * top1 / total, "top5": 100.0 * top5 / total, "n": total}
