"""``accord configs``: the built-in configs grouped by model, the paper recipes first, filtered by model,
augmentation or method."""

from __future__ import annotations

import re

from .errors import ConfigError
from .files import _fragments, _layers, config_name, list_configs
from .schema import DEFAULTS


def _natural(text: str) -> list[object]:
    """``ResNet8`` before ``ResNet20`` before ``ResNet101``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def model_facts(model: str) -> tuple[str, str]:
    """``(timm or accord model name, data set)`` of a model fragment, its ``base:`` chain included."""
    flat = _layers(f"{model}-standard")
    return str(flat.get("model", DEFAULTS["model"])), str(flat.get("dataset", DEFAULTS["dataset"]))


def model_order() -> list[str]:
    """Model fragments: the papers' recipes (ImageNet, CIFAR) first, then the small Fashion-MNIST family."""
    small = {m for m in _fragments("models") if model_facts(m)[1] == "fashion_mnist"}
    return sorted(_fragments("models"), key=lambda m: (m in small, _natural(m)))


def _check(value: str | None, valid: list[str], what: str) -> None:
    if value is not None and value not in valid:
        raise ConfigError(f"--{what} {value!r}: valid: {', '.join(valid)}")


def format_listing(model: str | None = None, aug: str | None = None, method: str | None = None) -> str:
    """The built-in config names, one per line, under a ``# <model>: ...`` line per model; only those of
    ``model``, ``aug`` and ``method`` (the baseline: no suffix) when given."""
    order = model_order()
    _check(model, order, "model")
    _check(aug, list(_fragments("augs")), "aug")
    _check(method, [DEFAULTS["method"], *_fragments("methods")], "method")
    listed = set(list_configs())
    by_model = {
        m: [
            name
            for a in _fragments("augs")
            for meth in [DEFAULTS["method"], *_fragments("methods")]
            if (name := config_name(m, a, meth)) in listed and aug in (None, a) and method in (None, meth)
        ]
        for m in order
        if model in (None, m)
    }
    lines = []
    for m, names in by_model.items():
        if names:
            arch, dataset = model_facts(m)
            lines.append(f"# {m}: {arch} on {dataset}, {len(names)} configs")
            lines += names
    if not lines:
        raise ConfigError("no built-in config has that model, augmentation and method together")
    return "\n".join(lines) + "\n"
