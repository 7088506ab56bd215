"""AgMax's fused forward (one log-softmax, stacked marginals and L1) against the term-by-term formulation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from accord.losses.agmax import MARGINAL_EPS, AgMaxLoss

pytestmark = pytest.mark.numerics  # fused against term by term: compared with a tolerance on every vector path


def negative_marginal_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``sum_c pbar_c log pbar_c`` of the batch-marginal ``pbar = sum_b probs / sum probs`` (one process)."""
    marginal = probs.sum(dim=0)
    marginal = (marginal / marginal.sum()).clamp_min(MARGINAL_EPS)
    return (marginal * marginal.log()).sum()


def _term_by_term(loss: AgMaxLoss, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss as written before the fusion: three softmaxes, a separate cross-entropy, three marginals."""
    z, zt = logits.chunk(2)
    zq = loss.q_head(torch.cat([z, zt], dim=1))
    p, pt, pq = F.softmax(z, dim=1), F.softmax(zt, dim=1), F.softmax(zq, dim=1)
    full = target.repeat(2, *([1] * (target.dim() - 1))) if target.shape[0] != logits.shape[0] else target
    ce = F.cross_entropy(logits, full)
    entropy = sum(negative_marginal_entropy(q) for q in (p, pt, pq)) / 3
    l1 = 0.5 * ((pq - p).abs().mean() + (pq - pt).abs().mean())
    return ce + entropy + loss.dl_weight * l1


@pytest.mark.parametrize("soft", [False, True], ids=["labels", "mixed-targets"])
def test_fused_agmax_has_the_same_value_and_gradients(soft: bool) -> None:
    torch.manual_seed(0)
    batch, classes = 16, 10
    loss = AgMaxLoss(classes).double()
    logits = (3 * torch.randn(2 * batch, classes, dtype=torch.float64)).requires_grad_()
    if soft:  # per-row mixed targets, as MixUp/CutMix give each view
        target = torch.softmax(torch.randn(2 * batch, classes, dtype=torch.float64), dim=1)
    else:
        target = torch.randint(0, classes, (batch,))
    fused = loss(logits, target)["loss"]
    grads = torch.autograd.grad(fused, [logits, *loss.parameters()])
    reference = _term_by_term(loss, logits, target)
    expected = torch.autograd.grad(reference, [logits, *loss.parameters()])
    assert torch.allclose(fused, reference, rtol=0, atol=1e-6)
    for got, want in zip(grads, expected, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-6)
    # and in float32, as training runs it
    loss32, logits32 = loss.float(), logits.detach().float()
    assert torch.allclose(
        loss32(logits32, target.float() if soft else target)["loss"],
        _term_by_term(loss32, logits32, target.float() if soft else target),
        atol=1e-6,
    )
