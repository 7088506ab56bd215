"""Plain classification losses: the baselines every agreement method is measured against."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from ..domains import SHARE, Range
from ._views import check_smoothing, expand_target, upcast


class ViewCrossEntropy(nn.Module):
    """Cross-entropy averaged over every row of a view-major batch.

    ``loss = mean_{v, b} CE(z_{v,b}, y_b)``, with optional label smoothing (Szegedy et al., CVPR 2016,
    "Rethinking the Inception Architecture") computed by :func:`torch.nn.functional.cross_entropy`.
    With one view this is the usual CE baseline; with two views it is the "two-view CE" control
    that sees as many augmented images as AgMax or Tied-Augment but has no agreement term.
    """

    #: The range of each numeric option (config resolution checks them; the types are the signature's).
    OPTION_DOMAINS: ClassVar[dict[str, Range]] = {"label_smoothing": SHARE}

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        check_smoothing(label_smoothing)
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        ce = F.cross_entropy(
            upcast(logits), expand_target(target, logits.shape[0]), label_smoothing=self.label_smoothing
        )
        return {"loss": ce, "ce": ce}


class LabelSmoothingCrossEntropy(ViewCrossEntropy):
    """:class:`ViewCrossEntropy` with label smoothing 0.1 unless told otherwise (Szegedy et al., CVPR 2016: the
    label-smoothing control, another regulariser spending the same budget as an agreement term)."""

    def __init__(self, label_smoothing: float = 0.1) -> None:
        super().__init__(label_smoothing)
