"""Inputs a view-based loss cannot use are one clear line, never a batch split at the wrong row: the wrong
number of views, features that do not match the logits, a model output passed whole, the wrong class count."""

from __future__ import annotations

import pytest
import torch

from accord.losses import AgMaxLoss, AgreementLoss, JsdLoss, TiedAugmentLoss
from accord.models.multiview import ViewOutput

TWO_VIEW_LOSSES = {
    "AgMaxLoss": lambda: AgMaxLoss(num_classes=10),
    "TiedAugmentLoss": lambda: TiedAugmentLoss(),
    "AgreementLoss": lambda: AgreementLoss("mse"),
}


@pytest.mark.parametrize("name", TWO_VIEW_LOSSES)
def test_three_views_given_to_a_two_view_loss_are_refused(name):
    loss = TWO_VIEW_LOSSES[name]()
    with pytest.raises(ValueError, match=rf"^{name} takes 2 views: 12 logit rows for 4 targets \(expected 2 x 4 = 8"):
        loss(torch.randn(12, 10), torch.arange(4), torch.randn(12, 16))


@pytest.mark.parametrize("name", TWO_VIEW_LOSSES)
def test_one_target_per_row_is_taken(name):
    terms = TWO_VIEW_LOSSES[name]()(torch.randn(8, 10), torch.arange(8) % 10, torch.randn(8, 16))
    assert torch.isfinite(terms["loss"])


def test_jsd_checks_its_own_view_count():
    with pytest.raises(ValueError, match=r"^JsdLoss takes 3 views: 8 logit rows for 4 targets"):
        JsdLoss()(torch.randn(8, 10), torch.arange(4))
    assert torch.isfinite(JsdLoss()(torch.randn(12, 10), torch.arange(4))["loss"])


def test_tied_features_must_match_the_logits_row_for_row():
    with pytest.raises(ValueError, match=r"^TiedAugmentLoss: 6 feature rows for 8 logit rows"):
        TiedAugmentLoss()(torch.randn(8, 10), torch.arange(4), torch.randn(6, 16))


@pytest.mark.parametrize("name", TWO_VIEW_LOSSES)
def test_a_model_output_passed_whole_says_which_fields_to_pass(name):
    out = ViewOutput(torch.randn(8, 10), torch.randn(8, 16))
    message = rf"^{name}: logits must be a tensor, got ViewOutput .*out\.logits and out\.features"
    with pytest.raises(TypeError, match=message):
        TWO_VIEW_LOSSES[name]()(out, torch.arange(4))


def test_agmax_names_its_class_count():
    with pytest.raises(ValueError, match=r"^AgMaxLoss was built for 10 classes; the logits have 5$"):
        AgMaxLoss(num_classes=10)(torch.randn(8, 5), torch.arange(4))
