"""The optimizer (torch's SGD by default, or any of timm's ``create_optimizer_v2``), gradient clipping, and the
learning-rate schedules (timm's schedulers, stepped once per optimizer update)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from timm.optim import create_optimizer_v2, param_groups_weight_decay
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler
from timm.utils import dispatch_clip_grad
from torch import nn

from ..config import OptimConfig
from .sam import SAM


def scaled_lr(optim: OptimConfig) -> float:
    """The config's lr is per ``lr_batch`` images; scale it linearly to the images of one update, ``batch_size``
    x ``accum_steps`` (Goyal et al. 2017)."""
    return optim.lr * optim.update_batch / optim.lr_batch


def param_groups(params: nn.Module | Iterable[nn.Parameter], optim: OptimConfig) -> list[Any]:
    """``weight_decay_on: all``: the parameters as given (one group). ``weights``: timm's
    ``param_groups_weight_decay`` (no decay on biases, norm layers and any 1-d parameter; the Tied-Augment
    authors' Flax code decays only kernels), or the same ``ndim <= 1`` rule for a bare list of parameters."""
    if optim.weight_decay_on == "all":
        return list(params.parameters() if isinstance(params, nn.Module) else params)
    if isinstance(params, nn.Module):
        return param_groups_weight_decay(params, optim.weight_decay)
    params = [p for p in params if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
        {"params": [p for p in params if p.ndim > 1], "weight_decay": optim.weight_decay},
    ]


def create_optimizer(params: nn.Module | Iterable[nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
    """``optimizer: sgd`` is torch's SGD with the config's momentum and Nesterov flag (as accord always trained);
    any other name is built by timm's ``create_optimizer_v2`` (AdamW, LAMB, LARS, ...); ``sam_rho > 0`` makes it
    sharpness-aware (:class:`~.sam.SAM`)."""
    base = _base_optimizer(param_groups(params, optim), optim)
    return SAM(base, optim.sam_rho, optim.sam_adaptive) if optim.sam_rho > 0 else base


def _base_optimizer(groups: list[Any], optim: OptimConfig) -> torch.optim.Optimizer:
    if optim.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=scaled_lr(optim),
            momentum=optim.momentum,
            nesterov=optim.nesterov and optim.momentum > 0,
            weight_decay=optim.weight_decay,
        )
    return create_optimizer_v2(
        groups, opt=optim.optimizer, lr=scaled_lr(optim), weight_decay=optim.weight_decay, momentum=optim.momentum
    )


def clip_gradients(params: Iterable[nn.Parameter], optim: OptimConfig) -> None:
    """timm's ``dispatch_clip_grad`` (norm, value or adaptive clipping) when ``clip_grad`` is set."""
    if optim.clip_grad is not None:
        dispatch_clip_grad(params, optim.clip_grad, mode=optim.clip_mode)


def create_scheduler(optimizer: torch.optim.Optimizer, optim: OptimConfig, steps_per_epoch: int) -> Scheduler:
    """A per-step schedule: linear warm-up for ``warmup_epochs``, then cosine to 0 or multistep decay."""
    warmup = optim.warmup_epochs * steps_per_epoch
    common: dict[str, Any] = dict(warmup_t=warmup, warmup_lr_init=optim.warmup_lr, t_in_epochs=False)
    if optim.schedule == "multistep":
        # timm decays once t + 1 reaches a milestone; +1 makes the first update of epoch m the first decayed one,
        # as torch's MultiStepLR (and the AgMax reference) do.
        milestones = [m * steps_per_epoch + 1 for m in optim.milestones]
        return MultiStepLRScheduler(
            optimizer, decay_t=milestones, decay_rate=optim.gamma, warmup_prefix=False, **common
        )
    total = optim.epochs * steps_per_epoch
    return CosineLRScheduler(optimizer, t_initial=max(total - warmup, 1), warmup_prefix=True, **common)
