"""``--resume``: load a run's ``checkpoint-last.pt`` into the rebuilt run, after checking that it is this run's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3

from ..config import load_saved_config
from ..data.identity import DATA_KEY, check_data
from .checkpoint import CheckpointError, load_checkpoint, load_state_checked, repair_best_checkpoint
from .identity import check_identity
from .run import Run
from .runfiles import check_metrics_cover, truncate_metrics
from .runfolder import RunFolder


def load_last_checkpoint(
    run: Run,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    out: Path,
    state: dict[str, Any],
    log: Callable[[str], None],
    ema: ModelEmaV3 | None = None,
    run_id: str | None = None,
) -> dict[str, Any] | None:
    """Load ``checkpoint-last.pt`` into the run, the optimizer and ``state``; returns this process's
    mid-epoch part (None at an epoch's end). Both checkpoints must be this run's (:func:`check_identity`)."""
    folder = RunFolder(out)
    path = folder.last
    ckpt = load_checkpoint(path)
    cfg = run.cfg
    folder_config = load_saved_config(folder.config).as_flat()
    check_identity(path, ckpt, run_id, folder_config)
    check_data(ckpt.get(DATA_KEY), run.data, f"--resume {out}")
    _check_best_identity(folder.best, run_id, folder_config)
    load_state_checked(run.model.model, ckpt["model"], path, f"this run's {cfg.model.model}")
    load_state_checked(run.criterion, ckpt.get("criterion"), path, f"this run's {cfg.method.method} loss")
    load_state_checked(optimizer, ckpt.get("optimizer"), path, "this run's optimizer")
    if ema is not None:
        load_state_checked(ema.module, ckpt.get("ema"), path, "this run's weight EMA")
    if scaler is not None and ckpt.get("scaler") is not None:
        scaler.load_state_dict(ckpt["scaler"])
    state.update({k: ckpt[k] for k in state if k != "environments"})
    state["environments"] = list(ckpt.get("environments", []))  # none in checkpoints from before they were kept
    partial = ckpt.get("partial")
    if run.dist.is_main:
        truncate_metrics(folder.metrics, state["epoch"])
        check_metrics_cover(out, state["epoch"])  # a deleted or emptied record would make a wrong summary
        if repair_best_checkpoint(out, ckpt):
            log(f"{folder.best} did not hold epoch {state['epoch'] + 1}, the best one; rewrote it")
    epochs = run.cfg.optim.epochs
    where = f"after epoch {state['epoch'] + 1}/{epochs}"
    if partial is not None:
        ranks = partial["ranks"] if "ranks" in partial else [partial]  # one-process checkpoints before DDP
        if len(ranks) != run.dist.world_size:
            raise CheckpointError(
                f"{path} was written mid-epoch by {len(ranks)} process(es); resume it with "
                f"{len(ranks)} (checkpoints from the end of an epoch resume with any number)"
            )
        partial = {"epoch": partial["epoch"], **ranks[run.dist.rank]}
        where = f"in epoch {partial['epoch'] + 1}/{epochs} after step {partial['progress']['steps']}"
    log(f"resuming {out} {where} (global step {state['global_step']})")
    return partial


def _check_best_identity(best: Path, run_id: str | None, folder_config: dict[str, Any]) -> None:
    """Refuse a ``checkpoint-best.pt`` of another run; a damaged one passes (it is rewritten when needed)."""
    if not best.is_file():
        return
    try:
        ckpt = load_checkpoint(best)
    except CheckpointError:
        return
    check_identity(best, ckpt, run_id, folder_config)
