"""Tests for accord.models.MultiViewModel (BatchNorm modes, features/logits) and the model factory."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import timm
import torch
from torch import nn

from accord.models import BN_MODES, MultiViewModel, ViewOutput, create_model, resolve_model_name

B = 4  # images per view; timm's resnet10t pools a 1x1 map at 32 px, so BN needs B > 1 per view


pytestmark = pytest.mark.usefixtures("one_thread")


def _timm_resnet() -> nn.Module:
    """A timm ResNet (its own BatchNorm layers, stem and pooling head), narrowed so the tests stay fast."""
    if timm.is_model("resnet10t"):
        return timm.create_model(
            "resnet10t", pretrained=False, num_classes=5, in_chans=3, channels=(8, 16, 32, 64), stem_width=8
        )
    return timm.create_model("resnet18", pretrained=False, num_classes=5, in_chans=3)


def _resnet8() -> nn.Module:
    return create_model("ResNet8", 10, 1)


MODELS: dict[str, tuple[Callable[[], nn.Module], int]] = {"timm": (_timm_resnet, 3), "ResNet8": (_resnet8, 1)}


def _build(kind: str, seed: int = 0) -> tuple[nn.Module, int]:
    factory, in_chans = MODELS[kind]
    torch.manual_seed(seed)
    model = factory()
    _randomize_bn(model)
    return model, in_chans


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN affine parameters and running stats, so the eval path differs from the train path."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 0.5 + torch.rand(n, generator=g)
            m.bias.data = 0.1 * torch.randn(n, generator=g)
            m.running_mean = 0.1 * torch.randn(n, generator=g)
            m.running_var = 0.5 + torch.rand(n, generator=g)


def _views(in_chans: int, num_views: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(num_views * B, in_chans, 32, 32, generator=g)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------- train / eval API


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("bn_mode", BN_MODES)
def test_train_output_is_view_output(kind: str, bn_mode: str) -> None:
    model, in_chans = _build(kind)
    mv = MultiViewModel(model, num_views=2, bn_mode=bn_mode).train()
    x = _views(in_chans, 2)
    with torch.no_grad():
        out = mv(x)
    assert isinstance(out, ViewOutput)
    num_classes, num_features = mv.model.num_classes, mv.model.num_features
    assert out.logits.shape == (2 * B, num_classes)
    assert out.features.shape == (2 * B, num_features)
    # logits are the classifier applied to the returned features
    with torch.no_grad():
        assert _close(out.logits, mv.model.get_classifier()(out.features))


@pytest.mark.parametrize("kind", list(MODELS))
def test_concat_features_are_pre_logits(kind: str) -> None:
    model, in_chans = _build(kind)
    mv = MultiViewModel(model, num_views=2, bn_mode="concat").train()
    assert mv.model is model  # concat keeps the timm model as it is
    x = _views(in_chans, 2)
    with torch.no_grad():
        out = mv(x)
        features = model.forward_head(model.forward_features(x), pre_logits=True)
        logits = model(x)
    assert _close(out.features, features)
    assert _close(out.logits, model.get_classifier()(features))
    assert _close(out.logits, logits)  # the same single training-mode pass as the unwrapped model


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("bn_mode", BN_MODES)
def test_eval_returns_plain_logits(kind: str, bn_mode: str) -> None:
    model, in_chans = _build(kind)
    reference = copy.deepcopy(model).eval()
    mv = MultiViewModel(model, num_views=2, bn_mode=bn_mode).eval()
    x = _views(in_chans, 1, seed=3)
    with torch.no_grad():
        out = mv(x)
        expected = reference(x)
    assert isinstance(out, torch.Tensor) and not isinstance(out, ViewOutput)
    assert out.shape == (B, mv.model.num_classes)
    assert _close(out, expected)


# -------------------------------------------------------------------------------------------- BN modes


def _view0_logits(mv: MultiViewModel, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return mv(x).logits[:B]


def _with_view1_changed(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    y[B:] = 3.0 * y[B:] + 1.0
    return y


@pytest.mark.parametrize("kind", list(MODELS))
def test_concat_bn_mixes_views(kind: str) -> None:
    model, in_chans = _build(kind)
    mv = MultiViewModel(model, num_views=2, bn_mode="concat").train()
    x = _views(in_chans, 2)
    assert not _close(_view0_logits(mv, x), _view0_logits(mv, _with_view1_changed(x)))


@pytest.mark.parametrize("kind", list(MODELS))
def test_separate_bn_keeps_views_apart(kind: str) -> None:
    model, in_chans = _build(kind)
    single = copy.deepcopy(model).train()
    mv = MultiViewModel(model, num_views=2, bn_mode="separate").train()
    x = _views(in_chans, 2)
    out = _view0_logits(mv, x)
    assert _close(out, _view0_logits(mv, _with_view1_changed(x)))
    with torch.no_grad():
        # each view is one training-mode pass of the unwrapped model
        assert _close(out, single(x[:B]))
        full = mv(x)
        assert _close(full.logits[B:], single(x[B:]))
        assert _close(full.features[B:], single.forward_head(single.forward_features(x[B:]), pre_logits=True))


@pytest.mark.parametrize("kind", list(MODELS))
def test_separate_bn_updates_running_stats_per_view(kind: str) -> None:
    model, in_chans = _build(kind)
    single = copy.deepcopy(model).train()
    mv = MultiViewModel(model, num_views=2, bn_mode="separate").train()
    x = _views(in_chans, 2)
    with torch.no_grad():
        mv(x)
        single(x[:B])
        single(x[B:])
    for (name, a), (_, b) in zip(mv.model.named_buffers(), single.named_buffers(), strict=True):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("num_views", [2, 3])
def test_split_bn(kind: str, num_views: int) -> None:
    model, in_chans = _build(kind)
    single = copy.deepcopy(model).train()  # convert_splitbn_model edits the model in place
    mv = MultiViewModel(model, num_views=num_views, bn_mode="split").train()
    keys = list(mv.state_dict())
    assert any(".aux_bn." in k for k in keys)
    assert any(f".aux_bn.{num_views - 2}.running_mean" in k for k in keys)
    assert not any(f".aux_bn.{num_views - 1}." in k for k in keys)
    x = _views(in_chans, num_views)
    out = _view0_logits(mv, x)
    assert _close(out, _view0_logits(mv, _with_view1_changed(x)))
    with torch.no_grad():
        # the aux BN layers start as copies of the main ones: every view sees its own batch statistics
        assert _close(out, single(x[:B]))
        full = mv(x)
        for j in range(num_views):
            assert _close(full.logits[j * B : (j + 1) * B], single(x[j * B : (j + 1) * B])), j
    concat = MultiViewModel(copy.deepcopy(single), num_views=num_views, bn_mode="concat").train()
    assert not _close(_view0_logits(concat, x), out)  # while concat mixes the views


@pytest.mark.parametrize("kind", list(MODELS))
def test_split_bn_eval_uses_main_bn(kind: str) -> None:
    model, in_chans = _build(kind)
    fresh, _ = _build(kind, seed=99)
    mv = MultiViewModel(model, num_views=2, bn_mode="split").train()
    with torch.no_grad():  # a few training steps so the main and aux running stats part ways
        for seed in range(3):
            x = _views(in_chans, 2, seed=seed)
            x[B:] = 5.0 * x[B:] + 2.0
            mv(x)
    main = {k: v for k, v in mv.model.state_dict().items() if ".aux_bn." not in k}
    aux_keys = [k for k in mv.model.state_dict() if ".aux_bn.0.running_mean" in k]
    assert aux_keys
    aux_means = mv.model.state_dict()[aux_keys[0]]
    assert not torch.allclose(aux_means, main[aux_keys[0].replace(".aux_bn.0", "")])
    fresh.load_state_dict(main)  # without its aux layers, the state dict is the timm model's
    mv.eval()
    fresh.eval()
    x = _views(in_chans, 1, seed=11)
    with torch.no_grad():
        assert _close(mv(x), fresh(x))


def test_invalid_bn_mode_and_split_with_one_view() -> None:
    with pytest.raises(ValueError, match="bn mode"):
        MultiViewModel(_resnet8(), num_views=2, bn_mode="sync")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 views"):
        MultiViewModel(_resnet8(), num_views=1, bn_mode="split")
    for bn_mode in ("concat", "separate"):
        mv = MultiViewModel(_resnet8(), num_views=1, bn_mode=bn_mode).train()
        out = mv(torch.randn(B, 1, 28, 28))
        assert out.logits.shape == (B, 10) and out.features.shape == (B, 64)


def test_gradients_reach_every_parameter_in_separate_mode() -> None:
    mv = MultiViewModel(_resnet8(), num_views=2, bn_mode="separate").train()
    out = mv(torch.randn(2 * B, 1, 28, 28))
    (out.logits.sum() + out.features.sum()).backward()
    assert all(p.grad is not None for p in mv.parameters())


# ---------------------------------------------------------------------------------------------- factory


def test_create_model_cifar_and_timm_names() -> None:
    model = create_model("ResNet8", 10, 1)
    assert model.num_classes == 10 and model.num_features == 64
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert resolve_model_name("ResNet8") == "cifar_resnet8"
    assert resolve_model_name("WRN40-2") == "cifar_wrn40_2"
    assert resolve_model_name("ResNet50") == "resnet50"  # timm name in another case
    assert resolve_model_name("resnet18") == "resnet18"


def test_create_model_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ValueError) as excinfo:
        create_model("resnet5O", 10)
    message = str(excinfo.value)
    assert "'resnet5O'" in message
    assert "did you mean" in message and "resnet50" in message
    assert "ResNet8" in message and "WRN28-10" in message
    with pytest.raises(ValueError) as excinfo:
        resolve_model_name("ResNet9")
    assert "ResNet8" in str(excinfo.value).split("Valid:")[0]  # suggested, not only listed


def test_head_dropout_reaches_the_training_features_of_cifar_resnets() -> None:
    torch.manual_seed(0)
    model = MultiViewModel(create_model("ResNet8", 10, 1, drop_rate=0.5), num_views=2).train()
    x = torch.randn(2 * B, 1, 28, 28)
    out = model(x)
    assert (out.features == 0).float().mean() > 0.2  # about half of the pooled features are dropped
    torch.testing.assert_close(out.logits, model.model.get_classifier()(out.features))
    model.eval()
    torch.testing.assert_close(model(x), model.model(x))  # no dropout at evaluation
