"""Tests for accord.losses: every loss against a value computed by hand.

The references below use plain Python ``math`` on literal numbers (explicit loops, no torch), so a
wrong sign, a wrong mean or a missing factor in the implementation changes the compared value.
Gradients are checked against central finite differences of the same hand-written references.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import pytest
import torch
from torch import nn

from accord.losses import (
    METHODS,
    AgMaxLoss,
    AgreementLoss,
    JsdLoss,
    QHead,
    TiedAugmentLoss,
    ViewCrossEntropy,
    agmax_hidden_units,
    create_loss,
    method_spec,
)

Matrix = list[list[float]]

pytestmark = pytest.mark.numerics  # float32 losses against hand-computed float64 values, with tolerances

# ---------------------------------------------------------------------------------------------------
# Literal inputs: B = 2 images, C = 3 classes, D = 4 feature dimensions.
# ---------------------------------------------------------------------------------------------------
Z1: Matrix = [[1.0, 2.0, 0.5], [0.3, -1.2, 0.8]]  # view 1 logits
Z2: Matrix = [[0.2, 1.5, -0.4], [1.1, 0.0, -0.7]]  # view 2 logits
Z3: Matrix = [[-0.5, 0.4, 1.2], [0.6, 0.9, -1.5]]  # view 3 logits (JSD)
Y: list[int] = [1, 2]
F1: Matrix = [[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.2, 0.7]]  # view 1 pooled features
F2: Matrix = [[0.1, -0.5, 1.0, 0.4], [1.0, 0.0, 0.3, -0.3]]  # view 2 pooled features

# Float32 computation compared with float64 references.
TOL = {"rel": 1e-5, "abs": 1e-6}
FLOAT64_EPS = sys.float_info.epsilon  # AgMax's lower clamp of the batch-marginal probabilities


def _t(*views: Matrix, requires_grad: bool = False) -> torch.Tensor:
    """A view-major float32 tensor from literal per-view matrices."""
    rows = [row for view in views for row in view]
    return torch.tensor(rows, dtype=torch.float32, requires_grad=requires_grad)


def _y(*labels: int) -> torch.Tensor:
    return torch.tensor(list(labels), dtype=torch.long)


# ---------------------------------------------------------------------------------------------------
# Hand-written references (plain Python, float64).
# ---------------------------------------------------------------------------------------------------
def softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def ref_ce(rows: Matrix, labels: list[int]) -> float:
    """Mean over rows of ``-log p[y]``."""
    total = 0.0
    for row, label in zip(rows, labels, strict=True):
        total += -log_softmax(row)[label]
    return total / len(rows)


def ref_smoothed_ce(rows: Matrix, labels: list[int], eps: float) -> float:
    """Mean over rows of ``(1 - eps) * (-log p[y]) + eps * mean_c(-log p_c)``."""
    total = 0.0
    for row, label in zip(rows, labels, strict=True):
        logp = log_softmax(row)
        uniform = sum(-lp for lp in logp) / len(logp)
        total += (1 - eps) * (-logp[label]) + eps * uniform
    return total / len(rows)


def ref_soft_ce(rows: Matrix, targets: Matrix) -> float:
    """Mean over rows of ``-sum_c t_c log p_c``."""
    total = 0.0
    for row, t in zip(rows, targets, strict=True):
        logp = log_softmax(row)
        total += -sum(t[c] * logp[c] for c in range(len(row)))
    return total / len(rows)


def ref_mse(a: Matrix, b: Matrix) -> float:
    total, n = 0.0, 0
    for ra, rb in zip(a, b, strict=True):
        for va, vb in zip(ra, rb, strict=True):
            total += (va - vb) ** 2
            n += 1
    return total / n


def ref_kl(z: Matrix, zt: Matrix) -> float:
    """``sum_b sum_c p_zt (log p_zt - log p_z) / B``."""
    total = 0.0
    for rz, rzt in zip(z, zt, strict=True):
        lz, lzt = log_softmax(rz), log_softmax(rzt)
        for c in range(len(rz)):
            total += math.exp(lzt[c]) * (lzt[c] - lz[c])
    return total / len(z)


def ref_view_ce(z: Matrix, zt: Matrix) -> float:
    """``-mean over B*C entries of softmax(z) * log_softmax(zt)``."""
    total, n = 0.0, 0
    for rz, rzt in zip(z, zt, strict=True):
        p, lzt = softmax(rz), log_softmax(rzt)
        for c in range(len(rz)):
            total += -p[c] * lzt[c]
            n += 1
    return total / n


REF_AGREEMENT: dict[str, Callable[[Matrix, Matrix], float]] = {"mse": ref_mse, "kl": ref_kl, "ce": ref_view_ce}


def ref_agreement(term: str, z: Matrix, zt: Matrix, y: list[int]) -> dict[str, float]:
    ce = ref_ce(z + zt, y + y)
    agreement = REF_AGREEMENT[term](z, zt)
    return {"loss": ce + agreement, "ce": ce, "agreement": agreement}


def ref_neg_marginal_entropy(probs: Matrix) -> float:
    """``sum_c pbar_c log pbar_c`` with ``pbar = sum_b probs / sum probs`` clamped at float64 eps."""
    num_classes = len(probs[0])
    column = [sum(p[c] for p in probs) for c in range(num_classes)]
    total = sum(column)
    out = 0.0
    for c in range(num_classes):
        pbar = max(column[c] / total, FLOAT64_EPS)
        out += pbar * math.log(pbar)
    return out


def mlp(w1: Matrix, b1: list[float], w2: Matrix, b2: list[float]) -> Callable[[list[float]], list[float]]:
    """``Linear(w1, b1) -> ReLU -> Linear(w2, b2)`` on one row, by explicit loops."""

    def q(x: list[float]) -> list[float]:
        hidden = [max(0.0, sum(w * v for w, v in zip(wr, x, strict=True)) + b) for wr, b in zip(w1, b1, strict=True)]
        return [sum(w * h for w, h in zip(wr, hidden, strict=True)) + b for wr, b in zip(w2, b2, strict=True)]

    return q


def ref_agmax(
    z: Matrix, zt: Matrix, y: list[int], q: Callable[[list[float]], list[float]], dl_weight: float = 4.0
) -> dict[str, float]:
    ce = ref_ce(z + zt, y + y)
    zq = [q(rz + rzt) for rz, rzt in zip(z, zt, strict=True)]  # Q reads [z, zt] concatenated per row
    p = [softmax(r) for r in z]
    pt = [softmax(r) for r in zt]
    pq = [softmax(r) for r in zq]
    entropy = (ref_neg_marginal_entropy(p) + ref_neg_marginal_entropy(pt) + ref_neg_marginal_entropy(pq)) / 3
    # mean |[Pq; Pq] - [Pz; Pzt]| over 2 * B * C entries
    l1, n = 0.0, 0
    for other in (p, pt):
        for rq, ro in zip(pq, other, strict=True):
            for c in range(len(rq)):
                l1 += abs(rq[c] - ro[c])
                n += 1
    l1 /= n
    return {"loss": ce + entropy + dl_weight * l1, "ce": ce, "entropy": entropy, "l1": l1}


def ref_tied(
    z1: Matrix, z2: Matrix, y: list[int], f1: Matrix, f2: Matrix, weight: float, both_views_ce: bool = True
) -> dict[str, float]:
    ce = (ref_ce(z1, y) + ref_ce(z2, y)) / 2 if both_views_ce else ref_ce(z1, y)
    mse = ref_mse(f1, f2)
    return {"loss": ce + weight * mse, "ce": ce, "mse": mse}


def ref_jsd(views: list[Matrix], y: list[int], alpha: float) -> dict[str, float]:
    """CE on view 0 + alpha * mean_i KL(p_i || M), M = clamp(mean_i p_i, 1e-7, 1), batchmean KL."""
    ce = ref_ce(views[0], y)
    probs = [[softmax(r) for r in v] for v in views]
    num_images, num_classes = len(views[0]), len(views[0][0])
    kl_sum = 0.0
    for p_view in probs:
        kl = 0.0
        for b in range(num_images):
            for c in range(num_classes):
                mixture = sum(pv[b][c] for pv in probs) / len(probs)
                mixture = min(max(mixture, 1e-7), 1.0)
                p = p_view[b][c]
                kl += p * (math.log(p) - math.log(mixture))
        kl_sum += kl / num_images
    jsd = alpha * kl_sum / len(probs)
    return {"loss": ce + jsd, "ce": ce, "jsd": jsd}


def numerical_grad(fn: Callable[[Matrix], float], rows: Matrix, h: float = 1e-6) -> Matrix:
    """Central finite differences of a float64 reference with respect to every entry of ``rows``."""
    grad = []
    for i, row in enumerate(rows):
        grad_row = []
        for j in range(len(row)):
            plus = [list(r) for r in rows]
            minus = [list(r) for r in rows]
            plus[i][j] += h
            minus[i][j] -= h
            grad_row.append((fn(plus) - fn(minus)) / (2 * h))
        grad.append(grad_row)
    return grad


def assert_terms(out: dict[str, torch.Tensor], expected: dict[str, float]) -> None:
    assert set(expected) <= set(out)
    for key, value in expected.items():
        assert out[key].dim() == 0, key
        assert out[key].item() == pytest.approx(value, **TOL), key


def assert_grad(actual: torch.Tensor, expected: Matrix) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=torch.float32), rtol=1e-3, atol=2e-5)


# ---------------------------------------------------------------------------------------------------
# Sanity of the references themselves, against closed forms.
# ---------------------------------------------------------------------------------------------------
def test_references_match_closed_forms() -> None:
    assert ref_ce([[0.0, 0.0, 0.0]], [1]) == pytest.approx(math.log(3))
    assert ref_ce([[math.log(2.0), 0.0]], [0]) == pytest.approx(math.log(1.5))  # p = 2/3
    assert ref_smoothed_ce([[0.0, 0.0, 0.0]], [2], 0.1) == pytest.approx(math.log(3))
    assert ref_kl(Z1, Z1) == pytest.approx(0.0, abs=1e-15)
    assert ref_kl(Z1, Z2) != pytest.approx(ref_kl(Z2, Z1))  # the inputs make KL's direction visible
    assert ref_view_ce(Z1, Z2) != pytest.approx(ref_view_ce(Z2, Z1))
    assert ref_neg_marginal_entropy([[0.5, 0.5], [0.5, 0.5]]) == pytest.approx(-math.log(2))
    assert ref_jsd([Z1, Z1, Z1], Y, 12.0)["jsd"] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------------------------------------------
# 1. ViewCrossEntropy
# ---------------------------------------------------------------------------------------------------
def test_view_ce_one_view() -> None:
    out = ViewCrossEntropy()(_t(Z1), _y(*Y))
    expected = ref_ce(Z1, Y)
    assert_terms(out, {"loss": expected, "ce": expected})


def test_view_ce_two_views_repeats_target() -> None:
    out = ViewCrossEntropy()(_t(Z1, Z2), _y(*Y))
    expected = ref_ce(Z1 + Z2, Y + Y)
    assert_terms(out, {"loss": expected, "ce": expected})
    # The mean is over all V*B rows, not the sum of per-view means.
    assert expected == pytest.approx((ref_ce(Z1, Y) + ref_ce(Z2, Y)) / 2)


def test_view_ce_per_row_target_is_used_as_is() -> None:
    labels = [1, 2, 0, 0]  # e.g. different labels per view after per-view mixing
    out = ViewCrossEntropy()(_t(Z1, Z2), _y(*labels))
    assert_terms(out, {"loss": ref_ce(Z1 + Z2, labels)})


def test_view_ce_label_smoothing() -> None:
    out = ViewCrossEntropy(label_smoothing=0.1)(_t(Z1, Z2), _y(*Y))
    expected = ref_smoothed_ce(Z1 + Z2, Y + Y, 0.1)
    assert_terms(out, {"loss": expected, "ce": expected})
    assert expected != pytest.approx(ref_ce(Z1 + Z2, Y + Y), rel=1e-3)


def test_view_ce_soft_targets_per_row() -> None:
    targets = [[0.1, 0.7, 0.2], [0.0, 0.25, 0.75], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    out = ViewCrossEntropy()(_t(Z1, Z2), torch.tensor(targets))
    assert_terms(out, {"loss": ref_soft_ce(Z1 + Z2, targets)})


def test_view_ce_soft_targets_per_image_are_repeated() -> None:
    targets = [[0.1, 0.7, 0.2], [0.0, 0.25, 0.75]]
    out = ViewCrossEntropy()(_t(Z1, Z2), torch.tensor(targets))
    assert_terms(out, {"loss": ref_soft_ce(Z1 + Z2, targets + targets)})


def test_view_ce_gradient_is_softmax_minus_onehot_over_rows() -> None:
    logits = _t(Z1, Z2, requires_grad=True)
    ViewCrossEntropy()(logits, _y(*Y))["loss"].backward()
    rows, labels = Z1 + Z2, Y + Y
    expected = [
        [(p - (1.0 if c == label else 0.0)) / len(rows) for c, p in enumerate(softmax(row))]
        for row, label in zip(rows, labels, strict=True)
    ]
    assert_grad(logits.grad, expected)


def test_view_ce_rejects_bad_smoothing_and_bad_split() -> None:
    with pytest.raises(ValueError):
        ViewCrossEntropy(label_smoothing=1.0)
    with pytest.raises(ValueError):
        ViewCrossEntropy(label_smoothing=-0.1)
    with pytest.raises(ValueError):
        ViewCrossEntropy()(torch.zeros(5, 3), _y(0, 1))  # 5 rows are not views of 2 images


# ---------------------------------------------------------------------------------------------------
# 2. AgMax
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "num_classes, units",
    [(1, 128), (2, 128), (10, 128), (99, 128), (100, 512), (200, 512), (999, 512), (1000, 4096), (10000, 2048 * 4)],
)
def test_agmax_hidden_units(num_classes: int, units: int) -> None:
    # k = floor(log10 C); n = 128 * 2**k if k > 1 else 128; x4 if C >= 1000
    assert agmax_hidden_units(num_classes) == units


def test_agmax_hidden_units_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        agmax_hidden_units(0)


def test_qhead_shape() -> None:
    head = QHead(10)
    assert isinstance(head[0], nn.Linear) and (head[0].in_features, head[0].out_features) == (20, 128)
    assert isinstance(head[1], nn.ReLU)
    assert isinstance(head[2], nn.Linear) and (head[2].in_features, head[2].out_features) == (128, 10)
    assert len(head) == 3
    assert head(torch.zeros(4, 20)).shape == (4, 10)
    assert QHead(100)[0].out_features == 512
    assert QHead(3, hidden_units=7)[2].in_features == 7
    assert AgMaxLoss(1000).q_head[0].out_features == 4096


def test_agmax_value_with_constant_q_output() -> None:
    """All Q weights zero: zq is exactly the final bias for every image."""
    loss = AgMaxLoss(3)
    b2 = [0.4, -0.3, 1.1]
    with torch.no_grad():
        for p in loss.q_head.parameters():
            p.zero_()
        loss.q_head[2].bias.copy_(torch.tensor(b2))
    out = loss(_t(Z1, Z2), _y(*Y))
    expected = ref_agmax(Z1, Z2, Y, lambda x: list(b2))
    assert_terms(out, expected)
    assert expected["entropy"] < 0  # minus the marginal entropy


# Small literal Q head (hidden width 2); the pre-activations on Z1/Z2 stay away from the ReLU kink.
W1: Matrix = [[0.5, -0.2, 0.1, 0.3, 0.0, -0.4], [-0.3, 0.6, 0.2, -0.1, 0.4, 0.25]]
B1: list[float] = [0.1, -0.2]
W2: Matrix = [[1.0, -0.5], [0.3, 0.8], [-0.6, 0.2]]
B2: list[float] = [0.05, -0.1, 0.2]


def _literal_agmax(dl_weight: float = 4.0) -> AgMaxLoss:
    loss = AgMaxLoss(3, hidden_units=2, dl_weight=dl_weight)
    with torch.no_grad():
        loss.q_head[0].weight.copy_(torch.tensor(W1))
        loss.q_head[0].bias.copy_(torch.tensor(B1))
        loss.q_head[2].weight.copy_(torch.tensor(W2))
        loss.q_head[2].bias.copy_(torch.tensor(B2))
    return loss


def test_agmax_value_with_literal_q_head() -> None:
    out = _literal_agmax()(_t(Z1, Z2), _y(*Y))
    expected = ref_agmax(Z1, Z2, Y, mlp(W1, B1, W2, B2))
    assert_terms(out, expected)
    # The Q head reads [z, zt] in that order: the swapped concatenation gives another value.
    swapped = ref_agmax(Z1, Z2, Y, lambda x: mlp(W1, B1, W2, B2)(x[3:] + x[:3]))
    assert swapped["l1"] != pytest.approx(expected["l1"], rel=1e-3)


def test_agmax_dl_weight() -> None:
    out = _literal_agmax(dl_weight=2.5)(_t(Z1, Z2), _y(*Y))
    assert_terms(out, ref_agmax(Z1, Z2, Y, mlp(W1, B1, W2, B2), dl_weight=2.5))


def test_agmax_marginal_clamp_keeps_entropy_finite() -> None:
    """A class no image predicts (softmax exactly 0 in float32) must not give 0 * log 0 = nan."""
    z = [[0.0, 1.0, -200.0], [0.5, -0.5, -200.0]]
    zt = [[1.0, 0.0, -200.0], [0.2, 0.3, -200.0]]
    loss = AgMaxLoss(3)
    with torch.no_grad():
        for p in loss.q_head.parameters():
            p.zero_()
        loss.q_head[2].bias.copy_(torch.tensor([0.0, 0.0, -200.0]))
    out = loss(_t(z, zt), _y(0, 1))
    assert all(torch.isfinite(v) for v in out.values())
    assert_terms(out, ref_agmax(z, zt, [0, 1], lambda x: [0.0, 0.0, -200.0]))


def test_agmax_gradient_matches_reference() -> None:
    loss = _literal_agmax()
    logits = _t(Z1, Z2, requires_grad=True)
    loss(logits, _y(*Y))["loss"].backward()
    q = mlp(W1, B1, W2, B2)
    expected = numerical_grad(lambda rows: ref_agmax(rows[:2], rows[2:], Y, q)["loss"], Z1 + Z2)
    assert_grad(logits.grad, expected)


def test_agmax_q_head_receives_gradients() -> None:
    torch.manual_seed(0)
    loss = AgMaxLoss(3)
    logits = torch.randn(8, 3, requires_grad=True)
    loss(logits, torch.randint(0, 3, (4,)))["loss"].backward()
    for name, p in loss.q_head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert logits.grad is not None and logits.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------------
# 3. Agreement terms (AgMax ablations)
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("term", ["mse", "kl", "ce"])
def test_agreement_value(term: str) -> None:
    out = AgreementLoss(term)(_t(Z1, Z2), _y(*Y))
    assert_terms(out, ref_agreement(term, Z1, Z2, Y))


def test_agreement_terms_by_closed_form() -> None:
    """Independent spot checks of the three terms on one image."""
    z, zt = [[0.0, 0.0, 0.0]], [[math.log(2.0), 0.0, 0.0]]  # p_z = 1/3 each; p_zt = (1/2, 1/4, 1/4)
    ce = (math.log(3) + math.log(2)) / 2  # CE of label 0 on both views
    out = {term: AgreementLoss(term)(_t(z, zt), _y(0)) for term in ("mse", "kl", "ce")}
    mse = math.log(2.0) ** 2 / 3
    kl = 0.5 * math.log(0.5 * 3) + 2 * 0.25 * math.log(0.25 * 3)
    view_ce = -(1 / 3) * (math.log(0.5) + 2 * math.log(0.25)) / 3
    for term, value in (("mse", mse), ("kl", kl), ("ce", view_ce)):
        assert_terms(out[term], {"agreement": value, "ce": ce, "loss": ce + value})


@pytest.mark.parametrize("term", ["mse", "kl", "ce"])
def test_agreement_gradient_matches_reference(term: str) -> None:
    logits = _t(Z1, Z2, requires_grad=True)
    AgreementLoss(term)(logits, _y(*Y))["loss"].backward()
    expected = numerical_grad(lambda rows: ref_agreement(term, rows[:2], rows[2:], Y)["loss"], Z1 + Z2)
    assert_grad(logits.grad, expected)


def test_agreement_rejects_unknown_term() -> None:
    with pytest.raises(ValueError, match="mse"):
        AgreementLoss("l2")


# ---------------------------------------------------------------------------------------------------
# 4. Tied-Augment
# ---------------------------------------------------------------------------------------------------
def test_tied_value_both_views() -> None:
    out = TiedAugmentLoss(weight=1.5)(_t(Z1, Z2), _y(*Y), _t(F1, F2))
    assert_terms(out, ref_tied(Z1, Z2, Y, F1, F2, 1.5))


def test_tied_value_first_view_ce_only() -> None:
    out = TiedAugmentLoss(weight=1.5, both_views_ce=False)(_t(Z1, Z2), _y(*Y), _t(F1, F2))
    assert_terms(out, ref_tied(Z1, Z2, Y, F1, F2, 1.5, both_views_ce=False))


@pytest.mark.parametrize(
    "schedule, progress, factor",
    [
        ("constant", 0.5, 1.0),
        ("constant", 0.0, 1.0),
        ("linear", 0.5, 0.5),
        ("linear", 0.0, 0.0),
        ("linear", 1.7, 1.0),  # progress is clamped to [0, 1]
        ("warmup", 0.05, 0.5),  # warmup 0.1: w * min(1, 0.05 / 0.1)
        ("warmup", 0.5, 1.0),
    ],
)
def test_tied_weight_schedules(schedule: str, progress: float, factor: float) -> None:
    loss = TiedAugmentLoss(weight=2.0, schedule=schedule, warmup=0.1)
    loss.set_progress(progress)
    assert loss.current_weight() == pytest.approx(2.0 * factor)
    out = loss(_t(Z1, Z2), _y(*Y), _t(F1, F2))
    assert_terms(out, ref_tied(Z1, Z2, Y, F1, F2, 2.0 * factor))


def test_tied_needs_features_and_valid_schedule() -> None:
    with pytest.raises(ValueError, match="features"):
        TiedAugmentLoss()(_t(Z1, Z2), _y(*Y), None)
    with pytest.raises(ValueError, match="schedule"):
        TiedAugmentLoss(schedule="cosine")
    with pytest.raises(ValueError, match="warmup"):
        TiedAugmentLoss(schedule="warmup", warmup=0.0)


def test_tied_gradients_reach_both_views_features() -> None:
    weight = 1.5
    logits = _t(Z1, Z2, requires_grad=True)
    features = _t(F1, F2, requires_grad=True)
    TiedAugmentLoss(weight=weight)(logits, _y(*Y), features)["loss"].backward()
    n = len(F1) * len(F1[0])
    # d/df1 w * mean (f1 - f2)^2 = 2w (f1 - f2) / n, and the opposite for f2: no stop-gradient.
    g1 = [[2 * weight * (a - b) / n for a, b in zip(r1, r2, strict=True)] for r1, r2 in zip(F1, F2, strict=True)]
    g2 = [[-g for g in row] for row in g1]
    assert_grad(features.grad, g1 + g2)
    assert features.grad[2:].abs().sum() > 0
    expected = numerical_grad(lambda rows: ref_tied(rows[:2], rows[2:], Y, F1, F2, weight)["loss"], Z1 + Z2)
    assert_grad(logits.grad, expected)


# ---------------------------------------------------------------------------------------------------
# 5. AugMix JSD
# ---------------------------------------------------------------------------------------------------
def test_jsd_value() -> None:
    out = JsdLoss(num_splits=3, alpha=12.0, smoothing=0.0)(_t(Z1, Z2, Z3), _y(*Y))
    assert_terms(out, ref_jsd([Z1, Z2, Z3], Y, 12.0))


def test_jsd_value_other_alpha() -> None:
    out = JsdLoss(num_splits=3, alpha=3.0, smoothing=0.0)(_t(Z2, Z3, Z1), _y(0, 0))
    assert_terms(out, ref_jsd([Z2, Z3, Z1], [0, 0], 3.0))


def test_jsd_gradient_matches_reference() -> None:
    logits = _t(Z1, Z2, Z3, requires_grad=True)
    JsdLoss(num_splits=3, alpha=12.0, smoothing=0.0)(logits, _y(*Y))["loss"].backward()
    expected = numerical_grad(lambda rows: ref_jsd([rows[:2], rows[2:4], rows[4:]], Y, 12.0)["loss"], Z1 + Z2 + Z3)
    assert_grad(logits.grad, expected)


def test_jsd_mixture_clamp_keeps_loss_finite() -> None:
    z = [[0.0, 1.0, -200.0], [0.5, -0.5, -200.0]]  # class 2 has probability exactly 0 in every view
    out = JsdLoss(num_splits=3, alpha=12.0, smoothing=0.0)(_t(z, Z1, z), _y(*Y))
    assert all(torch.isfinite(v) for v in out.values())


def test_jsd_rejects_soft_targets() -> None:
    with pytest.raises(ValueError):
        JsdLoss()(_t(Z1, Z2, Z3), torch.full((2, 3), 1 / 3))


# Float64 gradcheck: float64 inputs stay float64 through every loss.


def _gradcheck_inputs(num_views: int, num_features: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(num_views * 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    if not num_features:
        return (logits,)
    return logits, torch.randn(num_views * 2, num_features, dtype=torch.float64, generator=gen, requires_grad=True)


def test_agmax_gradcheck_float64() -> None:
    torch.manual_seed(0)
    loss = AgMaxLoss(3, hidden_units=8).double()
    (logits,) = _gradcheck_inputs(2)
    assert loss(logits, _y(*Y))["loss"].dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: loss(x, _y(*Y))["loss"], (logits,), fast_mode=True)


@pytest.mark.parametrize("term", ["mse", "kl", "ce"])
def test_agreement_gradcheck_float64(term: str) -> None:
    loss = AgreementLoss(term).double()
    (logits,) = _gradcheck_inputs(2)
    assert loss(logits, _y(*Y))["loss"].dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x: loss(x, _y(*Y))["loss"], (logits,), fast_mode=True)


def test_tied_gradcheck_float64() -> None:
    loss = TiedAugmentLoss(weight=1.5).double()
    inputs = _gradcheck_inputs(2, num_features=4)
    assert loss(inputs[0], _y(*Y), inputs[1])["loss"].dtype == torch.float64
    assert torch.autograd.gradcheck(lambda x, f: loss(x, _y(*Y), f)["loss"], inputs, fast_mode=True)


# ---------------------------------------------------------------------------------------------------
# 6. create_loss / METHODS
# ---------------------------------------------------------------------------------------------------
def test_create_loss_unknown_method_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown method") as excinfo:
        create_loss("simclr", 10, 2)
    for name in METHODS:
        assert name in str(excinfo.value)
    with pytest.raises(ValueError, match="did you mean 'agmax'"):
        method_spec("agmx")


@pytest.mark.parametrize("method, views", [("agmax", 3), ("agmax", 1), ("agmax-kl", 3), ("tied", 1), ("jsd", 2)])
def test_create_loss_wrong_number_of_views(method: str, views: int) -> None:
    with pytest.raises(ValueError, match="views"):
        create_loss(method, 10, views)


def test_create_loss_bad_option() -> None:
    with pytest.raises(ValueError, match="no loss option 'bogus'; valid: weight, both_views_ce, schedule, warmup"):
        create_loss("tied", 10, 2, bogus=1)
    with pytest.raises(ValueError, match="no loss option 'dl_weigth' \\(did you mean 'dl_weight'\\?\\)"):
        create_loss("agmax", 10, 2, dl_weigth=1.0)


def test_create_loss_builds_expected_modules() -> None:
    assert isinstance(create_loss("ce", 10, 1), ViewCrossEntropy)
    assert create_loss("ce", 10, 1).label_smoothing == 0.0
    assert create_loss("ls", 10, 2).label_smoothing == pytest.approx(0.1)
    assert create_loss("ls", 10, 2, label_smoothing=0.2).label_smoothing == pytest.approx(0.2)
    agmax = create_loss("agmax", 100, 2)
    assert isinstance(agmax, AgMaxLoss) and agmax.q_head[0].out_features == 512 and agmax.dl_weight == 4.0
    assert [create_loss(f"agmax-{t}", 10, 2).term for t in ("mse", "kl", "ce")] == ["mse", "kl", "ce"]
    assert isinstance(create_loss("tied", 10, 2, weight=3.0), TiedAugmentLoss)
    jsd = create_loss("jsd", 10, 3)
    assert isinstance(jsd, JsdLoss) and jsd.num_views == 3
    papers = {"ce": None, "ls": None, "ce2": 2, "agmax": 2, "agmax-mse": 2, "agmax-kl": 2, "tied": 2, "jsd": 3}
    assert {name: METHODS[name].views for name in papers} == papers  # a method added to the registry is not listed


@pytest.mark.parametrize("method", [name for name, spec in METHODS.items() if spec.views is not None])
def test_a_method_with_its_own_view_count_refuses_another(method: str) -> None:
    views = METHODS[method].views
    assert views is not None
    for other in (views - 1, views + 1):
        with pytest.raises(ValueError, match="views"):
            create_loss(method, 10, other)


def _views_for(method: str) -> int:
    return METHODS[method].views or 2


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_builds_and_backpropagates(method: str) -> None:
    torch.manual_seed(0)
    num_classes, batch, views = 5, 4, _views_for(method)
    loss = create_loss(method, num_classes, views)
    logits = torch.randn(views * batch, num_classes, requires_grad=True)
    features = torch.randn(views * batch, 6, requires_grad=True)
    out = loss(logits, torch.randint(0, num_classes, (batch,)), features)
    assert "loss" in out
    for key, value in out.items():
        assert value.dim() == 0 and torch.isfinite(value), key
    out["loss"].backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    if method == "tied":
        assert features.grad is not None and features.grad.abs().sum() > 0
    for p in loss.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


# ---------------------------------------------------------------------------------------------------
# 7. bf16 autocast
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_bf16_autocast_gives_float32_loss(method: str) -> None:
    torch.manual_seed(0)
    num_classes, batch, views = 5, 4, _views_for(method)
    loss = create_loss(method, num_classes, views)
    logits = torch.randn(views * batch, num_classes).bfloat16().requires_grad_()
    features = torch.randn(views * batch, 6).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(logits, torch.randint(0, num_classes, (batch,)), features)
    assert out["loss"].dtype == torch.float32
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16
