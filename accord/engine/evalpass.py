"""One evaluation pass: top-1 and top-5 of a model over a loader, summed over every process."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..step import autocast
from .distributed import Distributed
from .progress import eval_progress

EVAL_LINE_S = 10.0  # off a terminal, an evaluation says how far it is at most this often


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    device: torch.device,
    amp: str = "none",
    channels_last: bool = False,
    dist: Distributed | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Top-1 and top-5 accuracy (%) of ``model`` in eval mode over ``loader`` (over every process's
    share of the data under ``dist``); with ``description``, a progress bar on a terminal."""
    model.eval()
    top1 = top5 = total = 0
    shown = description is not None and (dist is None or dist.is_main)  # a bar, or a line every tenth (>= 10 s)
    for x, y in eval_progress(loader, str(description), every_s=EVAL_LINE_S) if shown else loader:
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
    if dist is not None and dist.enabled:
        top1, top5, total = (int(v) for v in dist.sum(torch.tensor([top1, top5, total])).tolist())
    if total == 0:
        return {"top1": float("nan"), "top5": float("nan"), "n": 0}
    return {"top1": 100.0 * top1 / total, "top5": 100.0 * top5 / total, "n": total}
