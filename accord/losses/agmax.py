"""AgMax: agreement maximisation between two augmented views.

Atienza, "Improving Model Generalization by Agreement of Learned Representations from Data
Augmentation", WACV 2022 (arXiv:2110.10536).

With logits ``z`` (view 1) and ``zt`` (view 2) of one concatenated forward pass, a Q head reads both,
``zq = Q([z, zt])``, and with ``P = softmax``::

    loss = CE([z; zt], [y; y])
         + (sum_c pbar_z log pbar_z + sum_c pbar_zt log pbar_zt + sum_c pbar_q log pbar_q) / 3
         + dl_weight * mean |[P(zq); P(zq)] - [P(z); P(zt)]|

where ``pbar = sum_b P / sum P`` is the batch-marginal class distribution, clamped below at the
float64 machine epsilon. The second term is minus the mean marginal entropy (minimising it spreads
predictions over classes); the third pulls the joint prediction towards each view's prediction.
The Q head is trained with the network and dropped at evaluation. Under DistributedDataParallel the
marginals' sums run over the global batch (all processes, with gradient), so the term is the one a single
process would compute on the whole batch.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..collectives import sum_over_processes
from ..domains import SHARE, WEIGHT, Range, whole
from ._views import check_smoothing, check_views, expand_target, smoothed_nll, split_views, upcast

#: Lower clamp of the batch-marginal probabilities, as in the authors' code (``np.finfo(float).eps``).
MARGINAL_EPS = torch.finfo(torch.float64).eps


def agmax_hidden_units(num_classes: int) -> int:
    """Default width of the Q head: 128 for 10 classes, 512 for 100, 4096 for 1000.

    ``k = floor(log10 C)``; ``n = 128 * 2**k`` if ``k > 1`` else 128; times 4 when ``C >= 1000``.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    k = int(math.floor(math.log10(num_classes)))
    units = 128 * 2**k if k > 1 else 128
    return units * 4 if num_classes >= 1000 else units


class QHead(nn.Sequential):
    """AgMax's Q network: ``Linear(2C, n) -> ReLU -> Linear(n, C)`` on the two views' logits."""

    def __init__(self, num_classes: int, hidden_units: int | None = None) -> None:
        hidden = agmax_hidden_units(num_classes) if hidden_units is None else hidden_units
        super().__init__(nn.Linear(2 * num_classes, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))


def mean_negative_marginal_entropy(probs: Tensor, eps: float = MARGINAL_EPS, global_batch: bool = True) -> Tensor:
    """The mean over ``K`` of ``sum_c pbar_c log pbar_c``, the batch-marginal ``pbar = sum_b probs[k] / sum probs[k]``,
    for ``probs`` of shape ``(K, B, C)``, in one pass (with ``global_batch``, one all-reduce of the ``(K, C)`` sums
    under torch.distributed, so that ``sum_b`` covers every process's rows)."""
    marginal = probs.sum(dim=1)
    if global_batch:
        marginal = sum_over_processes(marginal)
    marginal = (marginal / marginal.sum(dim=1, keepdim=True)).clamp_min(eps)
    return (marginal * marginal.log()).sum(dim=1).mean()


class AgMaxLoss(nn.Module):
    """AgMax loss for two views; owns the Q head, so add its parameters to the optimizer.

    Args:
        num_classes: number of classes ``C``.
        hidden_units: Q head width; ``None`` uses :func:`agmax_hidden_units`, the authors' rule (4096 for
            ImageNet; their released ResNet-50 file is named for 2048).
        dl_weight: weight of the L1 agreement term (4 in the paper).
        global_marginals: under torch.distributed, compute the batch marginals over all processes
            (the single-process loss on the global batch); False uses each process's own rows. Every
            process must then call the loss at each step, as DDP training does.
        label_smoothing: label smoothing of the cross-entropy on each view (timm's ``--smoothing``); 0 as in
            the paper.
    """

    #: The range of each numeric option (config resolution checks them; the types are the signature's).
    OPTION_DOMAINS: ClassVar[dict[str, Range]] = {
        "hidden_units": whole(1, 2**16),
        "dl_weight": WEIGHT,
        "label_smoothing": SHARE,
    }

    def __init__(
        self,
        num_classes: int,
        hidden_units: int | None = None,
        dl_weight: float = 4.0,
        global_marginals: bool = True,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:  # one class: every softmax is 1, every term 0, nothing to learn
            raise ValueError(f"AgMaxLoss needs at least 2 classes, got {num_classes}")
        check_smoothing(label_smoothing)
        self.label_smoothing = label_smoothing
        self.q_head = QHead(num_classes, hidden_units)
        self.dl_weight = dl_weight
        self.global_marginals = global_marginals

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        # one log-softmax over both views serves the cross-entropy and their probabilities; the three marginal
        # entropies and the two L1 means are each one pass over stacked rows (the terms are unchanged)
        check_views("AgMaxLoss", logits, target, 2)
        if logits.shape[1] != (classes := self.q_head[-1].out_features):
            raise ValueError(f"AgMaxLoss was built for {classes} classes; the logits have {logits.shape[1]}")
        logits = upcast(logits)
        z, zt = split_views(logits, 2)
        zq = self.q_head(torch.cat([z, zt], dim=1).to(next(self.q_head.parameters()).dtype))
        log_p = F.log_softmax(logits, dim=1)
        p = log_p.exp()  # [P(z); P(zt)]
        pq = F.softmax(zq, dim=1)

        target = expand_target(target, logits.shape[0])
        ce = smoothed_nll(log_p, target, self.label_smoothing)
        batch, classes = zq.shape
        views = torch.cat([p, pq]).view(3, batch, classes)
        entropy = mean_negative_marginal_entropy(views, global_batch=self.global_marginals)
        l1 = (views[:2] - pq).abs().mean()  # = (mean |pq - p| + mean |pq - pt|) / 2
        loss = ce + entropy + self.dl_weight * l1
        return {"loss": loss, "ce": ce, "entropy": entropy, "l1": l1}
