"""timm's ``train.py`` checkpoints (``last.pth.tar``, ``model_best.pth.tar``) as accord checkpoints for ``accord eval``.

Such a file holds the model's ``state_dict`` (timm's keys, the EMA copy beside it) and train.py's arguments as an
``argparse.Namespace``, which weights-only loading allows and nothing else. The config accord evaluates with comes from
those arguments: the model's name, the data set (an image folder unless ``--dataset`` said ``torch/cifar10`` ...) and
its folder, the image size; ``accord eval --dataset/--data-dir`` override the last two.
"""

from __future__ import annotations

import argparse
from typing import Any

#: timm's ``--dataset`` names of the data sets accord reads ('' is an image folder).
TIMM_DATASETS = {"": "imagefolder", "torch/cifar10": "cifar10", "torch/cifar100": "cifar100"}


def is_timm_checkpoint(data: Any) -> bool:
    """A checkpoint of timm's ``CheckpointSaver``: a ``state_dict`` and train.py's ``args``."""
    return isinstance(data, dict) and isinstance(data.get("state_dict"), dict) and "args" in data


def from_timm(data: dict[str, Any]) -> dict[str, Any]:
    """``{"model", "config"}`` of a timm checkpoint: the model's weights (split BatchNorm's auxiliary layers dropped:
    evaluation uses the main ones) and the config its arguments describe."""
    args = data["args"]
    given = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    state = {k.removeprefix("module."): v for k, v in data["state_dict"].items() if ".aux_bn." not in k}
    config: dict[str, Any] = {"model": given.get("model")}
    dataset = TIMM_DATASETS.get(str(given.get("dataset") or ""))
    if dataset is not None:
        config["dataset"] = dataset
    folder = given.get("data_dir") or given.get("data")
    if folder:
        config["data_dir"] = str(folder)
    size = given.get("input_size") or ([given["img_size"]] if given.get("img_size") else None)
    if size:
        config["image_size"] = int(size[-1])
    return {"model": state, "config": config}
