"""Create any timm model by name, plus accord's CIFAR-style networks under their paper names."""

from __future__ import annotations

import difflib
from typing import Any

import timm
from torch import nn

from ..errors import UserError
from .cifar import CIFAR_MODELS


def resolve_model_name(name: str) -> str:
    """Map a paper name (``ResNet8``, ``WRN40-2``, ``ResNet50``) or a timm name to a timm name."""
    if name in CIFAR_MODELS:
        return CIFAR_MODELS[name]
    if timm.is_model(name):
        return name
    if timm.is_model(name.lower()):
        return name.lower()
    choices = list(CIFAR_MODELS) + timm.list_models()
    close = difflib.get_close_matches(name, choices, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(
        f"unknown model {name!r}{hint} Valid: {', '.join(CIFAR_MODELS)} or any name in timm.list_models() "
        f"({len(choices) - len(CIFAR_MODELS)} models)"
    )


def create_model(
    name: str,
    num_classes: int,
    in_chans: int = 3,
    drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    pretrained_file: str | None = None,
) -> nn.Module:
    """Build a classifier, untrained or from a local ``pretrained_file`` (nothing is downloaded)."""
    arch = resolve_model_name(name)
    extra: dict[str, Any] = {"drop_path_rate": drop_path_rate} if drop_path_rate else {}
    try:
        model = timm.create_model(
            arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **extra
        )
    except TypeError as e:
        if extra and "drop_path_rate" in str(e):
            raise UserError(f"model {name!r} has no stochastic depth: drop_path_rate must be 0") from None
        raise
    if pretrained_file is not None:
        from .pretrained import load_pretrained_file

        load_pretrained_file(model, pretrained_file)
    return model
