"""One update of a training step, in two parts: the backward pass of a loss, then the optimizer step.

They are separate so that several backward passes may go into one optimizer step (gradient accumulation):
:func:`backward` only adds to the gradients; :func:`apply_update` clips them (unscaled under fp16) and steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def backward(loss: Tensor, scaler: torch.amp.GradScaler | None = None) -> None:
    """Add ``loss``'s gradients (scaled by ``scaler`` under fp16) to the parameters' ``.grad``."""
    (scaler.scale(loss) if scaler is not None else loss).backward()


def apply_update(
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None = None,
    clip: Callable[[], None] | None = None,
) -> None:
    """Gradient clipping (``clip``, on unscaled gradients under fp16) and the optimizer step."""
    if scaler is None:
        if clip is not None:
            clip()
        optimizer.step()
        return
    if clip is not None:
        scaler.unscale_(optimizer)
        clip()
    scaler.step(optimizer)
    scaler.update()
