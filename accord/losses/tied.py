"""Tied-Augment: tie the representations of two differently augmented views.

Kurtulus, Li, Dauphin, Cubuk, "Tied-Augment: Controlling Representation Similarity Improves Data
Augmentation", ICML 2023 (arXiv:2305.13520). With logits ``z1, z2`` and pooled pre-classifier
features ``f1, f2`` of the two views::

    loss = (CE(z1, y) + CE(z2, y)) / 2 + w(t) * mean (f1 - f2)^2

(``CE(z1, y)`` alone when ``both_views_ce`` is off). The MSE averages over batch and feature
dimensions; no gradient is stopped. With tied MixUp/CutMix only view 1 is mixed, and the target of
``f1`` is view 2's features mixed with the same ``lam`` and partner: ``lam * f2 + (1 - lam) * f2[perm]``.
``w(t)`` follows a schedule over training progress ``t`` in [0, 1]: ``constant`` (w), ``linear``
(w * t) or ``warmup`` (w * min(1, t / warmup)).

The similarity term is the MSE by default; the authors' code also offers (ekurtulus/tied-augment,
``pytorch/supervised/losses.py`` ``similarity_handler``, ``flax/supervised/train.py``):

* ``l1``: ``mean |f1 - f2|`` (their ``mae`` / ``l1``);
* ``cosine``: ``1 - mean_b cos(f1_b, f2_b)``. Their ``cosine`` term is ``+ w * mean cos``, which ties the
  views only with a negative weight; ``1 - cos`` with weight ``w`` has the same gradient as theirs with
  weight ``-w``, so a positive weight ties the views here as with the other terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Literal, get_args

import torch.nn.functional as F
from torch import Tensor, nn

from ..domains import SHARE, WEIGHT, Range
from ._views import check_smoothing, check_views, expand_target, split_views, upcast

WeightSchedule = Literal["constant", "linear", "warmup"]
Similarity = Literal["mse", "l1", "cosine"]
WEIGHT_SCHEDULES: tuple[str, ...] = get_args(WeightSchedule)
SIMILARITIES: tuple[str, ...] = get_args(Similarity)


class TiedAugmentLoss(nn.Module):
    """Tied-Augment loss for two views; needs the model's pooled features.

    The loss takes the views' logits and features however the model made them. The authors make them with one
    forward pass per view (ekurtulus/tied-augment ``pytorch/supervised/train.py#L20-L30``, ``flax/supervised/
    train.py#L279-L300``): in accord ``bn: separate`` (``MultiViewModel(..., bn_mode="separate")``). accord's
    default ``bn: concat`` (one pass over both views, shared BatchNorm statistics) is not their step.
    The ``warmup`` schedule ramps over the first ``warmup`` of training; the authors' ``warmup`` as written
    (``losses.py#L316-L323``) ramps over all of it, which is ``linear`` here.

    Args:
        weight: weight ``w`` of the similarity term (1 in the paper's ImageNet runs).
        both_views_ce: average the CE of both views (True) or use view 1 only.
        schedule: how the weight grows over training, one of :data:`WEIGHT_SCHEDULES`.
        warmup: fraction of training over which ``warmup`` ramps the weight up.
        similarity: the term between the views' features, one of :data:`SIMILARITIES`; its value is
            returned under its own name (``mse``, ``l1`` or ``cosine``).
        label_smoothing: label smoothing of each view's cross-entropy (timm's ``--smoothing``).
    """

    #: The range of each numeric option (config resolution checks them; the types are the signature's).
    OPTION_DOMAINS: ClassVar[dict[str, Range]] = {
        "weight": WEIGHT,
        "warmup": Range(0, 1, low_open=True),
        "label_smoothing": SHARE,
    }

    def __init__(
        self,
        weight: float = 1.0,
        both_views_ce: bool = True,
        schedule: WeightSchedule = "constant",
        warmup: float = 0.1,
        similarity: Similarity = "mse",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        check_smoothing(label_smoothing)
        if similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; valid: {', '.join(SIMILARITIES)}")
        if schedule not in WEIGHT_SCHEDULES:
            raise ValueError(f"unknown weight schedule {schedule!r}; valid: {', '.join(WEIGHT_SCHEDULES)}")
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0, got {weight}")
        if schedule == "warmup" and not 0.0 < warmup <= 1.0:
            raise ValueError(f"warmup must be a fraction of training in (0, 1], got {warmup}")
        self.weight = weight
        self.both_views_ce = both_views_ce
        self.schedule = schedule
        self.warmup = warmup
        self.similarity = similarity
        self.label_smoothing = label_smoothing
        self.progress = 1.0

    @property
    def scheduled(self) -> bool:
        """Whether the weight depends on the training progress (so a loop must call :meth:`set_progress`)."""
        return self.schedule != "constant"

    def set_progress(self, progress: float) -> None:
        """Tell the weight schedule how far training is, from 0 (start) to 1 (end)."""
        self.progress = min(max(progress, 0.0), 1.0)

    def current_weight(self) -> float:
        if self.schedule == "linear":
            return self.weight * self.progress
        if self.schedule == "warmup":
            return self.weight * min(1.0, self.progress / self.warmup)
        return self.weight

    def forward(
        self,
        logits: Tensor,
        target: Tensor,
        features: Tensor | None = None,
        feature_mix: Callable[[Tensor], Tensor] | None = None,
    ) -> dict[str, Tensor]:
        check_views("TiedAugmentLoss", logits, target, 2, features)
        if features is None:
            raise ValueError("TiedAugmentLoss needs the pooled features of both views")
        logits, features = upcast(logits), upcast(features)
        target = expand_target(target, logits.shape[0])
        if self.both_views_ce:
            ce = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        else:
            view1, target1 = split_views(logits, 2)[0], split_views(target, 2)[0]
            ce = F.cross_entropy(view1, target1, label_smoothing=self.label_smoothing)
        f1, f2 = split_views(features, 2)
        target = feature_mix(f2) if feature_mix is not None else f2
        if self.similarity == "mse":
            term = F.mse_loss(f1, target)
        elif self.similarity == "l1":
            term = F.l1_loss(f1, target)
        else:
            term = 1.0 - F.cosine_similarity(f1, target, dim=1).mean()
        return {"loss": ce + self.current_weight() * term, "ce": ce, self.similarity: term}
