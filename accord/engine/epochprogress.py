"""The running totals of an epoch (what a mid-epoch checkpoint stores) and their sum over every process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .distributed import Distributed


@dataclass
class EpochProgress:
    """The running totals of a partly trained epoch: what a mid-epoch checkpoint stores.

    Saving the partial sums (not only the position) makes the metrics line of a resumed epoch equal to
    that of an uninterrupted one. ``steps`` counts the epoch's batches consumed so far (skipped ones too),
    so it is also the position in the epoch's data order where a resumed run starts.
    """

    steps: int = 0
    images: int = 0
    scored: int = 0  # images of the steps that were not skipped (the training top-1's denominator)
    views: int = 0
    seconds: float = 0.0
    skipped: int = 0
    sums: dict[str, Tensor] = field(default_factory=dict)
    correct: Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        """A ``weights_only``-safe copy (tensors on the CPU)."""
        return {
            "steps": self.steps,
            "images": self.images,
            "scored": self.scored,
            "views": self.views,
            "seconds": self.seconds,
            "skipped": self.skipped,
            "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
            "correct": None if self.correct is None else self.correct.detach().cpu(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EpochProgress:
        correct = state["correct"]
        return cls(
            steps=state["steps"],
            images=state["images"],
            scored=state["scored"],
            views=state["views"],
            seconds=state["seconds"],
            skipped=state["skipped"],
            sums={k: v.to(device) for k, v in state["sums"].items()},
            correct=None if correct is None else correct.to(device),
        )


def means(progress: EpochProgress) -> dict[str, float]:
    counted = max(progress.steps - progress.skipped, 1)
    return {k: float(v) / counted for k, v in progress.sums.items()}


def all_processes(progress: EpochProgress, dist: Distributed) -> EpochProgress:
    """The epoch's totals over every process: loss sums averaged (each process's terms are means over
    its equal share of the batch), images and hits summed, wall time of the slowest process."""
    names = sorted(progress.sums)
    if progress.correct is None:
        raise ValueError("the epoch's progress has no hit count (train_one_epoch sets one)")
    counts = (progress.correct, progress.scored, progress.images, progress.views)
    device = progress.correct.device
    values = (*(progress.sums[k] for k in names), *counts)
    local = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    total = dist.sum(local).tolist()
    n = len(names)
    return EpochProgress(
        steps=progress.steps,
        images=int(total[n + 2]),
        scored=int(total[n + 1]),
        views=int(total[n + 3]),
        seconds=float(dist.max(round(progress.seconds * 1e6))) / 1e6,
        skipped=progress.skipped,
        sums={k: torch.tensor(total[i] / dist.world_size) for i, k in enumerate(names)},
        correct=torch.tensor(total[n]),
    )
