"""SGD and the learning-rate schedules (timm's schedulers, stepped once per optimizer update)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler

from ..config import OptimConfig


def scaled_lr(optim: OptimConfig) -> float:
    """The config's lr is per ``lr_batch`` images; scale it linearly to ``batch_size`` (Goyal et al. 2017)."""
    return optim.lr * optim.batch_size / optim.lr_batch


def param_groups(params: Iterable[torch.nn.Parameter], optim: OptimConfig) -> list[dict]:
    """One group decayed by ``weight_decay``; with ``weight_decay_on: weights`` the 1-D parameters (biases and
    normalisation scales and shifts) in a second group without decay, as the Tied-Augment ImageNet code
    (ekurtulus/tied-augment ``flax/supervised/train.py``: L2 on parameters with more than one dimension)."""
    params = list(params)
    if optim.weight_decay_on == "all":
        return [{"params": params}]
    return [
        {"params": [p for p in params if p.ndim > 1]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def create_optimizer(params: Iterable[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        param_groups(params, optim),
        lr=scaled_lr(optim),
        momentum=optim.momentum,
        nesterov=optim.nesterov and optim.momentum > 0,
        weight_decay=optim.weight_decay,
    )


def create_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig, steps_per_epoch: int) -> Scheduler:
    """A per-step schedule: linear warm-up for ``warmup_epochs``, then cosine to 0 or multistep decay."""
    warmup = optim.warmup_epochs * steps_per_epoch
    common = dict(warmup_t=warmup, warmup_lr_init=optim.warmup_lr, t_in_epochs=False)
    if optim.schedule == "multistep":
        # timm decays once t + 1 reaches a milestone; +1 makes the first update of epoch m the first decayed one,
        # as torch's MultiStepLR (and the AgMax reference) do.
        milestones = [m * steps_per_epoch + 1 for m in optim.milestones]
        return MultiStepLRScheduler(
            optimizer, decay_t=milestones, decay_rate=optim.gamma, warmup_prefix=False, **common
        )
    total = optim.epochs * steps_per_epoch
    return CosineLRScheduler(optimizer, t_initial=max(total - warmup, 1), warmup_prefix=True, **common)
