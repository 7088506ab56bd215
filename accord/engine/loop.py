"""One training epoch (resumable at any step) and one evaluation pass."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import Any, Protocol, get_args

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..config.schema import NonFiniteMode
from ..step import NonFiniteGuard, NonFiniteLossError, apply_update, autocast, backward
from ..views import MixedBatch
from .accumulate import TermSum, micro_batches, sync_on_last
from .distributed import Distributed
from .progress import ProgressLines, eval_progress, on_terminal
from .sam import SAM
from .steplog import StepTimer, TimedBatches

NONFINITE_MODES: tuple[str, ...] = get_args(NonFiniteMode)


@dataclass
class EpochProgress:
    """The running totals of a partly trained epoch: what a mid-epoch checkpoint stores.

    Saving the partial sums (not only the position) makes the metrics line of a resumed epoch equal to
    that of an uninterrupted one. ``steps`` counts the epoch's batches consumed so far (skipped ones too),
    so it is also the position in the epoch's data order where a resumed run starts.
    """

    steps: int = 0
    images: int = 0
    scored: int = 0  # images of the steps that were not skipped (the training top-1's denominator)
    views: int = 0
    seconds: float = 0.0
    skipped: int = 0
    sums: dict[str, Tensor] = field(default_factory=dict)
    correct: Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        """A ``weights_only``-safe copy (tensors on the CPU)."""
        return {
            "steps": self.steps,
            "images": self.images,
            "scored": self.scored,
            "views": self.views,
            "seconds": self.seconds,
            "skipped": self.skipped,
            "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
            "correct": None if self.correct is None else self.correct.detach().cpu(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> EpochProgress:
        correct = state["correct"]
        return cls(
            steps=state["steps"],
            images=state["images"],
            scored=state["scored"],
            views=state["views"],
            seconds=state["seconds"],
            skipped=state["skipped"],
            sums={k: v.to(device) for k, v in state["sums"].items()},
            correct=None if correct is None else correct.to(device),
        )


@dataclass
class EpochSetup:
    """How each batch becomes an update, the same for every epoch of a run.

    ``views`` makes the view-major batch from un-augmented images on the device (``augment_on: device``);
    ``mixer`` applies MixUp/CutMix; ``scaler`` scales fp16 losses; ``schedule(global_step)`` runs before
    each update (lr and loss-weight schedules); ``dist`` makes the returned numbers cover all processes.
    """

    device: torch.device
    mixer: Callable[[Tensor, Tensor], MixedBatch] | None = None
    views: Callable[[Tensor], Tensor] | None = None
    scaler: torch.amp.GradScaler | None = None
    dist: Distributed | None = None
    channels_last: bool = False
    log_interval: int = 50
    nonfinite: NonFiniteMode = "stop"
    schedule: Callable[[int], None] | None = None
    clip: Callable[[], None] | None = None  # clips the gradients (unscaled under fp16) before each update
    after_update: Callable[[int], None] | None = None  # after update global_step: the weights' EMA
    total_steps: int | None = None  # the run's updates, for its ETA
    on_log: Callable[[int, dict[str, float]], None] | None = None  # every log_interval updates (.steplog)
    micro_batch: int | None = None  # rows of each micro-batch of an update (gradient accumulation); None: whole

    def __post_init__(self) -> None:
        if self.nonfinite not in NONFINITE_MODES:
            raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE_MODES)}, got {self.nonfinite!r}")


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
    clock = _EpochClock(progress)
    display = _EpochDisplay(loader, progress, setup, epoch, log, global_step)
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


class _EpochClock:
    """The epoch's training seconds: those before a resume plus this call's."""

    def __init__(self, progress: EpochProgress) -> None:
        self.before, self.start = progress.seconds, time.perf_counter()

    def stamp(self, progress: EpochProgress) -> None:
        progress.seconds = self.before + time.perf_counter() - self.start


class _EpochDisplay:
    """The running loss means over every process: a tqdm bar on a terminal, else a line every ``log_interval``
    updates (rank 0), with the epoch's and the run's ETA; and ``setup.on_log``'s scalars (:mod:`.steplog`)."""

    def __init__(
        self,
        loader: Iterable[tuple[Tensor, Tensor]],
        progress: EpochProgress,
        setup: EpochSetup,
        epoch: int | None,
        log: Callable[[str], None],
        global_step: int = 0,
    ) -> None:
        description = f"epoch {epoch + 1}" if epoch is not None else "train"
        self.interval, self.setup = setup.log_interval, setup
        self.timed = TimedBatches(loader)
        self.timer = StepTimer(self.timed)
        self.bar = tqdm(self.timed, desc=description, leave=False, dynamic_ncols=True, disable=not on_terminal())
        self.lines = None
        if self.bar.disable and (setup.dist is None or setup.dist.is_main):
            known = progress.steps + len(loader) if isinstance(loader, Sized) else None
            after = setup.total_steps - global_step - (known - progress.steps) if setup.total_steps and known else 0
            self.lines = ProgressLines(description, known, self.interval, progress.steps, log, after)
        self.world = setup.dist.world_size if setup.dist is not None else 1
        self.images_before = self.images_last = progress.images * self.world  # every process's share is equal

    def show(self, progress: EpochProgress, global_step: int = 0) -> None:
        if progress.steps % self.interval:
            return
        dist = self.setup.dist
        total = _all_processes(progress, dist) if dist is not None and dist.enabled else progress  # a collective
        means = _means(total)
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
        if self.lines is not None:
            self.lines.update(progress.steps, total.images - self.images_before, means)
        wait, compute = self.timer.interval()
        images, self.images_last = total.images - self.images_last, total.images
        if self.setup.on_log is not None:
            speed = {"images_per_s": images / max(wait + compute, 1e-9), "data_wait_s": wait, "compute_s": compute}
            self.setup.on_log(global_step, {**means, **speed})


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
            if buffers is not None and _skip_if_nonfinite(terms, step, buffers, done + 1, log):
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
    total = _all_processes(progress, dist) if dist is not None and dist.enabled else progress
    stats = _means(total)
    _check_finite(stats, global_step)
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


def _means(progress: EpochProgress) -> dict[str, float]:
    counted = max(progress.steps - progress.skipped, 1)
    return {k: float(v) / counted for k, v in progress.sums.items()}


def _all_processes(progress: EpochProgress, dist: Distributed) -> EpochProgress:
    """The epoch's totals over every process: loss sums averaged (each process's terms are means over
    its equal share of the batch), images and hits summed, wall time of the slowest process."""
    names = sorted(progress.sums)
    if progress.correct is None:
        raise ValueError("the epoch's progress has no hit count (train_one_epoch sets one)")
    counts = (progress.correct, progress.scored, progress.images, progress.views)
    device = progress.correct.device
    values = (*(progress.sums[k] for k in names), *counts)
    local = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for v in values])
    total = dist.sum(local).tolist()
    n = len(names)
    return EpochProgress(
        steps=progress.steps,
        images=int(total[n + 2]),
        scored=int(total[n + 1]),
        views=int(total[n + 3]),
        seconds=float(dist.max(round(progress.seconds * 1e6))) / 1e6,
        skipped=progress.skipped,
        sums={k: torch.tensor(total[i] / dist.world_size) for i, k in enumerate(names)},
        correct=torch.tensor(total[n]),
    )


def _skip_if_nonfinite(
    terms: dict[str, Tensor], model: nn.Module, buffers: list[Tensor], global_step: int, log: Callable[[str], None]
) -> bool:
    """``nonfinite: skip``: if a term is NaN/Inf, restore the BatchNorm buffers and report the step."""
    values, bad = NonFiniteGuard.bad_terms(terms)
    if not bool(bad.any()):
        return False
    with torch.no_grad():
        for b, saved in zip(model.buffers(), buffers, strict=True):
            b.copy_(saved)
    names = [f"{n}={v}" for n, v, b in zip(terms, values.tolist(), bad.tolist(), strict=True) if b]
    log(f"step {global_step}: non-finite loss ({', '.join(names)}); step skipped")
    return True


def _check_finite(terms: dict[str, float], global_step: int) -> None:
    bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
    if bad:
        detail = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss by step {global_step}: {detail}")


EVAL_LINE_S = 10.0  # off a terminal, an evaluation says how far it is at most this often


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    device: torch.device,
    amp: str = "none",
    channels_last: bool = False,
    dist: Distributed | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """Top-1 and top-5 accuracy (%) of ``model`` in eval mode over ``loader`` (over every process's
    share of the data under ``dist``); with ``description``, a progress bar on a terminal."""
    model.eval()
    top1 = top5 = total = 0
    shown = description is not None and (dist is None or dist.is_main)  # a bar, or a line every tenth (>= 10 s)
    for x, y in eval_progress(loader, str(description), every_s=EVAL_LINE_S) if shown else loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(amp, device):
            logits = model(x)
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == y[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(dim=1).sum())
        total += y.shape[0]
    if dist is not None and dist.enabled:
        top1, top5, total = (int(v) for v in dist.sum(torch.tensor([top1, top5, total])).tolist())
    if total == 0:
        return {"top1": float("nan"), "top5": float("nan"), "n": 0}
    return {"top1": 100.0 * top1 / total, "top5": 100.0 * top5 / total, "n": total}
