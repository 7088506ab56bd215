"""The class names of a trained model, in label order, for exports and predictions.

A checkpoint records them under ``checkpoint["data"]["class_names"]`` (a run's ``summary.json`` under
``"data": {"class_names": [...]}``). A checkpoint without them falls back to the data set's own names
(Fashion-MNIST, CIFAR-10), the class folders of an image folder's ``train/`` when it is still there, and
``class_0`` ... ``class_<N-1>`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The names of the built-in data sets whose labels have names accord knows without reading their files.
KNOWN_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}  # fmt: skip


def class_names(checkpoint: Mapping[str, Any], num_classes: int) -> list[str]:
    """The ``num_classes`` names of a checkpoint's outputs, in label order (see the module's doc)."""
    data = checkpoint.get("data")
    recorded = data.get("class_names") if isinstance(data, dict) else None
    if isinstance(recorded, list | tuple) and _valid(recorded, num_classes):
        return [str(name) for name in recorded]
    config = checkpoint.get("config") or {}
    known = KNOWN_CLASS_NAMES.get(str(config.get("dataset")))
    if known is not None and len(known) == num_classes:
        return list(known)
    folders = _train_folders(config)
    if len(folders) == num_classes:
        return folders
    return [f"class_{i}" for i in range(num_classes)]


def _valid(names: Any, num_classes: int) -> bool:
    return isinstance(names, list | tuple) and len(names) == num_classes and all(isinstance(n, str) for n in names)


def _train_folders(config: Mapping[str, Any]) -> list[str]:
    """An image folder's class folder names (torchvision's order: sorted), if its ``train/`` is still there."""
    if config.get("dataset") != "imagefolder" or not config.get("data_dir"):
        return []
    train = Path(str(config["data_dir"])) / "train"
    try:
        return sorted(entry.name for entry in train.iterdir() if entry.is_dir())
    except OSError:
        return []
