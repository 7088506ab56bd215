"""Helpers shared by the losses: view-major batches and per-row targets."""

from __future__ import annotations

import torch
from torch import Tensor


def expand_target(target: Tensor, num_rows: int) -> Tensor:
    """Repeat a per-image target over the views of a view-major batch.

    ``target`` holds one entry per image (``B`` rows, class indices or class probabilities) or
    already one per row (``V*B`` rows, e.g. after per-view mixing). Returns ``num_rows`` rows.
    """
    if target.shape[0] == num_rows:
        return target
    if num_rows % target.shape[0]:
        raise ValueError(f"{num_rows} logit rows cannot be split into views of {target.shape[0]} targets")
    repeats = (num_rows // target.shape[0],) + (1,) * (target.dim() - 1)
    return target.repeat(*repeats)


def upcast(x: Tensor) -> Tensor:
    """Compute loss terms in float32 when the model ran in half precision; leave float32/64 as is."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def split_views(x: Tensor, num_views: int) -> tuple[Tensor, ...]:
    """Split a view-major batch (rows ``[j*B, (j+1)*B)`` are view ``j``) into its views."""
    if x.shape[0] % num_views:
        raise ValueError(f"batch of {x.shape[0]} rows does not split into {num_views} views")
    return torch.chunk(x, num_views, dim=0)
