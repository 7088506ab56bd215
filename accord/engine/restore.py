"""Rebuild a checkpoint's evaluation model (backbone and classifier, no loss head) and evaluate it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import Config, config_from_saved
from ..data import Splits, build_splits
from ..data.identity import DATA_KEY, check_data
from ..models import MultiViewModel
from ..views import ViewDataset, build_eval_transform
from .checkpoint import CheckpointError, load_checkpoint
from .evalpass import evaluate
from .run import build_model, data_info, eval_loader


def load_eval_model(
    path: str | Path, dataset: str | None = None, data_dir: str | None = None, device: torch.device | None = None
) -> tuple[MultiViewModel, Config, Splits, torch.device]:
    """The model of a checkpoint on ``device``, its config, and the splits of its dataset (or of ``dataset``,
    from ``data_dir``); data whose classes are not those the checkpoint recorded is refused
    (:func:`~accord.data.identity.check_data`)."""
    ckpt = load_checkpoint(path)
    saved = dict(ckpt["config"])
    if dataset and dataset != saved.get("dataset"):  # another data set: its own image size and folder
        saved.update(dataset=dataset, data_dir=data_dir, image_size=None)
    elif data_dir:
        saved["data_dir"] = data_dir
    cfg = config_from_saved(saved, f"{path}: config")
    data = cfg.data
    splits = build_splits(data.dataset, data.data_dir, 0.0, None, cfg.run.seed, data.image_size, crop_pct=data.crop_pct)
    check_data(ckpt.get(DATA_KEY), splits.identity, str(path), ("test",))  # before the weights: name the classes
    splits.info = data_info(cfg, splits.info)  # the run's own normalisation, when its config sets one
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(cfg, splits.info)
    try:
        model.model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: its {cfg.model.model} does not fit {splits.info.name} ({splits.info.num_classes} classes, "
            f"{splits.info.in_chans} channels): {str(e).splitlines()[0]}"
        ) from None
    return model.to(device), cfg, splits, device


def evaluate_checkpoint(
    path: str | Path, dataset: str | None = None, data_dir: str | None = None, device: torch.device | None = None
) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint's model on the test set of its dataset (or of ``dataset``)."""
    model, cfg, splits, device = load_eval_model(path, dataset, data_dir, device)
    test_set = ViewDataset(splits.test, build_eval_transform(splits.info))
    return evaluate(model, eval_loader(test_set, cfg), device, cfg.run.amp, cfg.run.channels_last)
