"""Small-image (CIFAR-style) residual networks exposed through timm's model registry.

* ``CifarResNet``: the 6n+2-layer ResNets of He et al., 2016, "Deep Residual Learning for
  Image Recognition", section 4.2 (CIFAR-10 experiments): a 3x3 stem with 16 channels, three
  stages of n BasicBlocks with 16/32/64 channels, global average pooling and a linear layer.
  Shortcuts that change shape use a 1x1 conv + BN projection (the paper's option B; the
  CIFAR experiments used zero-padding option A, which has ~3k fewer parameters).
* ``WideResNet``: the pre-activation WRN-d-k of Zagoruyko & Komodakis, 2016, "Wide Residual
  Networks": (d-4)/6 blocks per stage, widths 16, 16k, 32k, 64k, dropout between the two
  convolutions of a block, and a final BN + ReLU before pooling.

Both follow timm's classifier interface (``num_classes``, ``num_features``,
``forward_features``, ``forward_head``, ``get_classifier``, ``reset_classifier``) and are
registered, so ``timm.create_model("cifar_resnet20", num_classes=10, in_chans=1)`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from timm.models import register_model
from torch import nn

__all__ = ["CIFAR_MODELS", "CifarResNet", "WideResNet"]

#: Human-readable names used in config files -> timm registry names.
CIFAR_MODELS: dict[str, str] = {
    "ResNet8": "cifar_resnet8",
    "ResNet20": "cifar_resnet20",
    "ResNet56": "cifar_resnet56",
    "WRN28-10": "cifar_wrn28_10",
    "WRN40-2": "cifar_wrn40_2",
}

# Keyword arguments that timm.create_model always forwards to entrypoints (None when unused).
_TIMM_META_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir", "pretrained_model_args")


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


class _TimmHeadMixin(nn.Module):
    """Shared timm-style head: global average pool -> (dropout) -> ``fc``."""

    num_classes: int
    num_features: int
    head_drop_rate: float = 0.0
    fc: nn.Module

    def _make_fc(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        fc = nn.Linear(self.num_features, num_classes)
        nn.init.zeros_(fc.bias)
        return fc

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool not in (None, "", "avg"):
            raise ValueError(f"only average pooling is supported, got global_pool={global_pool!r}")
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean(dim=(2, 3))
        if self.head_drop_rate > 0.0:  # before the pre_logits return, as timm's ResNet does
            x = F.dropout(x, p=self.head_drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class BasicBlock(nn.Module):
    """Post-activation residual block (conv-BN-ReLU-conv-BN + shortcut, ReLU)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = _conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class CifarResNet(_TimmHeadMixin):
    """ResNet-(6n+2) for 32x32-ish inputs (He et al. 2016, sec. 4.2)."""

    def __init__(self, depth: int, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"CifarResNet depth must be 6n+2 with n >= 1, got {depth}")
        n = (depth - 2) // 6
        self.depth, self.in_chans, self.num_classes = depth, in_chans, num_classes
        self.head_drop_rate = drop_rate
        self.conv1 = _conv3x3(in_chans, 16)
        self.bn1 = nn.BatchNorm2d(16)
        stages: list[nn.Module] = []
        in_ch = 16
        for i, width in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_ch, width, stride=2 if (i > 0 and j == 0) else 1))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.num_features = self.head_hidden_size = in_ch
        self.fc = self._make_fc(num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return self.layer3(self.layer2(self.layer1(x)))


class PreActBlock(nn.Module):
    """WRN block: BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3, 1x1 conv shortcut on shape change."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = _conv3x3(in_ch, out_ch, stride)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = _conv3x3(out_ch, out_ch)
        self.drop_rate = drop_rate
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        # With a projection, the shortcut sees the pre-activated input (as in the reference code).
        identity = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = F.relu(self.bn2(o), inplace=True)
        if self.drop_rate > 0.0:
            o = F.dropout(o, p=self.drop_rate, training=self.training)
        return self.conv2(o) + identity


class WideResNet(_TimmHeadMixin):
    """Pre-activation WRN-depth-widen_factor (Zagoruyko & Komodakis 2016).

    ``drop_rate`` is the paper's dropout between the two convolutions of each block.
    """

    def __init__(
        self, depth: int, widen_factor: int, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4 with n >= 1, got {depth}")
        n = (depth - 4) // 6
        self.depth, self.widen_factor = depth, widen_factor
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = _conv3x3(in_chans, 16)
        stages: list[nn.Module] = []
        in_ch = 16
        for i, width in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(PreActBlock(in_ch, width, stride=stride, drop_rate=drop_rate))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(in_ch)
        self.num_features = self.head_hidden_size = in_ch
        self.fc = self._make_fc(num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return F.relu(self.bn(x), inplace=True)


def _create(name: str, cls: type[nn.Module], pretrained: bool, kwargs: dict[str, Any], **arch: Any) -> nn.Module:
    """Build ``cls``; ``pretrained`` only with a local file or folder (``local-dir:`` of an accord export)."""
    cfg = kwargs.get("pretrained_cfg")
    local = cfg.get("file") if isinstance(cfg, dict) and cfg.get("source") == "local-dir" else None
    if pretrained and not local:
        raise ValueError(f"no pretrained weights for {name} (only a local accord export: local-dir:PATH)")
    for key in _TIMM_META_KWARGS:
        kwargs.pop(key, None)
    model = cls(**arch, **kwargs)
    if local:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(Path(local) / "model.safetensors")))
    # minimal cfg so timm.data.resolve_data_config(model=...) works; torch types Module.__setattr__ as Tensor | Module
    model.pretrained_cfg = {  # type: ignore[assignment]
        "architecture": name,
        "input_size": (model.in_chans, 32, 32),
        "num_classes": model.num_classes,
        "first_conv": "conv1",
        "classifier": "fc",
    }
    if local:  # the export's own data config: input size, normalisation, evaluation crop, label names
        model.pretrained_cfg = {**model.pretrained_cfg, **cfg}  # type: ignore[assignment, dict-item]
    return model


@register_model
def cifar_resnet8(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return _create("cifar_resnet8", CifarResNet, pretrained, kwargs, depth=8)


@register_model
def cifar_resnet20(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return _create("cifar_resnet20", CifarResNet, pretrained, kwargs, depth=20)


@register_model
def cifar_resnet56(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return _create("cifar_resnet56", CifarResNet, pretrained, kwargs, depth=56)


@register_model
def cifar_wrn28_10(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return _create("cifar_wrn28_10", WideResNet, pretrained, kwargs, depth=28, widen_factor=10)


@register_model
def cifar_wrn40_2(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    return _create("cifar_wrn40_2", WideResNet, pretrained, kwargs, depth=40, widen_factor=2)
