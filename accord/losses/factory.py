"""Build a method's loss by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from .agmax import AgMaxLoss
from .agreement import AgreementLoss
from .classification import ViewCrossEntropy
from .jsd import JsdLoss
from .tied import TiedAugmentLoss

# name -> (builder taking (num_classes, **options), number of views the method needs; None: any)
METHODS: dict[str, tuple[Callable[..., nn.Module], int | None]] = {
    "ce": (lambda num_classes, **kw: ViewCrossEntropy(**kw), None),
    "ls": (lambda num_classes, label_smoothing=0.1, **kw: ViewCrossEntropy(label_smoothing, **kw), None),
    "agmax": (lambda num_classes, **kw: AgMaxLoss(num_classes, **kw), 2),
    "agmax-mse": (lambda num_classes, **kw: AgreementLoss("mse", **kw), 2),
    "agmax-kl": (lambda num_classes, **kw: AgreementLoss("kl", **kw), 2),
    "agmax-ce": (lambda num_classes, **kw: AgreementLoss("ce", **kw), 2),
    "tied": (lambda num_classes, **kw: TiedAugmentLoss(**kw), 2),
    "jsd": (lambda num_classes, **kw: JsdLoss(**kw), 3),
}


# How each method mixes views under MixUp/CutMix (see accord.views.mixing); None: mixing is refused.
MIXING: dict[str, str | None] = {name: "each" for name in METHODS} | {"tied": "first", "jsd": None}


def method_mixing(method: str) -> str | None:
    """``each`` (every view mixed on its own), ``first`` (Tied-Augment) or ``None`` (no mixing)."""
    _check(method)
    return MIXING[method]


def method_views(method: str) -> int | None:
    """The number of views ``method`` needs (``None``: any number)."""
    _check(method)
    return METHODS[method][1]


def create_loss(method: str, num_classes: int, num_views: int, **options: Any) -> nn.Module:
    """Build the loss of ``method`` for ``num_views`` views; ``options`` go to its constructor."""
    _check(method)
    builder, needed = METHODS[method]
    if needed is not None and num_views != needed:
        raise ValueError(f"method {method!r} needs {needed} views, got {num_views}")
    if method == "jsd":
        options.setdefault("num_splits", num_views)
    try:
        return builder(num_classes, **options)
    except TypeError as e:
        raise ValueError(f"bad option for method {method!r} ({e}); check the 'loss' section of the config") from e


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
