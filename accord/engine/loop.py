"""One training epoch, resumable at any step: each batch made into an update, counted and shown."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..step import NonFiniteGuard, NonFiniteLossError, apply_update, backward, check_finite_means, skip_if_nonfinite
from .accumulate import TermSum, micro_batches, sync_on_last
from .display import EpochClock, EpochDisplay
from .epochprogress import EpochProgress, all_processes, means
from .epochsetup import EpochSetup
from .evalpass import evaluate
from .sam import SAM

# the names this module had before the epoch's pieces moved to their own modules
__all__ = ["EpochProgress", "EpochSetup", "NonFiniteGuard", "NonFiniteLossError", "evaluate", "train_one_epoch"]


def train_one_epoch(
    step: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    setup: EpochSetup,
    *,
    global_step: int = 0,
    progress: EpochProgress | None = None,
    checkpointer: MidEpochSaver | None = None,
    epoch: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train over ``loader`` once, each batch made into an update as ``setup`` says.

    ``step`` is a :class:`~accord.step.ViewStep` (or one wrapped in DistributedDataParallel). Returns the mean of
    every loss term, the training top-1 of view 1, images/s, views/s, ``steps`` (the epoch's steps, those
    before a resume included) and ``global_step`` after the last update. Under ``setup.dist`` the returned
    numbers cover all processes (loss means averaged, counts summed); ``progress`` stays this process's own.

    Resuming: ``progress`` holds the totals of the steps already done in this epoch (``loader`` then
    yields only the remaining batches). After each update, when ``checkpointer.due(global_step)`` the
    loss is checked for NaN/Inf and ``checkpointer.save_mid_epoch(global_step, progress)`` runs.

    Non-finite losses: every update is checked exactly (see :class:`NonFiniteGuard`; on a GPU the
    check is read back every ``log_interval`` steps, before any save and at the end). ``nonfinite="stop"``
    raises :class:`NonFiniteLossError` naming the first bad step and term; ``"skip"`` leaves the weights,
    the optimizer and the BatchNorm statistics as they were before that step (one host sync per step on
    a GPU) and counts it in ``skipped_steps``.
    """
    step.train()
    progress = progress or EpochProgress()
    if progress.correct is None:
        progress.correct = torch.zeros((), device=setup.device)
    guard = NonFiniteGuard()
    check_every = 1 if setup.device.type == "cpu" else setup.log_interval
    clock = EpochClock(progress)
    display = EpochDisplay(loader, progress, setup, epoch, log, global_step)
    for x, y in display.bar:
        x, y = x.to(setup.device, non_blocking=True), y.to(setup.device, non_blocking=True)
        update, views = _update(step, optimizer, setup, guard, global_step, (x, y), log)
        global_step += 1
        progress.steps += 1
        if update is None:
            progress.skipped += 1
        else:
            _count_update(progress, *update, y)
        progress.images += y.shape[0]
        progress.views += views
        if progress.steps % check_every == 0:
            guard.check(epoch, setup.dist)
        display.show(progress, global_step)
        if checkpointer is not None and checkpointer.due(global_step):
            guard.check(epoch, setup.dist)
            clock.stamp(progress)
            checkpointer.save_mid_epoch(global_step, progress)
    guard.check(epoch, setup.dist)
    clock.stamp(progress)
    return _epoch_stats(progress, setup, global_step)


class MidEpochSaver(Protocol):
    """What the loop asks of the run's checkpoint writer inside an epoch."""

    def due(self, global_step: int) -> bool:
        """Is a checkpoint due after update ``global_step``?"""
        ...

    def save_mid_epoch(self, global_step: int, progress: EpochProgress) -> None:
        """Write it; may raise to stop the run (a stop signal)."""
        ...


def _model_input(x: Tensor, y: Tensor, setup: EpochSetup) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """The step's input, target and extra arguments: device views, then MixUp/CutMix, then the memory format."""
    if setup.views is not None:
        x = setup.views(x)
    target, extra = y, {}
    if setup.mixer is not None:
        mixed = setup.mixer(x, y)
        x, target = mixed.images, mixed.target
        if mixed.feature_mix is not None:
            extra["feature_mix"] = mixed.feature_mix
    if setup.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, target, extra


def _update(
    step: nn.Module,
    optimizer: torch.optim.Optimizer,
    setup: EpochSetup,
    guard: NonFiniteGuard,
    done: int,
    batch: tuple[Tensor, Tensor],
    log: Callable[[str], None],
) -> tuple[tuple[dict[str, Tensor], Tensor] | None, int]:
    """Update ``done + 1``: schedules, then forward and backward of each micro-batch (:mod:`.accumulate`), then
    the optimizer step. Returns the loss terms and view 1's logits (``None`` when ``nonfinite: skip`` skipped it:
    weights, optimizer and buffers untouched) and the views the model saw."""
    if setup.schedule is not None:
        setup.schedule(done)
    buffers = [b.detach().clone() for b in step.buffers()] if setup.nonfinite == "skip" else None
    parts = micro_batches(*batch, setup.micro_batch)
    total = TermSum(batch[1].shape[0])
    optimizer.zero_grad(set_to_none=True)
    for i, (xi, yi) in enumerate(parts):
        x, target, extra = _model_input(xi, yi, setup)
        total.views += x.shape[0]
        with sync_on_last(step, last=i == len(parts) - 1):
            terms, logits = step(x, target, **extra)
            if buffers is not None and skip_if_nonfinite(terms, step, buffers, done + 1, log):
                optimizer.zero_grad(set_to_none=True)
                return None, total.views
            guard.update(terms, done + 1)
            backward(terms["loss"] * (yi.shape[0] / total.rows) if len(parts) > 1 else terms["loss"], setup.scaler)
        total.add(terms, logits, yi.shape[0])
    if setup.scaler is None and isinstance(optimizer, SAM):  # one micro-batch: resolve refuses SAM with accumulation
        optimizer.sharpness_pass(lambda: step(x, target, **extra)[0]["loss"])
    apply_update(optimizer, setup.scaler, setup.clip)
    if setup.after_update is not None:
        setup.after_update(done + 1)
    return (total.terms, logits if len(parts) == 1 else torch.cat(total.logits)), total.views


def _count_update(progress: EpochProgress, terms: dict[str, Tensor], logits: Tensor, y: Tensor) -> None:
    """Add an update's loss terms and view 1's hits (against the unmixed labels) to the epoch's sums."""
    for name, value in terms.items():
        progress.sums[name] = progress.sums.get(name, 0) + value.detach()
    correct = progress.correct
    if correct is None:
        raise ValueError("the epoch's progress has no hit count (train_one_epoch sets one)")
    correct += (logits[: y.shape[0]].argmax(1) == y).sum()  # in place: progress.correct is this tensor
    progress.scored += y.shape[0]


def _epoch_stats(progress: EpochProgress, setup: EpochSetup, global_step: int) -> dict[str, float]:
    """The epoch's numbers (over every process under ``setup.dist``); NonFiniteLossError if a mean is not finite."""
    dist = setup.dist
    total = all_processes(progress, dist) if dist is not None and dist.enabled else progress
    stats = means(total)
    check_finite_means(stats, global_step)
    seconds = max(total.seconds, 1e-9)
    correct = float(total.correct) if total.correct is not None else 0.0
    stats.update(
        train_top1=100.0 * correct / max(total.scored, 1),
        images_per_s=total.images / seconds,
        views_per_s=total.views / seconds,
        seconds=total.seconds,
        steps=progress.steps,
        global_step=global_step,
    )
    if setup.nonfinite == "skip":
        stats["skipped_steps"] = progress.skipped
    return stats
