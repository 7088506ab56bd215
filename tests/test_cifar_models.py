"""Tests for the CIFAR ResNet / WRN models registered with timm."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from accord.models import cifar
from accord.models.cifar import CIFAR_MODELS, CifarResNet, WideResNet

FORWARD_MODELS = {  # timm name -> expected num_features
    "cifar_resnet8": 64,
    "cifar_resnet20": 64,
    "cifar_resnet56": 64,
    "cifar_wrn40_2": 128,
}


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_cifar_models_mapping_is_registered() -> None:
    assert CIFAR_MODELS == {
        "ResNet8": "cifar_resnet8",
        "ResNet20": "cifar_resnet20",
        "ResNet56": "cifar_resnet56",
        "WRN28-10": "cifar_wrn28_10",
        "WRN40-2": "cifar_wrn40_2",
    }
    registered = set(timm.list_models("cifar_*"))
    assert set(CIFAR_MODELS.values()) <= registered


@pytest.mark.parametrize("name", sorted(FORWARD_MODELS))
@pytest.mark.parametrize("in_chans", [1, 3])
def test_create_and_forward(name: str, in_chans: int) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=7, in_chans=in_chans, drop_rate=0.1).eval()
    assert model.num_classes == 7
    assert model.in_chans == in_chans
    assert model.num_features == FORWARD_MODELS[name]
    assert isinstance(model.get_classifier(), nn.Linear)
    assert model.get_classifier() is model.fc
    with torch.no_grad():
        for size in (28, 32):
            x = torch.randn(2, in_chans, size, size)
            assert model(x).shape == (2, 7)
            feats = model.forward_features(x)
            assert feats.dim() == 4 and feats.shape[1] == model.num_features
            pooled = model.forward_head(feats, pre_logits=True)
            assert pooled.shape == (2, model.num_features)
            torch.testing.assert_close(model.forward_head(feats), model.fc(pooled))


def test_wrn28_10_construction() -> None:
    model = timm.create_model("cifar_wrn28_10", num_classes=10, in_chans=3)
    assert isinstance(model, WideResNet)
    assert model.num_features == 640
    assert model.get_classifier().in_features == 640
    assert _num_params(model) == pytest.approx(36.5e6, rel=0.03)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("cifar_resnet20", 0.27e6), ("cifar_resnet56", 0.85e6), ("cifar_wrn40_2", 2.2e6)],
)
def test_parameter_counts_match_papers(name: str, expected: float) -> None:
    model = timm.create_model(name, num_classes=10)
    assert _num_params(model) == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("name", ["cifar_resnet8", "cifar_wrn40_2"])
def test_reset_classifier_to_features(name: str) -> None:
    model = timm.create_model(name, num_classes=10, in_chans=1).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(0)
        assert model.num_classes == 0
        assert isinstance(model.get_classifier(), nn.Identity)
        out = model(x)
    assert out.shape == (2, model.num_features)
    torch.testing.assert_close(out, expected)
    model.reset_classifier(5)
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 5
    assert torch.count_nonzero(model.fc.bias) == 0


def test_num_classes_zero_at_creation() -> None:
    model = timm.create_model("cifar_resnet8", num_classes=0).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize("name", sorted(CIFAR_MODELS.values()))
def test_pretrained_raises(name: str) -> None:
    with pytest.raises(ValueError, match=f"no pretrained weights for {name}"):
        timm.create_model(name, pretrained=True)


def test_direct_construction_and_init() -> None:
    model = CifarResNet(20, num_classes=10, in_chans=1)
    assert model.num_features == 64 and model.in_chans == 1
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert torch.count_nonzero(model.fc.bias) == 0
    with pytest.raises(ValueError):
        CifarResNet(21)
    with pytest.raises(ValueError):
        WideResNet(27, 2)
    assert cifar.cifar_resnet20().num_classes == 10
