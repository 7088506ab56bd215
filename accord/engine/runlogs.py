"""Where a run's numbers go besides ``metrics.jsonl``: TensorBoard (``tensorboard: true``) and W&B
(``wandb: true``, or ``--log-wandb``), on rank 0.

Epoch records go to ``<run>/tensorboard`` (by epoch) and to W&B as ``epoch/...``; the scalars of every
``log_interval`` updates (:mod:`.steplog`) to ``<run>/tensorboard/steps`` and to W&B, both by update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import Config
from .summarycsv import flatten
from .tensorboard import STEPS_DIR, ScalarLog
from .wandblog import WandbLog


class RunLogs:
    """The run's scalar logs; ``done_epochs`` and ``done_steps`` are the checkpoint's (a resumed run's later
    events, written before it was stopped, are hidden from TensorBoard)."""

    def __init__(
        self, cfg: Config, out: Path, main: bool, done_epochs: int, done_steps: int, optimizer: torch.optim.Optimizer,
        run_id: str | None = None,
    ) -> None:  # fmt: skip
        tensorboard = cfg.run.tensorboard and main
        self.epochs = ScalarLog(out, purge_step=done_epochs + 1) if tensorboard else None
        self.steps = ScalarLog(out, purge_step=done_steps + 1, folder=STEPS_DIR) if tensorboard else None
        self.wandb = WandbLog(out, cfg, run_id) if cfg.run.wandb and main else None
        self.optimizer, self.step = optimizer, done_steps

    @property
    def wanted(self) -> bool:
        """Whether anything takes the scalars of every ``log_interval`` updates."""
        return self.steps is not None or self.wandb is not None

    def write_step(self, step: int, values: dict[str, float]) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self.step = step
        if self.steps is not None:
            self.steps.write_step(step, values, lr)
        if self.wandb is not None:
            self.wandb.log({**{f"train/{k}": v for k, v in values.items()}, "lr": lr}, step)

    def write_epoch(self, record: dict[str, Any]) -> None:
        if self.epochs is not None:
            self.epochs.write_epoch(record)
        if self.wandb is not None:
            self.wandb.log({f"epoch/{k}": v for k, v in flatten(record).items()}, self.step)

    def close(self) -> None:
        for log in (self.epochs, self.steps, self.wandb):
            if log is not None:
                log.close()
