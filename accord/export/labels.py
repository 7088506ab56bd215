"""The class names of a trained model, in label order, for exports and predictions.

A checkpoint records them under ``checkpoint["data"]["class_names"]`` (a run's ``summary.json`` under
``"data": {"class_names": [...]}``). A checkpoint without them falls back to the names its data set's spec knows
(:attr:`~accord.data.registry.DatasetSpec.class_names`: Fashion-MNIST's and CIFAR-10's own, an image folder's
``train/`` class folders or a Hugging Face data set's label names while its ``data_dir`` is still there), and
``class_0`` ... ``class_<N-1>`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.registry import REGISTRY


def class_names(checkpoint: Mapping[str, Any], num_classes: int) -> list[str]:
    """The ``num_classes`` names of a checkpoint's outputs, in label order (see the module's doc)."""
    data = checkpoint.get("data")
    recorded = data.get("class_names") if isinstance(data, dict) else None
    if isinstance(recorded, list | tuple) and _valid(recorded, num_classes):
        return [str(name) for name in recorded]
    config = checkpoint.get("config") or {}
    spec = REGISTRY.get(str(config.get("dataset")))
    data_dir = Path(str(config["data_dir"])) if config.get("data_dir") else None
    known = spec.class_names(data_dir) if spec is not None and spec.class_names is not None else None
    if known is not None and _valid(list(known), num_classes):
        return [str(name) for name in known]
    return [f"class_{i}" for i in range(num_classes)]


def _valid(names: Any, num_classes: int) -> bool:
    return isinstance(names, list | tuple) and len(names) == num_classes and all(isinstance(n, str) for n in names)
