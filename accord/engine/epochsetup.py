"""How each batch of a run becomes an update: the settings every epoch of the run shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import torch
from torch import Tensor

from ..config.schema import NonFiniteMode
from ..views import MixedBatch
from .distributed import Distributed

NONFINITE_MODES: tuple[str, ...] = get_args(NonFiniteMode)


@dataclass
class EpochSetup:
    """How each batch becomes an update, the same for every epoch of a run.

    ``views`` makes the view-major batch from un-augmented images on the device (``augment_on: device``);
    ``mixer`` applies MixUp/CutMix; ``scaler`` scales fp16 losses; ``schedule(global_step)`` runs before
    each update (lr and loss-weight schedules); ``dist`` makes the returned numbers cover all processes.
    """

    device: torch.device
    mixer: Callable[[Tensor, Tensor], MixedBatch] | None = None
    views: Callable[[Tensor], Tensor] | None = None
    scaler: torch.amp.GradScaler | None = None
    dist: Distributed | None = None
    channels_last: bool = False
    log_interval: int = 50
    nonfinite: NonFiniteMode = "stop"
    schedule: Callable[[int], None] | None = None
    clip: Callable[[], None] | None = None  # clips the gradients (unscaled under fp16) before each update
    after_update: Callable[[int], None] | None = None  # after update global_step: the weights' EMA
    total_steps: int | None = None  # the run's updates, for its ETA
    on_log: Callable[[int, dict[str, float]], None] | None = None  # every log_interval updates (.steplog)
    micro_batch: int | None = None  # rows of each micro-batch of an update (gradient accumulation); None: whole

    def __post_init__(self) -> None:
        if self.nonfinite not in NONFINITE_MODES:
            raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE_MODES)}, got {self.nonfinite!r}")
