"""AugMix's Jensen-Shannon consistency loss, as timm implements it.

Hendrycks et al., "AugMix: A Simple Data Processing Method to Improve Robustness and Uncertainty",
ICLR 2020 (arXiv:1912.02781). With the softmaxes ``p_0`` (clean view), ``p_1``, ``p_2`` (AugMix views)
and their mixture ``M = clamp(mean_i p_i, 1e-7, 1)``::

    loss = CE(z_0, y) + alpha * mean_i KL(p_i || M)

The computation is timm's :class:`timm.loss.JsdCrossEntropy`; this module only adapts it to
accord's loss interface and reports the CE and JSD terms separately.
"""

from __future__ import annotations

from typing import ClassVar

from timm.loss import JsdCrossEntropy
from torch import Tensor, nn

from ..domains import SHARE, WEIGHT, Range
from ._views import check_views, upcast


class JsdLoss(nn.Module):
    """CE on the clean view plus ``alpha`` times the JSD across ``num_splits`` views."""

    #: The range of each numeric option (config resolution checks them; the types are the signature's).
    OPTION_DOMAINS: ClassVar[dict[str, Range]] = {"alpha": WEIGHT, "smoothing": SHARE}
    #: View 1 is the clean image (CE is on it alone), the others its augmentations: timm's AugMixDataset layout.
    CLEAN_FIRST: ClassVar[bool] = True

    def __init__(self, num_splits: int = 3, alpha: float = 12.0, smoothing: float = 0.0) -> None:
        super().__init__()
        self.num_views = num_splits
        self.jsd = JsdCrossEntropy(num_splits=num_splits, alpha=alpha, smoothing=smoothing)

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        if target.dim() != 1:
            raise ValueError("the JSD loss takes class-index targets (mixed targets are not supported)")
        check_views("JsdLoss", logits, target, self.num_views)
        logits = upcast(logits)
        batch = logits.shape[0] // self.num_views
        loss = self.jsd(logits, target)
        ce = self.jsd.cross_entropy_loss(logits[:batch], target[:batch]).detach()
        return {"loss": loss, "ce": ce, "jsd": loss.detach() - ce}
