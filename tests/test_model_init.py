"""Tests for accord.models.init: the AgMax authors' N(0, 0.2) scheme and the others."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from accord.losses import QHead
from accord.models.init import init_weights, parse_scheme


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(), nn.Linear(64, 500))


def test_parse_scheme_names_and_values():
    assert parse_scheme("default") == ("default", None)
    assert parse_scheme("pytorch") == ("pytorch", None)
    assert parse_scheme("agmax") == ("agmax", 0.2)  # roatienza/agmax configs/constant.py agmax_weights_std
    assert parse_scheme("normal_0.02") == ("normal", 0.02)
    assert parse_scheme("normal_1e-3") == ("normal", 1e-3)


@pytest.mark.parametrize("bad", ["kaiming", "normal", "normal_0", "normal_-0.1", "normal_abc", "AGMAX", ""])
def test_unknown_scheme_is_one_line_listing_the_valid_ones(bad):
    with pytest.raises(ValueError) as info:
        init_weights(small_net(), bad)
    message = str(info.value)
    assert "\n" not in message and f"unknown init scheme {bad!r}" in message
    assert "default, pytorch, agmax" in message and "normal_<std>" in message


def test_normal_scheme_draws_weights_zeroes_biases_and_resets_batchnorm():
    torch.manual_seed(0)
    net = small_net()
    with torch.no_grad():
        net[1].weight.fill_(3.0)
        net[1].bias.fill_(2.0)
    init_weights(net, "normal_0.2")
    conv, bn, linear = net[0], net[1], net[4]
    assert conv.weight.std().item() == pytest.approx(0.2, rel=0.03)  # 36,864 draws
    assert linear.weight.std().item() == pytest.approx(0.2, rel=0.03)  # 32,000 draws
    assert abs(conv.weight.mean().item()) < 0.005
    assert torch.count_nonzero(conv.bias) == 0 and torch.count_nonzero(linear.bias) == 0
    assert torch.equal(bn.weight, torch.ones(64)) and torch.equal(bn.bias, torch.zeros(64))


def test_default_leaves_the_module_untouched():
    net = small_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert init_weights(net, "default") is net
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_agmax_zeroes_the_last_batchnorm_of_each_residual_block_and_normal_does_not():
    model = timm.create_model("resnet18", pretrained=False, num_classes=10)
    init_weights(model, "agmax")
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in blocks)  # the authors' bn2/bn3 re-zeroed
    assert torch.equal(blocks[0].bn1.weight, torch.ones_like(blocks[0].bn1.weight))
    assert model.conv1.weight.std().item() == pytest.approx(0.2, rel=0.05)
    assert model.fc.weight.std().item() == pytest.approx(0.2, rel=0.1) and torch.count_nonzero(model.fc.bias) == 0
    init_weights(model, "normal_0.2")  # the ablations: model-wide draw only
    assert all(torch.equal(b.bn2.weight, torch.ones_like(b.bn2.weight)) for b in blocks)


def test_pytorch_scheme_is_each_layers_own_default_init():
    torch.manual_seed(5)
    reference = small_net()
    net = small_net()
    torch.manual_seed(5)
    init_weights(net, "pytorch")
    for (name, a), b in zip(reference.state_dict().items(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_q_head_is_drawn_too():
    head = QHead(1000, hidden_units=2048)
    init_weights(head, "agmax")
    first, last = head[0], head[2]
    assert first.weight.std().item() == pytest.approx(0.2, rel=0.02)
    assert torch.count_nonzero(first.bias) == 0 and torch.count_nonzero(last.bias) == 0
