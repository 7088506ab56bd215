"""Build a run from a config and train it: data, views, model, loss, optimizer, logs, checkpoints.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per epoch),
``checkpoint-last.pt`` and ``checkpoint-best.pt`` (best validation top-1), ``skipped-images.txt`` when
some images could not be read and, once finished, ``summary.json``. The test set is evaluated every
epoch and reported, never used to select. Every file is written atomically (see :mod:`.checkpoint`).

Resuming is exact: ``checkpoint-last.pt`` is written at the end of every epoch, every
``checkpoint_every_steps`` updates and when SIGINT/SIGTERM stops the run. It holds the model, the loss's
parameters (AgMax's Q head), the optimizer, the random states (torch's, CUDA's, the MixUp/CutMix
generator's) and, mid-epoch, the position in the epoch's data order and the epoch's partial loss sums.
The learning-rate schedule has no state to save: timm's scheduler sets the lr of each update as a pure
function of the global step (``step_update(step)``), as are the loss-weight schedules (``set_progress``).
The data order of an epoch is a pure function of (seed, epoch) (:class:`EpochSampler`), and each sample's
views of (seed, epoch, index), so a resumed run skips the batches already seen without loading them.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import DataInfo, build_splits
from ..data.datasets import SKIP_REPORT, image_folders
from ..losses import create_loss, method_mixing
from ..models import MultiViewModel, create_model
from ..views import ViewDataset, ViewMixer, build_eval_transform, build_multiview_transform, collate_views
from .checkpoint import (
    CheckpointError,
    append_line_atomic,
    capture_rng,
    load_checkpoint,
    remove_stale_temps,
    restore_rng,
    save_atomic,
    write_text_atomic,
)
from .loop import EpochProgress, evaluate, train_one_epoch
from .optim import create_optimizer, create_scheduler

RUN_FILES = (
    "config.yaml",
    "metrics.jsonl",
    "checkpoint-last.pt",
    "checkpoint-best.pt",
    "summary.json",
    SKIP_REPORT,
)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
MAX_LISTED_PATHS = 100  # summary.json lists at most this many skipped image paths (the count is exact)


class RunFolderError(RuntimeError):
    """The output folder holds another run and neither resume nor overwrite was asked for."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run at a step boundary, after writing ``checkpoint-last.pt``.

    ``exit_code`` is the shell convention for a process ended by that signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, out: Path, where: str | None) -> None:
        name = signal.Signals(signum).name
        saved = f"stopped at {where}; saved {out / 'checkpoint-last.pt'}" if where else "stopped without saving"
        super().__init__(f"{name}: {saved}; resume with `accord train --resume {out}`")
        self.signum, self.out, self.saved = signum, out, where is not None
        self.exit_code = 128 + signum


class StopSignals:
    """While active, the first SIGINT/SIGTERM only sets :attr:`signum` (the loop stops at the next step
    boundary after saving); a second one stops at once with :class:`TrainingInterrupted` (the files on disk
    stay whole: every write is atomic). Previous handlers are restored on exit. Handlers can only be set from
    the main thread; elsewhere this does nothing.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            return
        raise TrainingInterrupted(signum, self.out, None)


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the main process, which stops the run cleanly."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def epoch_seed(cfg: dict[str, Any], epoch: int) -> int:
    return cfg["seed"] * 100_003 + epoch


def epoch_permutation(n: int, seed: int) -> torch.Tensor:
    """The epoch's data order: exactly the one ``DataLoader(shuffle=True, generator=manual_seed(seed))``
    draws (the loader takes its workers' base seed from the generator first, then ``randperm``)."""
    g = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g)


class EpochSampler(Sampler[int]):
    """An epoch's shuffled order (:func:`epoch_permutation`) from position ``start`` on."""

    def __init__(self, n: int, seed: int, start: int = 0) -> None:
        self.n, self.seed, self.start = n, seed, start

    def __iter__(self) -> Iterator[int]:
        yield from epoch_permutation(self.n, self.seed)[self.start :].tolist()

    def __len__(self) -> int:
        return max(self.n - self.start, 0)


@dataclass
class Run:
    """Everything a training run is made of."""

    cfg: dict[str, Any]
    info: DataInfo
    model: MultiViewModel
    criterion: nn.Module
    train_set: ViewDataset
    val_set: Dataset
    test_set: Dataset
    device: torch.device
    mixer: ViewMixer | None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unreadable images dropped up front


def build_model(cfg: dict[str, Any], info: DataInfo) -> MultiViewModel:
    net = create_model(cfg["model"], info.num_classes, info.in_chans, cfg["drop_rate"])
    return MultiViewModel(net, cfg["num_views"], cfg["bn"])


def build_run(cfg: dict[str, Any], device: torch.device | None = None) -> Run:
    """Seed, load the data and build the model and loss of ``cfg`` (a validated config)."""
    torch.manual_seed(cfg["seed"])
    splits = build_splits(
        cfg["dataset"], cfg["data_dir"], cfg["val_fraction"], cfg["train_subset"], cfg["seed"], cfg["image_size"]
    )
    info = splits.info
    model = build_model(cfg, info)
    criterion = create_loss(cfg["method"], info.num_classes, cfg["num_views"], **cfg["loss"])
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    criterion.to(device)
    if cfg["channels_last"]:
        model.to(memory_format=torch.channels_last)
    mixer = None
    if cfg["mix"] != "none":
        mixer = ViewMixer(
            info.num_classes,
            cfg["num_views"],
            cfg["mix"],
            method_mixing(cfg["method"]),
            cfg["mixup_alpha"],
            cfg["cutmix_alpha"],
            cfg["mix_prob"],
            cfg["switch_prob"],
        )
    views = build_multiview_transform(cfg["views"], info, cfg["same_crop"])
    evaluation = build_eval_transform(info)
    return Run(
        cfg=cfg,
        info=info,
        model=model,
        criterion=criterion,
        train_set=ViewDataset(splits.train, views, cfg["seed"]),
        val_set=ViewDataset(splits.val, evaluation, cfg["seed"]),
        test_set=ViewDataset(splits.test, evaluation, cfg["seed"]),
        device=device,
        mixer=mixer,
        skipped=splits.skipped,
    )


def eval_loader(dataset: Dataset, cfg: dict[str, Any]) -> DataLoader:
    return DataLoader(dataset, batch_size=cfg["eval_batch_size"], num_workers=cfg["workers"], collate_fn=collate_views)


def train_loader(run: Run, epoch: int, start_step: int = 0) -> DataLoader:
    """The training batches of ``epoch`` from batch ``start_step`` on (earlier ones are not loaded)."""
    cfg, seed = run.cfg, epoch_seed(run.cfg, epoch)
    return DataLoader(
        run.train_set,
        batch_size=cfg["batch_size"],
        sampler=EpochSampler(len(run.train_set), seed, start_step * cfg["batch_size"]),
        drop_last=True,
        num_workers=cfg["workers"],
        collate_fn=collate_views,
        pin_memory=run.device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),  # the workers' base seed; keeps torch's global RNG out
        worker_init_fn=ignore_stop_signals,
    )


def prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (out / "checkpoint-last.pt").is_file():
            raise RunFolderError(
                f"{out}: nothing to resume (no checkpoint-last.pt: the run stopped before its first checkpoint); "
                "start it again with --overwrite"
            )
        remove_stale_temps(out)
        return
    existing = [name for name in RUN_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(existing)}); use --resume to continue it "
            "or --overwrite to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in existing:
        (out / name).unlink()
    remove_stale_temps(out)


class _Checkpoints:
    """Writes ``checkpoint-last.pt`` (and ``-best.pt``) of a run; decides when a mid-epoch one is due."""

    def __init__(
        self, run: Run, optimizer: torch.optim.Optimizer, out: Path, state: dict[str, Any], stop: StopSignals
    ) -> None:
        self.run, self.optimizer, self.out, self.state, self.stop = run, optimizer, out, state, stop
        self.every = run.cfg.get("checkpoint_every_steps", 0)
        self.epoch = 0
        self.epoch_end_step = 0

    def payload(self, partial: dict[str, Any] | None = None, **state: Any) -> dict[str, Any]:
        return {
            "model": self.run.model.model.state_dict(),
            "criterion": self.run.criterion.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.run.cfg,
            **self.state,
            **state,
            "partial": partial,
        }

    def due(self, step: int) -> bool:
        """After update ``step``: a signal is pending, or a periodic checkpoint falls before the epoch's end."""
        if self.stop.signum is not None:
            return True
        return self.every > 0 and step % self.every == 0 and step != self.epoch_end_step

    def save_mid_epoch(self, step: int, progress: EpochProgress) -> None:
        """Checkpoint inside an epoch; raise :class:`TrainingInterrupted` if a signal asked to stop."""
        mixer_rng = self.run.mixer.rng if self.run.mixer is not None else None
        partial = {
            "epoch": self.epoch,
            "progress": progress.state_dict(),
            "rng": capture_rng(mixer_rng, self.run.device),
        }
        save_atomic(self.payload(partial, global_step=step), self.out / "checkpoint-last.pt")
        self.raise_if_stopped(f"step {step} (epoch {self.epoch + 1}, step {progress.steps} of the epoch)")

    def save_epoch_end(self, improved: bool) -> None:
        ckpt = self.payload()
        save_atomic(ckpt, self.out / "checkpoint-last.pt")
        if improved:
            save_atomic(ckpt, self.out / "checkpoint-best.pt")

    def raise_if_stopped(self, where: str) -> None:
        if self.stop.signum is not None:
            raise TrainingInterrupted(self.stop.signum, self.out, where)


def fit(
    cfg: dict[str, Any],
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out``; with ``resume`` continue from ``out/checkpoint-last.pt``.

    While it runs, SIGINT and SIGTERM stop it at the next step boundary after writing a checkpoint and
    raise :class:`TrainingInterrupted`; a non-finite loss raises :class:`~.loop.NonFiniteLossError`
    (``nonfinite: stop``) with the last good checkpoint kept.
    """
    out = Path(out)
    prepare_folder(out, resume, overwrite)
    with StopSignals(out) as stop:
        run = build_run(cfg)
        return _train(run, out, resume, stop, log)


def _train(run: Run, out: Path, resume: bool, stop: StopSignals, log: Callable[[str], None]) -> dict[str, Any]:
    cfg, model, criterion, device = run.cfg, run.model, run.criterion, run.device
    steps_per_epoch = len(run.train_set) // cfg["batch_size"]
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training split has {len(run.train_set)} images, fewer than batch_size {cfg['batch_size']}"
        )
    total_steps = steps_per_epoch * cfg["epochs"]
    optimizer = create_optimizer([*model.parameters(), *criterion.parameters()], cfg)
    scheduler = create_scheduler(optimizer, cfg, steps_per_epoch)

    state = {"epoch": -1, "global_step": 0, "best_val_top1": -1.0, "best_epoch": -1}
    partial = None
    if resume:
        partial = _load_last_checkpoint(run, optimizer, out, state, log)
    else:
        write_text_atomic(yaml.safe_dump(cfg, sort_keys=False), out / "config.yaml")
    _record_skipped(run, out, log)

    def on_step(step: int) -> None:
        scheduler.step_update(step)
        if hasattr(criterion, "set_progress"):
            criterion.set_progress(step / total_steps)

    checkpoints = _Checkpoints(run, optimizer, out, state, stop)
    val_loader, test_loader = eval_loader(run.val_set, cfg), eval_loader(run.test_set, cfg)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    log(
        f"{cfg['name']}: {cfg['model']} ({n_params:.2f}M params) on {run.info.name} "
        f"({len(run.train_set)} train / {len(run.val_set)} val / {len(run.test_set)} test), "
        f"method {cfg['method']}, views {cfg['views']}, {cfg['epochs']} epochs x {steps_per_epoch} steps, {device}"
    )
    for epoch in range(state["epoch"] + 1, cfg["epochs"]):
        progress = _start_epoch(run, epoch, partial)
        partial = None
        checkpoints.epoch, checkpoints.epoch_end_step = epoch, (epoch + 1) * steps_per_epoch
        stats = train_one_epoch(
            model,
            criterion,
            train_loader(run, epoch, progress.steps if progress else 0),
            optimizer,
            on_step,
            global_step=state["global_step"],
            device=device,
            mixer=run.mixer,
            amp=cfg["amp"],
            channels_last=cfg["channels_last"],
            log_interval=cfg["log_interval"],
            description=f"epoch {epoch + 1}/{cfg['epochs']}",
            progress=progress,
            save_due=checkpoints.due,
            save=checkpoints.save_mid_epoch,
            nonfinite=cfg.get("nonfinite", "stop"),
            epoch=epoch,
            log=log,
        )
        stats.pop("steps")
        state["global_step"] = stats.pop("global_step")
        val = evaluate(model, val_loader, device, cfg["amp"], cfg["channels_last"])
        test = evaluate(model, test_loader, device, cfg["amp"], cfg["channels_last"])
        record = _epoch_record(epoch, optimizer.param_groups[0]["lr"], stats, val, test)
        append_line_atomic(json.dumps(record), out / "metrics.jsonl")
        state["epoch"] = epoch
        improved = val["n"] == 0 or val["top1"] > state["best_val_top1"]
        if improved:
            state["best_val_top1"], state["best_epoch"] = (val["top1"] if val["n"] else -1.0), epoch
        checkpoints.save_epoch_end(improved)
        log(_epoch_line(record, cfg["epochs"], improved))
        if epoch + 1 < cfg["epochs"]:
            checkpoints.raise_if_stopped(f"the end of epoch {epoch + 1}")
    summary = summarize(out)
    write_text_atomic(json.dumps(summary, indent=2) + "\n", out / "summary.json")
    return summary


def _load_last_checkpoint(
    run: Run, optimizer: torch.optim.Optimizer, out: Path, state: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any] | None:
    """Load ``checkpoint-last.pt`` into the run, the optimizer and ``state``; returns its mid-epoch part."""
    ckpt = load_checkpoint(out / "checkpoint-last.pt")
    run.model.model.load_state_dict(ckpt["model"])
    run.criterion.load_state_dict(ckpt["criterion"])
    optimizer.load_state_dict(ckpt["optimizer"])
    state.update({k: ckpt[k] for k in state})
    partial = ckpt.get("partial")  # None at an epoch's end (and in checkpoints older than mid-epoch resume)
    _truncate_metrics(out / "metrics.jsonl", state["epoch"])
    epochs = run.cfg["epochs"]
    where = f"after epoch {state['epoch'] + 1}/{epochs}"
    if partial is not None:
        where = f"in epoch {partial['epoch'] + 1}/{epochs} after step {partial['progress']['steps']}"
    log(f"resuming {out} {where} (global step {state['global_step']})")
    return partial


def _epoch_record(
    epoch: int, lr: float, stats: dict[str, float], val: dict[str, Any], test: dict[str, Any]
) -> dict[str, Any]:
    """One line of ``metrics.jsonl``."""
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train": {k: v for k, v in stats.items() if k not in ("images_per_s", "views_per_s", "seconds")},
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "test_top1": test["top1"],
        "test_top5": test["top5"],
        "images_per_s": stats["images_per_s"],
        "views_per_s": stats["views_per_s"],
        "seconds": stats["seconds"],
    }


def _epoch_line(record: dict[str, Any], epochs: int, improved: bool) -> str:
    terms = " ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in record["train"].items() if k != "train_top1"
    )
    return (
        f"epoch {record['epoch']}/{epochs}: {terms} | val {record['val_top1']:.2f} test {record['test_top1']:.2f} | "
        f"{record['images_per_s']:.0f} img/s ({record['views_per_s']:.0f} views/s) {record['seconds']:.1f}s"
        + (" *" if improved else "")
    )


def _start_epoch(run: Run, epoch: int, partial: dict[str, Any] | None) -> EpochProgress | None:
    """Seed the epoch's random streams, or restore them mid-epoch from a checkpoint's ``partial``."""
    cfg = run.cfg
    run.train_set.set_epoch(epoch)
    torch.manual_seed(epoch_seed(cfg, epoch))
    if run.mixer is not None:
        run.mixer.set_epoch(cfg["seed"], epoch)
    if partial is None:
        return None
    if partial["epoch"] != epoch:
        raise CheckpointError(f"checkpoint holds a partial epoch {partial['epoch'] + 1}, expected {epoch + 1}")
    restore_rng(partial["rng"], run.mixer.rng if run.mixer is not None else None, run.device)
    return EpochProgress.from_state(partial["progress"], run.device)


def _record_skipped(run: Run, out: Path, log: Callable[[str], None]) -> None:
    """List the images dropped up front in ``out/skipped-images.txt`` (with those found lazily before) and
    point the image folders' lazy reports at that file."""
    for dataset in (run.train_set, run.val_set, run.test_set):
        for folder in image_folders(dataset):
            folder.report = out / SKIP_REPORT
    if not run.skipped:
        return
    known = _read_skipped(out)
    lines = dict(known) | dict(run.skipped)
    write_text_atomic("".join(f"{p}\t{r}\n" for p, r in lines.items()), out / SKIP_REPORT)
    first = "; ".join(f"{p} ({r})" for p, r in run.skipped[:3])
    more = f" and {len(run.skipped) - 3} more" if len(run.skipped) > 3 else ""
    log(f"skipping {len(run.skipped)} unreadable images (listed in {out / SKIP_REPORT}): {first}{more}")


def _read_skipped(out: Path) -> list[tuple[str, str]]:
    path = Path(out) / SKIP_REPORT
    if not path.is_file():
        return []
    pairs = (line.partition("\t") for line in path.read_text().splitlines() if line.strip())
    return list({p: r for p, _, r in pairs}.items())


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines written after the checkpoint we resume from (a run killed mid-epoch)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["epoch"] <= last_epoch + 1:
            kept.append(line)
    write_text_atomic("".join(line + "\n" for line in kept), path)


def read_metrics(out: Path) -> list[dict[str, Any]]:
    path = Path(out) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(out: Path) -> dict[str, Any]:
    """Test accuracy at the best-validation epoch (the selected model) and at the last epoch."""
    cfg = yaml.safe_load((Path(out) / "config.yaml").read_text())
    records = read_metrics(out)
    skipped = _read_skipped(out)
    has_val = any(r["val_top1"] == r["val_top1"] for r in records)  # NaN when there is no val split
    best = max(records, key=lambda r: r["val_top1"]) if has_val else records[-1]
    last = records[-1]
    return {
        "name": cfg["name"],
        "method": cfg["method"],
        "model": cfg["model"],
        "dataset": cfg["dataset"],
        "seed": cfg["seed"],
        "epochs": last["epoch"],
        "best_epoch": best["epoch"],
        "best_val_top1": best["val_top1"],
        "test_top1": best["test_top1"],
        "test_top5": best["test_top5"],
        "last_val_top1": last["val_top1"],
        "last_test_top1": last["test_top1"],
        "train_seconds": sum(r["seconds"] for r in records),
        "images_per_s": sorted(r["images_per_s"] for r in records)[len(records) // 2],
        "skipped_images": {"count": len(skipped), "paths": [p for p, _ in skipped[:MAX_LISTED_PATHS]]},
    }
