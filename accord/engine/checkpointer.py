"""The checkpoints of a training run: what each holds, when a mid-epoch one is due, and who writes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3

from ..data.identity import DATA_KEY
from ..step import check_finite_state
from .checkpoint import capture_rng, save_atomic
from .epochprogress import EpochProgress
from .history import keep_history
from .run import Run
from .runfiles import RunFolderError
from .runfolder import RunFolder
from .signals import AgreedStop


def rank0_stopped(message: str) -> RunFolderError:
    """What the other processes raise when rank 0 failed to write a run file (it raises its own error)."""
    return RunFolderError(f"rank 0 stopped: {message}")


def quiet(message: str) -> None:
    """The log of processes other than rank 0."""


class Checkpointer:
    """Writes ``checkpoint-last.pt`` (and ``-best.pt``) of a run; decides when a mid-epoch one is due:
    every ``checkpoint_every_steps`` updates, and when a stop signal is agreed on (``stop``).

    Under several processes every process takes part in each decision and in gathering the mid-epoch
    state (so all stop at the same step), and rank 0 writes.
    """

    def __init__(
        self,
        run: Run,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler | None,
        out: Path,
        state: dict[str, Any],
        stop: AgreedStop,
        ema: ModelEmaV3 | None = None,
        run_id: str | None = None,
    ) -> None:
        self.run, self.optimizer, self.scaler, self.ema, self.run_id = run, optimizer, scaler, ema, run_id
        self.out, self.state, self.stop = out, state, stop
        self.folder = RunFolder(out)
        self.every = run.cfg.run.checkpoint_every_steps
        self.epoch = 0
        self.epoch_end_step = 0
        self.before_first_save: Callable[[], None] | None = None  # rank 0's: what the first checkpoint commits
        self.log: Callable[[str], None] = quiet  # the run's log (rank 0's)

    def _commit(self) -> None:
        """Run :attr:`before_first_save` once, just before this run's first checkpoint write."""
        if self.before_first_save is not None:
            self.before_first_save()
            self.before_first_save = None

    def payload(self, partial: dict[str, Any] | None = None, **state: Any) -> dict[str, Any]:
        return {
            "model": self.run.model.model.state_dict(),
            "criterion": self.run.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "ema": None if self.ema is None else self.ema.module.state_dict(),
            "config": self.run.cfg.as_flat(),
            "run_id": self.run_id,
            DATA_KEY: self.run.data,
            **self.state,
            **state,
            "partial": partial,
        }

    def due(self, global_step: int) -> bool:
        """After update ``global_step``: a stop is agreed on, or a periodic checkpoint falls before the epoch's end."""
        if self.stop.due(global_step):
            return True
        return self.every > 0 and global_step % self.every == 0 and global_step != self.epoch_end_step

    def check_state(self, where: str) -> None:
        """Raise :class:`~accord.step.NonFiniteStateError` (on every process) if a weight or buffer of the model
        or the loss is NaN/Inf: no checkpoint is ever written from such a state."""
        check_finite_state({"": self.run.model.model, "loss.": self.run.criterion}, where, self.run.dist)

    def save_mid_epoch(self, global_step: int, progress: EpochProgress) -> None:
        """Checkpoint inside an epoch; raise :class:`TrainingInterrupted` if a signal asked to stop."""
        self.check_state(f"after step {global_step} (epoch {self.epoch + 1})")
        mixer_rng = self.run.mixer.rng if self.run.mixer is not None else None
        mine = {"progress": progress.state_dict(), "rng": capture_rng(mixer_rng, self.run.device)}
        ranks = self.run.dist.gather(mine)
        partial = {"epoch": self.epoch, "ranks": ranks}

        def save() -> None:
            self._commit()
            save_atomic(self.payload(partial, global_step=global_step), self.folder.last)

        self.run.dist.on_main(save, rank0_stopped)
        self.log(f"saved {self.folder.last} at step {global_step} (epoch {self.epoch + 1})")
        self.stop.raise_if_stopped(
            f"step {global_step} (epoch {self.epoch + 1}, step {progress.steps} of the epoch)", True
        )

    def save_epoch_end(self, improved: bool) -> None:
        """Rank 0 writes; a failed write there stops every process (``on_main``), none is left waiting."""

        def save() -> None:
            self._commit()
            ckpt = self.payload()
            if improved:  # best first: a kill between the two writes leaves `last` before this epoch, which
                save_atomic(ckpt, self.folder.best)  # then trains again and rewrites the best
            save_atomic(ckpt, self.folder.last)
            keep_history(self.out, self.epoch + 1, self.run.cfg.run.checkpoint_keep)

        self.run.dist.on_main(save, rank0_stopped)
