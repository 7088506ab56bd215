"""SGD and the learning-rate schedules (timm's schedulers, stepped once per optimizer update)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler


def scaled_lr(cfg: dict[str, Any]) -> float:
    """The config's lr is per ``lr_batch`` images; scale it linearly to ``batch_size`` (Goyal et al. 2017)."""
    return cfg["lr"] * cfg["batch_size"] / cfg["lr_batch"]


def create_optimizer(params: Iterable[torch.nn.Parameter], cfg: dict[str, Any]) -> torch.optim.SGD:
    return torch.optim.SGD(
        params,
        lr=scaled_lr(cfg),
        momentum=cfg["momentum"],
        nesterov=cfg["nesterov"] and cfg["momentum"] > 0,
        weight_decay=cfg["weight_decay"],
    )


def create_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any], steps_per_epoch: int) -> Scheduler:
    """A per-step schedule: linear warm-up for ``warmup_epochs``, then cosine to 0 or multistep decay."""
    warmup = cfg["warmup_epochs"] * steps_per_epoch
    common = dict(warmup_t=warmup, warmup_lr_init=cfg["warmup_lr"], t_in_epochs=False)
    if cfg["schedule"] == "multistep":
        # timm decays once t + 1 reaches a milestone; +1 makes the first update of epoch m the first decayed one,
        # as torch's MultiStepLR (and the AgMax reference) do.
        milestones = [m * steps_per_epoch + 1 for m in cfg["milestones"]]
        return MultiStepLRScheduler(
            optimizer, decay_t=milestones, decay_rate=cfg["gamma"], warmup_prefix=False, **common
        )
    total = cfg["epochs"] * steps_per_epoch
    return CosineLRScheduler(optimizer, t_initial=max(total - warmup, 1), warmup_prefix=True, **common)
