"""View-aware MixUp and CutMix, applied to a collated view-major batch.

MixUp (Zhang et al., ICLR 2018) blends each image with a partner, ``x = lam * x + (1 - lam) * x[perm]``
with ``lam ~ Beta(a, a)``; CutMix (Yun et al., ICCV 2019) pastes a box of the partner whose area is
``1 - lam`` and corrects ``lam`` to the pasted area after clipping. Targets become
``lam * onehot(y) + (1 - lam) * onehot(y[perm])``, so any cross-entropy on them equals
``lam * CE(z, y) + (1 - lam) * CE(z, y[perm])``. Each method mixes views its own way:

- ``each`` (CE, label smoothing, AgMax and its ablations): whether the batch is mixed, and with MixUp or
  CutMix, is decided once; then every view draws its own ``lam``, partner permutation and box (AgMax).
- ``first`` (Tied-Augment): only view 1 is mixed; view 2 stays clean, and the feature-similarity target
  is view 2's features mixed with the same ``lam`` and partner (:class:`FeatureMix`).
- JSD refuses mixing, as timm does.

torchvision's MixUp/CutMix always pair each image with its neighbour in the batch and do not return
``lam``; the methods need per-view partners and the ``lam`` itself, so the few lines of mixing are here.
The draws come from a NumPy generator seeded per epoch, so runs do not depend on other RNG users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

MixKind = Literal["none", "mixup", "cutmix", "mixup-cutmix"]
MIX_KINDS: tuple[str, ...] = get_args(MixKind)
#: How a method mixes its views: ``each`` view on its own (AgMax), or the ``first`` only (Tied-Augment).
ViewMixing = Literal["each", "first"]
MIX_VIEWS: tuple[str, ...] = get_args(ViewMixing)


@dataclass(frozen=True)
class FeatureMix:
    """Mix a view's features as its partner view's images were mixed: ``lam * f + (1 - lam) * f[index]``."""

    lam: float
    index: Tensor

    def __call__(self, features: Tensor) -> Tensor:
        return self.lam * features + (1.0 - self.lam) * features[self.index.to(features.device)]


@dataclass
class MixedBatch:
    images: Tensor  # (V*B, C, H, W), view-major
    target: Tensor  # (V*B, num_classes) class probabilities, or (B,) labels when nothing was mixed
    feature_mix: FeatureMix | None = None  # Tied-Augment's target for view 2's features
    lams: tuple[float, ...] = ()  # the lam of each mixed view (area-corrected for CutMix)


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int, float]:
    """A box of area about ``(1 - lam) * H * W`` centred uniformly, clipped to the image.

    Returns ``(top, bottom, left, right, lam)`` with ``lam = 1 - box area / image area`` after clipping.
    """
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right, 1.0 - (bottom - top) * (right - left) / (height * width)


class ViewMixer:
    """Mix a view-major batch for a method's mixing rule (``each`` or ``first``).

    Args:
        num_classes: number of classes, for the one-hot targets.
        num_views: views per image in the batch.
        kind: ``mixup``, ``cutmix`` or ``mixup-cutmix`` (a batch uses CutMix with ``switch_prob``).
        views: ``each`` or ``first``, see the module docstring.
        mixup_alpha, cutmix_alpha: Beta parameters.
        prob: probability that a batch is mixed at all.
    """

    def __init__(
        self,
        num_classes: int,
        num_views: int,
        kind: str,
        views: str = "each",
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
    ) -> None:
        if kind not in MIX_KINDS[1:]:
            raise ValueError(f"unknown mixing {kind!r}; valid: {', '.join(MIX_KINDS[1:])}")
        if views not in MIX_VIEWS:
            raise ValueError(f"unknown view mixing {views!r}; valid: {', '.join(MIX_VIEWS)}")
        if views == "first" and num_views != 2:
            raise ValueError("mixing only the first view needs exactly 2 views")
        if "mixup" in kind and mixup_alpha <= 0:
            raise ValueError(f"mixup_alpha must be positive, got {mixup_alpha}")
        if "cutmix" in kind and cutmix_alpha <= 0:
            raise ValueError(f"cutmix_alpha must be positive, got {cutmix_alpha}")
        if not 0.0 <= prob <= 1.0 or not 0.0 <= switch_prob <= 1.0:
            raise ValueError("mix_prob and switch_prob must be in [0, 1]")
        self.num_classes, self.num_views, self.kind, self.views = num_classes, num_views, kind, views
        self.mixup_alpha, self.cutmix_alpha, self.prob, self.switch_prob = mixup_alpha, cutmix_alpha, prob, switch_prob
        self.rng = np.random.default_rng(0)

    def set_epoch(self, seed: int, epoch: int, rank: int = 0) -> None:
        """Restart the draws at a point fixed by (seed, epoch): resumed runs mix as uninterrupted ones.
        Each process of a distributed run (``rank``) draws its own stream for its share of the batch."""
        self.rng = np.random.default_rng([seed, epoch] if rank == 0 else [seed, epoch, rank])

    def __call__(self, images: Tensor, labels: Tensor) -> MixedBatch:
        if self.rng.random() >= self.prob:
            return MixedBatch(images, labels)
        cutmix = self.kind == "cutmix" or (self.kind == "mixup-cutmix" and self.rng.random() < self.switch_prob)
        batch = labels.shape[0]
        onehot = F.one_hot(labels, self.num_classes).to(images.dtype if images.is_floating_point() else torch.float32)
        views, targets, lams = list(images.chunk(self.num_views)), [onehot] * self.num_views, []
        feature_mix = None
        for v in range(self.num_views if self.views == "each" else 1):
            perm = torch.from_numpy(self.rng.permutation(batch)).to(labels.device)
            if cutmix:
                lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
                top, bottom, left, right, lam = cutmix_box(images.shape[-2], images.shape[-1], lam, self.rng)
                mixed = views[v].clone()
                mixed[..., top:bottom, left:right] = views[v][perm][..., top:bottom, left:right]
            else:
                lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
                mixed = lam * views[v] + (1.0 - lam) * views[v][perm]
            views[v] = mixed
            targets[v] = lam * onehot + (1.0 - lam) * onehot[perm]
            lams.append(lam)
            if self.views == "first":
                feature_mix = FeatureMix(lam, perm)
        return MixedBatch(torch.cat(views), torch.cat(targets), feature_mix, tuple(lams))
