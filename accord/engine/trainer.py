"""Train a run (built by :mod:`.run`) into its folder: optimizer, schedules, epochs, evaluation, logs, checkpoints.

The run folder's files are named by :class:`~.runfolder.RunFolder`. The test set is evaluated every epoch and
reported, never used to select.

Resuming is exact: ``checkpoint-last.pt`` is written at the end of every epoch, every
``checkpoint_every_steps`` updates and when SIGINT/SIGTERM stops the run. It holds the model, the loss's
parameters (AgMax's Q head), the optimizer (and fp16 grad scaler), the random states (torch's, CUDA's, the
MixUp/CutMix generator's) and, mid-epoch, the position in the epoch's data order and the epoch's partial
loss sums (of every process). The learning-rate schedule has no state to save: timm's scheduler sets the lr
of each update as a pure function of the global step (``step_update(step)``), as are the loss-weight
schedules (``set_progress``). The data order of an epoch is a pure function of (seed, epoch)
(:class:`~.sampling.EpochSampler`), and each sample's views of (seed, epoch, index), so a resumed run skips
the batches already seen without loading them.

Several processes (``torchrun --nproc_per_node N -m accord train ...``): ``batch_size`` is the global
batch, split evenly over the processes; the model and the loss train as one DistributedDataParallel
module; every process evaluates its share of the val/test sets and the numbers are summed; rank 0 alone
writes the run folder and logs. A checkpoint from the end of an epoch resumes with any number of processes,
a mid-epoch one with the number that wrote it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader

from ..config import Config, ConfigError, resolved
from ..errors import UserError
from ..losses import method_spec
from ..step import build_step
from .checkpoint import CheckpointError, append_line_atomic, restore_rng, write_text_atomic
from .checkpointer import Checkpointer, quiet, rank0_stopped
from .distributed import process_group
from .ema import create_ema, with_raw
from .environment import describe_environment, environments_after_resume
from .epochprogress import EpochProgress
from .epochsetup import EpochSetup
from .evalpass import evaluate
from .identity import new_run_id, read_run_id, write_marker
from .lock import RunLock, forget_failed_start
from .loop import train_one_epoch
from .optim import clip_gradients, create_optimizer, create_scheduler
from .resume import load_last_checkpoint
from .run import Run, build_run, check_processes, eval_loader, train_loader
from .runfiles import (
    NOT_EVALUATED,
    check_outside_data,
    epoch_line,
    epoch_record,
    extension,
    make_folder,
    prepare_folder,
    record_skipped,
    summarize,
)
from .runfolder import RunFolder
from .runlogs import RunLogs
from .sampling import EpochSampler, check_last_batch, epoch_seed, epoch_steps
from .signals import AgreedStop, StopSignals, TrainingInterrupted
from .startresume import start_or_resume
from .summarycsv import write_summary_csv
from .tensorboard import MISSING_MESSAGE, tensorboard_available
from .wandblog import MISSING as MISSING_WANDB
from .wandblog import wandb_available

# fit and what its callers catch or resume with (the stop and the data order) under their long-standing names
__all__ = ["EpochSampler", "TrainingInterrupted", "fit"]

RANK_SEED_STRIDE = 1_000_003  # process r > 0 seeds torch with epoch_seed + r * stride (dropout differs by rank)


def fit(
    cfg: Config,
    out: str | Path,
    *,
    resume: bool | None = False,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out``; with ``resume`` continue from ``out/checkpoint-last.pt``; with ``resume``
    None start or resume as the folder says (:mod:`.startresume`).

    Launched by ``torchrun`` with several processes, every process calls this and they train as one
    (see the module docstring); only rank 0 logs. While it runs, SIGINT and SIGTERM stop it at the next
    step boundary after writing a checkpoint and raise :class:`TrainingInterrupted`; a non-finite loss
    raises :class:`~accord.step.NonFiniteLossError` (``nonfinite: stop``) with the last good checkpoint kept.
    """
    out = Path(out)
    if cfg.run.tensorboard and not tensorboard_available():
        raise ConfigError(f"tensorboard: true - {MISSING_MESSAGE}")
    if cfg.run.wandb and not wandb_available():
        raise ConfigError(MISSING_WANDB)
    with process_group(cfg.run.dist_timeout) as dist:
        check_processes(cfg, dist)
        check_outside_data(out, cfg.data.data_dir)
        resume, overwrite = start_or_resume(cfg, out, dist, resume, overwrite, log if dist.is_main else quiet)
        prepare_folder(out, resume, overwrite, write=False)  # checks only: nothing is created yet
        with StopSignals(out) as stop:
            run = build_run(cfg, dist=dist)  # data and model: a bad one fails before the folder exists
            with contextlib.ExitStack() as folder:

                def take_folder() -> None:  # rank 0 alone writes the folder; it holds the lock while it trains
                    created = not out.exists()
                    make_folder(out)
                    folder.enter_context(RunLock(out))
                    folder.callback(forget_failed_start, out, created)  # no folder of a lock file alone
                    prepare_folder(out, resume, overwrite)

                dist.on_main(take_folder, rank0_stopped)  # the others start once it is ready, or stop with it
                return _train(run, out, resume, stop, log if dist.is_main else quiet)


@dataclass
class _Training:
    """What trains a run besides the run itself: the optimizer and its schedule, the fp16 scaler, the weight EMA,
    the run's state (the epoch, the step, the best val top-1: what every checkpoint holds) and its log."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler | None
    ema: ModelEmaV3 | None
    steps_per_epoch: int
    total_steps: int
    state: dict[str, Any]
    log: Callable[[str], None]


def _train(run: Run, out: Path, resume: bool, stop: StopSignals, log: Callable[[str], None]) -> dict[str, Any]:
    """Train the built ``run`` into the folder ``out`` (rank 0's, ready): set up, resume or start, the epochs,
    the summary."""
    cfg, dist = run.cfg, run.dist
    training = _set_up(run, log)
    partial, run_id = _open_run(run, out, resume, training)
    record_skipped((run.train_set, run.val_set, run.test_set), run.skipped if dist.is_main else [], out, log)
    state = training.state
    scalars = RunLogs(cfg, out, dist.is_main, state["epoch"] + 1, state["global_step"], training.optimizer, run_id)
    # agreeing on a pending signal is a collective; on GPUs it also syncs the host, so ask less often
    agreed_stop = AgreedStop(stop, dist, cfg.run.log_interval if dist.enabled and run.device.type == "cuda" else 1)
    checkpoints = Checkpointer(run, training.optimizer, training.scaler, out, state, agreed_stop, training.ema, run_id)
    if resume and dist.is_main:  # an extension changes the run with its first checkpoint, not before
        checkpoints.before_first_save = extension(out, cfg, log)
    checkpoints.log = log
    log(_describe(run, training.steps_per_epoch))
    try:
        _train_epochs(run, out, training, _epoch_setup(run, training, scalars), checkpoints, partial, scalars)
    finally:
        scalars.close()
    summary = RunFolder(out).summary

    def write_summary() -> None:
        text = json.dumps(summarize(out, state["environments"], run.data), indent=2, allow_nan=False)
        write_text_atomic(text + "\n", summary)

    dist.on_main(write_summary, rank0_stopped)
    return json.loads(summary.read_text())


def _set_up(run: Run, log: Callable[[str], None]) -> _Training:
    """The optimizer, its schedule, the scaler and the EMA of ``run``, and a fresh state."""
    cfg, dist = run.cfg, run.dist
    steps_per_epoch = epoch_steps(len(run.train_set), cfg.optim.update_batch, cfg.data.drop_last)
    check_last_batch(len(run.train_set), cfg.optim.batch_size, cfg.data.drop_last, dist.world_size)
    if steps_per_epoch == 0:
        raise UserError(
            f"the training split has {len(run.train_set)} images, fewer than batch_size {cfg.optim.batch_size}"
            + (f" x accum_steps {cfg.optim.accum_steps}" if cfg.optim.accum_steps > 1 else "")
        )
    optimizer = create_optimizer(nn.ModuleList([run.model, run.criterion]), cfg.optim)
    state: dict[str, Any] = {"epoch": -1, "global_step": 0, "best_val_top1": -1.0, "best_epoch": -1}
    state["environments"] = [describe_environment(run.device, dist.world_size)]  # where it trained, in order
    return _Training(
        optimizer=optimizer,
        scheduler=create_scheduler(optimizer, cfg.optim, steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda") if cfg.run.amp == "fp16" else None,
        ema=create_ema(cfg, run.model.model),
        steps_per_epoch=steps_per_epoch,
        total_steps=steps_per_epoch * cfg.optim.epochs,
        state=state,
        log=log,
    )


def _open_run(run: Run, out: Path, resume: bool, training: _Training) -> tuple[dict[str, Any] | None, str | None]:
    """Resume from ``checkpoint-last.pt`` (its mid-epoch part and the run's id), or start: the marker, then the
    config (rank 0)."""
    state, log = training.state, training.log
    if resume:
        run_id = read_run_id(out)
        environment = state["environments"][-1]
        partial = load_last_checkpoint(run, training.optimizer, training.scaler, out, state, log, training.ema, run_id)
        state["environments"] = environments_after_resume(state["environments"], environment)
        return partial, run_id
    run_id = new_run_id()
    if run.dist.is_main:
        write_marker(out, run_id)  # first: the proof that what follows in the folder is accord's
        write_text_atomic(yaml.safe_dump(run.cfg.as_flat(), sort_keys=False), RunFolder(out).config)
    return None, run_id


def _epoch_setup(run: Run, training: _Training, scalars: RunLogs) -> EpochSetup:
    """How each batch of the run becomes an update (:class:`~.epochsetup.EpochSetup`)."""
    cfg, dist, ema, model = run.cfg, run.dist, training.ema, run.model
    spec = method_spec(cfg.method.method)

    def schedule(global_step: int) -> None:
        training.scheduler.step_update(global_step)
        spec.set_progress(run.criterion, global_step / training.total_steps)

    params = [*model.parameters(), *run.criterion.parameters()]
    return EpochSetup(
        run.device, run.mixer, run.views, training.scaler, dist, cfg.run.channels_last, cfg.run.log_interval,
        cfg.run.nonfinite, schedule,
        clip=(lambda: clip_gradients(params, cfg.optim)) if cfg.optim.clip_grad is not None else None,
        after_update=(lambda global_step: ema.update(model.model, global_step)) if ema is not None else None,
        total_steps=training.total_steps, on_log=scalars.write_step if scalars.wanted else None,
        micro_batch=cfg.optim.batch_size // dist.world_size if cfg.optim.accum_steps > 1 else None,
    )  # fmt: skip


def _describe(run: Run, steps_per_epoch: int) -> str:
    """The run's first log line: model, data, method, views, epochs, device."""
    cfg, dist = run.cfg, run.dist
    n_params = sum(p.numel() for p in run.model.parameters()) / 1e6
    processes = f", {dist.world_size} processes" if dist.enabled else ""
    return (
        f"{cfg.name}: {cfg.model.model} ({n_params:.2f}M params) on {run.info.name} "
        f"({len(run.train_set)} train / {len(run.val_set)} val / {len(run.test_set)} test), "
        f"method {cfg.method.method}, views {list(resolved(cfg.views.view_policies, 'view_policies'))}, "
        f"{cfg.optim.epochs} epochs x {steps_per_epoch} steps, "
        f"{run.device}{processes}"
    )


def _train_epochs(
    run: Run,
    out: Path,
    training: _Training,
    setup: EpochSetup,
    checkpoints: Checkpointer,
    partial: dict[str, Any] | None,
    scalars: RunLogs,
) -> None:
    """Each epoch left: train it, check the state, evaluate, record, checkpoint, log; stop when a signal asks."""
    cfg, dist, state, log = run.cfg, run.dist, training.state, training.log
    train_step = _train_step(run)
    loaders = eval_loader(run.val_set, cfg, dist), eval_loader(run.test_set, cfg, dist)
    for epoch in range(state["epoch"] + 1, cfg.optim.epochs):
        progress = _start_epoch(run, epoch, partial)
        partial = None
        checkpoints.epoch, checkpoints.epoch_end_step = epoch, (epoch + 1) * training.steps_per_epoch
        loader = train_loader(run, epoch, progress.steps if progress else 0)
        stats = train_one_epoch(
            train_step, loader, training.optimizer, setup, global_step=state["global_step"], progress=progress,
            checkpointer=checkpoints, epoch=epoch, log=log,
        )  # fmt: skip
        stats.pop("steps")
        state["global_step"] = stats.pop("global_step")
        checkpoints.check_state(f"after step {state['global_step']}, the end of epoch {epoch + 1}")
        evaluated = (epoch + 1) % cfg.run.eval_every == 0 or epoch + 1 == cfg.optim.epochs
        record, val = _evaluate_epoch(run, training, loaders, epoch, stats, evaluated)
        dist.on_main(functools.partial(_write_record, record, out, scalars), rank0_stopped)
        state["epoch"] = epoch
        improved = evaluated and (val["n"] == 0 or val["top1"] > state["best_val_top1"])
        if improved:
            state["best_val_top1"], state["best_epoch"] = (val["top1"] if val["n"] else -1.0), epoch
        checkpoints.save_epoch_end(improved)
        log(epoch_line(record, cfg.optim.epochs, improved, evaluated))
        if epoch + 1 < cfg.optim.epochs:
            checkpoints.stop.raise_if_stopped(f"the end of epoch {epoch + 1}")


def _evaluate_epoch(
    run: Run,
    training: _Training,
    loaders: tuple[DataLoader, DataLoader],
    epoch: int,
    stats: dict[str, float],
    evaluated: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The epoch's ``metrics.jsonl`` record and the val numbers that select: with an EMA, the EMA's (the raw
    weights' beside them in the record); NaN when ``eval_every`` skips the epoch."""
    cfg, ema, lr = run.cfg, training.ema, training.optimizer.param_groups[0]["lr"]
    start = time.perf_counter()

    def numbers(model: nn.Module, suffix: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
        if not evaluated:
            return NOT_EVALUATED, NOT_EVALUATED
        return tuple(  # type: ignore[return-value]
            evaluate(model, loader, run.device, cfg.run.amp, cfg.run.channels_last, run.dist, f"{split}{suffix}")
            for split, loader in zip(("val", "test"), loaders, strict=True)
        )

    val, test = numbers(run.model)
    record = epoch_record(epoch, lr, stats, val, test)
    if ema is not None and evaluated:  # the EMA's numbers select and report; the raw weights' beside them
        val, test = numbers(ema.module, " EMA")
        record = with_raw(epoch_record(epoch, lr, stats, val, test), record)
    record["eval_seconds"] = time.perf_counter() - start  # every evaluation of the epoch
    return record, val


def _write_record(record: dict[str, Any], out: Path, scalars: RunLogs | None) -> None:
    """The epoch's line in ``metrics.jsonl`` (and TensorBoard's and W&B's scalars): rank 0's write."""
    append_line_atomic(json.dumps(record), RunFolder(out).metrics)
    write_summary_csv(out)
    if scalars is not None:
        scalars.write_epoch(record)


def _train_step(run: Run) -> nn.Module:
    """The module each update calls: the run's :func:`~accord.step.build_step` (compile rule, DDP)."""
    spec, cfg = method_spec(run.cfg.method.method), run.cfg.run
    return build_step(run.model, run.criterion, spec, amp=cfg.amp, compile=cfg.compile, distributed=run.dist.enabled,
                      device=run.device)  # fmt: skip


def _start_epoch(run: Run, epoch: int, partial: dict[str, Any] | None) -> EpochProgress | None:
    """Seed the epoch's random streams, or restore them mid-epoch from a checkpoint's ``partial``."""
    cfg, rank = run.cfg, run.dist.rank
    run.train_set.set_epoch(epoch)
    torch.manual_seed(epoch_seed(cfg.run.seed, epoch) + rank * RANK_SEED_STRIDE)
    if run.mixer is not None:
        run.mixer.set_epoch(cfg.run.seed, epoch, rank)
    if partial is None:
        return None
    if partial["epoch"] != epoch:
        raise CheckpointError(f"checkpoint holds a partial epoch {partial['epoch'] + 1}, expected {epoch + 1}")
    restore_rng(partial["rng"], run.mixer.rng if run.mixer is not None else None, run.device)
    return EpochProgress.from_state(partial["progress"], run.device)
