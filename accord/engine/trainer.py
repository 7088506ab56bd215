"""Build a run from a config and train it: data, views, model, loss, optimizer, logs, checkpoints.

The run folder's files are described in :mod:`.runfiles`. The test set is evaluated every epoch and
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
from pathlib import Path
from typing import Any

import torch
import yaml
from timm.utils import ModelEmaV3
from torch import nn

from ..config import Config, ConfigError, load_saved_config, resolved
from ..data.identity import DATA_KEY, check_data
from ..losses import method_spec
from ..step import build_step
from .checkpoint import (
    CheckpointError,
    append_line_atomic,
    capture_rng,
    load_checkpoint,
    load_state_checked,
    repair_best_checkpoint,
    restore_rng,
    save_atomic,
    write_text_atomic,
)
from .distributed import process_group
from .ema import create_ema, with_raw
from .environment import describe_environment, environments_after_resume
from .finite import NonFiniteStateError, count_float_tensors, nonfinite_message, nonfinite_tensors
from .history import keep_history
from .identity import check_identity, new_run_id, read_run_id, write_marker
from .lock import RunLock, forget_failed_start
from .loop import EpochProgress, EpochSetup, evaluate, train_one_epoch
from .optim import clip_gradients, create_optimizer, create_scheduler
from .run import Run, build_model, build_run, check_processes, eval_loader, train_loader
from .runfiles import (
    NOT_EVALUATED,
    RunFolderError,
    check_metrics_cover,
    check_outside_data,
    epoch_line,
    epoch_record,
    extension,
    make_folder,
    prepare_folder,
    read_metrics,
    record_skipped,
    summarize,
    truncate_metrics,
)
from .runlogs import RunLogs
from .sampling import EpochSampler, check_last_batch, epoch_permutation, epoch_seed, epoch_steps
from .signals import AgreedStop, StopSignals, TrainingInterrupted
from .startresume import start_or_resume
from .summarycsv import write_summary_csv
from .tensorboard import MISSING_MESSAGE, tensorboard_available
from .wandblog import MISSING as MISSING_WANDB
from .wandblog import wandb_available

__all__ = [
    "EpochSampler",
    "Run",
    "RunFolderError",
    "TrainingInterrupted",
    "build_model",
    "build_run",
    "epoch_permutation",
    "eval_loader",
    "fit",
    "read_metrics",
    "summarize",
]

RANK_SEED_STRIDE = 1_000_003  # process r > 0 seeds torch with epoch_seed + r * stride (dropout differs by rank)


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
        self.every = run.cfg.run.checkpoint_every_steps
        self.epoch = 0
        self.epoch_end_step = 0
        self.before_first_save: Callable[[], None] | None = None  # rank 0's: what the first checkpoint commits
        self.log: Callable[[str], None] = _quiet  # the run's log (rank 0's)

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
        """Raise :class:`~.finite.NonFiniteStateError` (on every process) if a weight or buffer of the model
        or the loss is NaN/Inf: no checkpoint is ever written from such a state."""
        modules = {"": self.run.model.model, "loss.": self.run.criterion}
        bad = nonfinite_tensors(modules)
        if self.run.dist.max(int(bool(bad))) and not bad:  # every process stops together
            bad = ["(on another process)"]
        if bad:
            raise NonFiniteStateError(nonfinite_message(bad, count_float_tensors(modules), where))

    def save_mid_epoch(self, global_step: int, progress: EpochProgress) -> None:
        """Checkpoint inside an epoch; raise :class:`TrainingInterrupted` if a signal asked to stop."""
        self.check_state(f"after step {global_step} (epoch {self.epoch + 1})")
        mixer_rng = self.run.mixer.rng if self.run.mixer is not None else None
        mine = {"progress": progress.state_dict(), "rng": capture_rng(mixer_rng, self.run.device)}
        ranks = self.run.dist.gather(mine)
        partial = {"epoch": self.epoch, "ranks": ranks}

        def save() -> None:
            self._commit()
            save_atomic(self.payload(partial, global_step=global_step), self.out / "checkpoint-last.pt")

        self.run.dist.on_main(save, rank0_stopped)
        self.log(f"saved {self.out / 'checkpoint-last.pt'} at step {global_step} (epoch {self.epoch + 1})")
        self.stop.raise_if_stopped(
            f"step {global_step} (epoch {self.epoch + 1}, step {progress.steps} of the epoch)", True
        )

    def save_epoch_end(self, improved: bool) -> None:
        """Rank 0 writes; a failed write there stops every process (``on_main``), none is left waiting."""

        def save() -> None:
            self._commit()
            ckpt = self.payload()
            if improved:  # best first: a kill between the two writes leaves `last` before this epoch, which
                save_atomic(ckpt, self.out / "checkpoint-best.pt")  # then trains again and rewrites the best
            save_atomic(ckpt, self.out / "checkpoint-last.pt")
            keep_history(self.out, self.epoch + 1, self.run.cfg.run.checkpoint_keep)

        self.run.dist.on_main(save, rank0_stopped)


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
    raises :class:`~.loop.NonFiniteLossError` (``nonfinite: stop``) with the last good checkpoint kept.
    """
    out = Path(out)
    if cfg.run.tensorboard and not tensorboard_available():
        raise ConfigError(f"tensorboard: true - {MISSING_MESSAGE}")
    if cfg.run.wandb and not wandb_available():
        raise ConfigError(MISSING_WANDB)
    with process_group(cfg.run.dist_timeout) as dist:
        check_processes(cfg, dist)
        check_outside_data(out, cfg.data.data_dir)
        resume, overwrite = start_or_resume(cfg, out, dist, resume, overwrite, log if dist.is_main else _quiet)
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
                return _train(run, out, resume, stop, log if dist.is_main else _quiet)


def rank0_stopped(message: str) -> RunFolderError:
    """What the other processes raise when rank 0 failed to write a run file (it raises its own error)."""
    return RunFolderError(f"rank 0 stopped: {message}")


def _quiet(message: str) -> None:
    """The log of processes other than rank 0."""


def _train(run: Run, out: Path, resume: bool, stop: StopSignals, log: Callable[[str], None]) -> dict[str, Any]:
    cfg, model, criterion, device, dist = run.cfg, run.model, run.criterion, run.device, run.dist
    steps_per_epoch = epoch_steps(len(run.train_set), cfg.optim.update_batch, cfg.data.drop_last)
    check_last_batch(len(run.train_set), cfg.optim.batch_size, cfg.data.drop_last, dist.world_size)
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training split has {len(run.train_set)} images, fewer than batch_size {cfg.optim.batch_size}"
            + (f" x accum_steps {cfg.optim.accum_steps}" if cfg.optim.accum_steps > 1 else "")
        )
    total_steps = steps_per_epoch * cfg.optim.epochs
    optimizer = create_optimizer(nn.ModuleList([model, criterion]), cfg.optim)
    ema = create_ema(cfg, model.model)
    scheduler = create_scheduler(optimizer, cfg.optim, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if cfg.run.amp == "fp16" else None

    state: dict[str, Any] = {"epoch": -1, "global_step": 0, "best_val_top1": -1.0, "best_epoch": -1}
    environment = describe_environment(device, dist.world_size)
    state["environments"] = [environment]  # where the run has trained, in order: in every checkpoint
    partial = None
    run_id: str | None
    if resume:
        run_id = read_run_id(out)
        partial = _load_last_checkpoint(run, optimizer, scaler, out, state, log, ema, run_id)
        state["environments"] = environments_after_resume(state["environments"], environment)
    else:
        run_id = new_run_id()
        if dist.is_main:
            write_marker(out, run_id)  # first: the proof that what follows in the folder is accord's
            write_text_atomic(yaml.safe_dump(cfg.as_flat(), sort_keys=False), out / "config.yaml")
    record_skipped((run.train_set, run.val_set, run.test_set), run.skipped if dist.is_main else [], out, log)

    spec = method_spec(cfg.method.method)

    def schedule(global_step: int) -> None:
        scheduler.step_update(global_step)
        spec.set_progress(criterion, global_step / total_steps)

    train_step = _train_step(run)
    scalars = RunLogs(cfg, out, dist.is_main, state["epoch"] + 1, state["global_step"], optimizer, run_id)
    params = [*model.parameters(), *criterion.parameters()]
    setup = EpochSetup(
        device, run.mixer, run.views, scaler, dist, cfg.run.channels_last, cfg.run.log_interval, cfg.run.nonfinite,
        schedule,
        clip=(lambda: clip_gradients(params, cfg.optim)) if cfg.optim.clip_grad is not None else None,
        after_update=(lambda global_step: ema.update(model.model, global_step)) if ema is not None else None,
        total_steps=total_steps, on_log=scalars.write_step if scalars.wanted else None,
        micro_batch=cfg.optim.batch_size // dist.world_size if cfg.optim.accum_steps > 1 else None,
    )  # fmt: skip
    # agreeing on a pending signal is a collective; on GPUs it also syncs the host, so ask less often
    agreed_stop = AgreedStop(stop, dist, cfg.run.log_interval if dist.enabled and device.type == "cuda" else 1)
    checkpoints = Checkpointer(run, optimizer, scaler, out, state, agreed_stop, ema, run_id)
    if resume and dist.is_main:  # an extension changes the run with its first checkpoint, not before
        checkpoints.before_first_save = extension(out, cfg, log)
    checkpoints.log = log
    val_loader, test_loader = eval_loader(run.val_set, cfg, dist), eval_loader(run.test_set, cfg, dist)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    processes = f", {dist.world_size} processes" if dist.enabled else ""
    log(
        f"{cfg.name}: {cfg.model.model} ({n_params:.2f}M params) on {run.info.name} "
        f"({len(run.train_set)} train / {len(run.val_set)} val / {len(run.test_set)} test), "
        f"method {cfg.method.method}, views {list(resolved(cfg.views.view_policies, 'view_policies'))}, "
        f"{cfg.optim.epochs} epochs x {steps_per_epoch} steps, "
        f"{device}{processes}"
    )
    try:
        for epoch in range(state["epoch"] + 1, cfg.optim.epochs):
            progress = _start_epoch(run, epoch, partial)
            partial = None
            checkpoints.epoch, checkpoints.epoch_end_step = epoch, (epoch + 1) * steps_per_epoch
            loader = train_loader(run, epoch, progress.steps if progress else 0)
            stats = train_one_epoch(
                train_step, loader, optimizer, setup, global_step=state["global_step"], progress=progress,
                checkpointer=checkpoints, epoch=epoch, log=log,
            )  # fmt: skip
            stats.pop("steps")
            state["global_step"] = stats.pop("global_step")
            checkpoints.check_state(f"after step {state['global_step']}, the end of epoch {epoch + 1}")
            evaluated = (epoch + 1) % cfg.run.eval_every == 0 or epoch + 1 == cfg.optim.epochs
            val = test = NOT_EVALUATED
            eval_start = time.perf_counter()
            if evaluated:
                val = evaluate(model, val_loader, device, cfg.run.amp, cfg.run.channels_last, dist, "val")
                test = evaluate(model, test_loader, device, cfg.run.amp, cfg.run.channels_last, dist, "test")
            record = epoch_record(epoch, optimizer.param_groups[0]["lr"], stats, val, test)
            if ema is not None and evaluated:  # the EMA's numbers select and report; the raw weights' beside them
                val = evaluate(ema.module, val_loader, device, cfg.run.amp, cfg.run.channels_last, dist, "val EMA")
                test = evaluate(ema.module, test_loader, device, cfg.run.amp, cfg.run.channels_last, dist, "test EMA")
                record = with_raw(epoch_record(epoch, optimizer.param_groups[0]["lr"], stats, val, test), record)
            record["eval_seconds"] = time.perf_counter() - eval_start  # every evaluation of the epoch
            dist.on_main(functools.partial(_write_record, record, out, scalars), rank0_stopped)
            state["epoch"] = epoch
            improved = evaluated and (val["n"] == 0 or val["top1"] > state["best_val_top1"])
            if improved:
                state["best_val_top1"], state["best_epoch"] = (val["top1"] if val["n"] else -1.0), epoch
            checkpoints.save_epoch_end(improved)
            log(epoch_line(record, cfg.optim.epochs, improved, evaluated))
            if epoch + 1 < cfg.optim.epochs:
                agreed_stop.raise_if_stopped(f"the end of epoch {epoch + 1}")
    finally:
        scalars.close()
    summary = out / "summary.json"

    def write_summary() -> None:
        text = json.dumps(summarize(out, state["environments"], run.data), indent=2, allow_nan=False)
        write_text_atomic(text + "\n", summary)

    dist.on_main(write_summary, rank0_stopped)
    return json.loads(summary.read_text())


def _write_record(record: dict[str, Any], out: Path, scalars: RunLogs | None) -> None:
    """The epoch's line in ``metrics.jsonl`` (and TensorBoard's and W&B's scalars): rank 0's write."""
    append_line_atomic(json.dumps(record), out / "metrics.jsonl")
    write_summary_csv(out)
    if scalars is not None:
        scalars.write_epoch(record)


def _train_step(run: Run) -> nn.Module:
    """The module each update calls: the run's :func:`~accord.step.build_step` (compile rule, DDP)."""
    spec, cfg = method_spec(run.cfg.method.method), run.cfg.run
    return build_step(run.model, run.criterion, spec, amp=cfg.amp, compile=cfg.compile, distributed=run.dist.enabled,
                      device=run.device)  # fmt: skip


def _load_last_checkpoint(
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
    path = out / "checkpoint-last.pt"
    ckpt = load_checkpoint(path)
    cfg = run.cfg
    folder_config = load_saved_config(out / "config.yaml").as_flat()
    check_identity(path, ckpt, run_id, folder_config)
    check_data(ckpt.get(DATA_KEY), run.data, f"--resume {out}")
    _check_best_identity(out / "checkpoint-best.pt", run_id, folder_config)
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
        truncate_metrics(out / "metrics.jsonl", state["epoch"])
        check_metrics_cover(out, state["epoch"])  # a deleted or emptied record would make a wrong summary
        if repair_best_checkpoint(out, ckpt):
            log(f"{out / 'checkpoint-best.pt'} did not hold epoch {state['epoch'] + 1}, the best one; rewrote it")
    epochs = run.cfg.optim.epochs
    where = f"after epoch {state['epoch'] + 1}/{epochs}"
    if partial is not None:
        ranks = partial["ranks"] if "ranks" in partial else [partial]  # one-process checkpoints before DDP
        if len(ranks) != run.dist.world_size:
            raise CheckpointError(
                f"{out / 'checkpoint-last.pt'} was written mid-epoch by {len(ranks)} process(es); resume it with "
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
