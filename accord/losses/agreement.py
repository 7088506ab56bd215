"""The agreement terms that the AgMax paper compares against its own (Table 5 ablations).

Atienza, WACV 2022 (arXiv:2110.10536). Each replaces AgMax's entropy and L1 terms, without a Q head::

    loss = CE([z; zt], [y; y]) + term(z, zt)

- ``mse``: ``mean (z - zt)^2`` over the logits;
- ``kl``:  ``KL(P(zt) || P(z))`` summed over classes and averaged over the batch
  (``F.kl_div(log P(z), log P(zt), log_target=True, reduction="batchmean")``);
- ``ce``:  ``-mean P(z) * log P(zt)`` over batch and classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from ..domains import SHARE, Range
from ._views import check_smoothing, check_views, expand_target, split_views, upcast


def logit_mse(z: Tensor, zt: Tensor) -> Tensor:
    return F.mse_loss(z, zt)


def view_kl(z: Tensor, zt: Tensor) -> Tensor:
    return F.kl_div(F.log_softmax(z, dim=1), F.log_softmax(zt, dim=1), log_target=True, reduction="batchmean")


def view_cross_entropy(z: Tensor, zt: Tensor) -> Tensor:
    return -(F.softmax(z, dim=1) * F.log_softmax(zt, dim=1)).mean()


AGREEMENT_TERMS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": logit_mse,
    "kl": view_kl,
    "ce": view_cross_entropy,
}


class AgreementLoss(nn.Module):
    """CE on both views (with ``label_smoothing``, timm's ``--smoothing``) plus one of :data:`AGREEMENT_TERMS`
    between the views' logits."""

    #: The range of each numeric option (config resolution checks them; the types are the signature's).
    OPTION_DOMAINS: ClassVar[dict[str, Range]] = {"label_smoothing": SHARE}

    def __init__(self, term: str, label_smoothing: float = 0.0) -> None:
        super().__init__()
        check_smoothing(label_smoothing)
        self.label_smoothing = label_smoothing
        if term not in AGREEMENT_TERMS:
            raise ValueError(f"unknown agreement term {term!r}; valid: {', '.join(AGREEMENT_TERMS)}")
        self.term = term

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        check_views("AgreementLoss", logits, target, 2)
        logits = upcast(logits)
        z, zt = split_views(logits, 2)
        ce = F.cross_entropy(logits, expand_target(target, logits.shape[0]), label_smoothing=self.label_smoothing)
        agreement = AGREEMENT_TERMS[self.term](z, zt)
        return {"loss": ce + agreement, "ce": ce, "agreement": agreement}
