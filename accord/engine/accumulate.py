"""Gradient accumulation: one update's batch as micro-batches whose gradients add up to the whole batch's.

The loader yields one update's images (``batch_size x accum_steps``, this process's share); :func:`micro_batches`
splits them into rows of ``batch_size`` (per process), the last one shorter when the batch is (``drop_last:
false``). Each micro-batch's loss is weighted by its share of the update's rows, so for a loss that is a mean over
the batch's rows the summed gradients are the whole batch's. Under DistributedDataParallel :func:`sync_on_last`
skips the gradient all-reduce on every micro-batch but the last.
"""

from __future__ import annotations

import contextlib

from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel


def micro_batches(x: Tensor, y: Tensor, rows: int | None) -> list[tuple[Tensor, Tensor]]:
    """``(x, y)`` in consecutive pieces of ``rows`` images (the last may be shorter); whole when ``rows`` is None.

    ``x`` holds ``V`` rows per label (``V`` views, view-major: rows ``[j*B, (j+1)*B)`` are view ``j``; ``V = 1``
    for images the device makes views of); each piece keeps that layout.
    """
    n = y.shape[0]
    if rows is None or rows >= n:
        return [(x, y)]
    views = x.reshape(x.shape[0] // n, n, *x.shape[1:])
    pieces = [v.reshape(-1, *x.shape[1:]) for v in views.split(rows, dim=1)]
    return list(zip(pieces, y.split(rows), strict=True))


def sync_on_last(step: nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """DistributedDataParallel's ``no_sync`` for every micro-batch but the last (a no-op otherwise)."""
    if isinstance(step, DistributedDataParallel) and not last:
        return step.no_sync()
    return contextlib.nullcontext()


class TermSum:
    """An update's loss terms as the row-weighted mean of its micro-batches' terms (detached), and view 1's
    logits of every micro-batch in order; ``views`` counts the rows the model saw."""

    def __init__(self, rows: int) -> None:
        self.rows, self.views = rows, 0
        self.terms: dict[str, Tensor] = {}
        self.logits: list[Tensor] = []

    def add(self, terms: dict[str, Tensor], logits: Tensor, rows: int) -> None:
        share = rows / self.rows
        for name, value in terms.items():
            part = value.detach() * share if share != 1 else value
            self.terms[name] = self.terms[name] + part if name in self.terms else part
        self.logits.append(logits[:rows] if share != 1 else logits)
