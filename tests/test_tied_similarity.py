"""Tests for Tied-Augment's similarity options (l1, cosine beside mse), against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from accord.losses import TiedAugmentLoss, create_loss

Z = [[1.0, 2.0, 0.5], [0.3, -1.2, 0.8], [0.2, 1.5, -0.4], [1.1, 0.0, -0.7]]  # view 1 rows, then view 2 rows
Y = [1, 2]
F1 = [[0.5, -1.0, 2.0, 0.0], [1.5, 0.3, -0.2, 0.7]]
F2 = [[0.4, -0.6, 1.0, 0.3], [1.0, 0.8, 0.1, -0.5]]


def ce_both_views() -> float:
    total = 0.0
    for row, y in zip(Z, Y + Y, strict=True):
        total += math.log(sum(math.exp(v) for v in row)) - row[y]
    return total / len(Z)


def l1_by_hand() -> float:
    diffs = [abs(a - b) for r1, r2 in zip(F1, F2, strict=True) for a, b in zip(r1, r2, strict=True)]
    return sum(diffs) / len(diffs)


def cosine_by_hand() -> float:
    cosines = []
    for r1, r2 in zip(F1, F2, strict=True):
        dot = sum(a * b for a, b in zip(r1, r2, strict=True))
        cosines.append(dot / (math.sqrt(sum(a * a for a in r1)) * math.sqrt(sum(b * b for b in r2))))
    return 1.0 - sum(cosines) / len(cosines)


def run(similarity: str, weight: float = 2.0, features=None) -> dict[str, torch.Tensor]:
    loss = TiedAugmentLoss(weight=weight, similarity=similarity)
    feats = features if features is not None else torch.tensor(F1 + F2, dtype=torch.float64)
    return loss(torch.tensor(Z, dtype=torch.float64), torch.tensor(Y), feats)


@pytest.mark.parametrize(("similarity", "by_hand"), [("l1", l1_by_hand), ("cosine", cosine_by_hand)])
def test_value_matches_hand_computation(similarity, by_hand):
    out = run(similarity)
    assert out[similarity].item() == pytest.approx(by_hand(), abs=1e-12)
    assert out["ce"].item() == pytest.approx(ce_both_views(), abs=1e-12)
    assert out["loss"].item() == pytest.approx(ce_both_views() + 2.0 * by_hand(), abs=1e-12)


def test_mse_stays_the_default_and_keeps_its_term_name():
    out = TiedAugmentLoss()(torch.tensor(Z), torch.tensor(Y), torch.tensor(F1 + F2))
    assert set(out) == {"loss", "ce", "mse"}


@pytest.mark.parametrize("similarity", ["l1", "cosine"])
def test_gradient_matches_finite_differences(similarity):
    feats = torch.tensor(F1 + F2, dtype=torch.float64, requires_grad=True)
    logits = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    loss = TiedAugmentLoss(weight=1.5, similarity=similarity)
    assert torch.autograd.gradcheck(lambda z, f: loss(z, torch.tensor(Y), f)["loss"], (logits, feats))


def test_cosine_pulls_the_views_together_with_a_positive_weight():
    feats = torch.tensor(F1 + F2, dtype=torch.float64, requires_grad=True)
    run("cosine", weight=1.0, features=feats)["cosine"].backward()
    with torch.no_grad():
        moved = feats - 0.1 * feats.grad
    assert run("cosine", features=moved)["cosine"] < run("cosine")["cosine"]


def test_unknown_similarity_is_refused_through_the_factory():
    with pytest.raises(ValueError, match="unknown similarity 'cka'; valid: mse, l1, cosine"):
        create_loss("tied", 10, 2, similarity="cka")
