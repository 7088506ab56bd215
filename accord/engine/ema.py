"""An exponential moving average of the weights (timm's ``ModelEmaV3``), for ``ema: true``.

The EMA follows the classifier (not the loss's own parameters, which evaluation does not use), is updated
after every optimizer update, saved in checkpoints (so a resumed run equals an uninterrupted one), evaluated
on the val/test sets every epoch next to the raw weights, selects the best epoch, and is what an export holds.
"""

from __future__ import annotations

from typing import Any

from timm.utils import ModelEmaV3
from torch import nn

from ..config import Config


def create_ema(cfg: Config, model: nn.Module) -> ModelEmaV3 | None:
    """timm's ``ModelEmaV3`` of ``model`` with ``ema_decay``, or None when ``ema`` is off."""
    if not cfg.optim.ema:
        return None
    return ModelEmaV3(model, decay=cfg.optim.ema_decay)


def with_raw(record: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """A metrics line whose val/test numbers are the EMA's, with the raw weights' under ``raw``."""
    keys = ("val_top1", "val_top5", "test_top1", "test_top5")
    return {**record, "ema": True, "raw": {k: raw[k] for k in keys}}
