"""Helpers shared by the losses: view-major batches and per-row targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def check_smoothing(label_smoothing: float) -> None:
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")


def smoothed_nll(log_probs: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy from log-probabilities, as ``F.cross_entropy(..., label_smoothing=s)`` computes it:
    the target (class indices or probabilities) becomes ``(1 - s) * target + s / C``. Mixing smoothed one-hot
    targets equals smoothing mixed ones, so this is timm's ``LabelSmoothingCrossEntropy`` on labels and its
    ``SoftTargetCrossEntropy`` on Mixup's smoothed targets."""
    if target.dim() == 1:
        nll = F.nll_loss(log_probs, target)
    else:
        nll = -(target * log_probs).sum(dim=1).mean()
    if not label_smoothing:
        return nll
    return (1.0 - label_smoothing) * nll - label_smoothing * log_probs.mean(dim=1).mean()


def upcast(x: Tensor) -> Tensor:
    """Compute loss terms in float32 when the model ran in half precision; leave float32/64 as is."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def split_views(x: Tensor, num_views: int) -> tuple[Tensor, ...]:
    """Split a view-major batch (rows ``[j*B, (j+1)*B)`` are view ``j``) into its views."""
    if x.shape[0] % num_views:
        raise ValueError(f"batch of {x.shape[0]} rows does not split into {num_views} views")
    return torch.chunk(x, num_views, dim=0)


def check_views(loss: str, logits: Tensor, target: Tensor, num_views: int, features: Tensor | None = None) -> None:
    """A ValueError (TypeError for a non-tensor) in one line when a loss's inputs are not a view-major batch
    of ``num_views`` views: ``num_views * B`` logit rows for ``B`` targets (or one target per row, as timm's
    collate and per-view mixing give), and features, when given, row for row with the logits. Without it a
    wrong view count splits the batch at the wrong row and pairs views of different images without a word."""
    for name, x in (("logits", logits), ("target", target), ("features", features)):
        if x is not None and not isinstance(x, Tensor):
            raise TypeError(
                f"{loss}: {name} must be a tensor, got {type(x).__name__} "
                "(with a MultiViewModel's output, pass out.logits and out.features)"
            )
    rows, images = logits.shape[0], target.shape[0]
    if rows != num_views * images and not (rows == images and rows % num_views == 0):
        raise ValueError(
            f"{loss} takes {num_views} views: {rows} logit rows for {images} targets "
            f"(expected {num_views} x {images} = {num_views * images} rows, view-major)"
        )
    if features is not None and features.shape[0] != rows:
        raise ValueError(f"{loss}: {features.shape[0]} feature rows for {rows} logit rows (expected one per row)")
