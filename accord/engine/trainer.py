"""Build a run from a config and train it: data, views, model, loss, optimizer, logs, checkpoints.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per epoch),
``checkpoint-last.pt`` and ``checkpoint-best.pt`` (best validation top-1) and, once finished,
``summary.json``. The test set is evaluated every epoch and reported, never used to select.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data import DataInfo, build_splits
from ..losses import create_loss, method_mixing
from ..models import MultiViewModel, create_model
from ..views import ViewDataset, ViewMixer, build_eval_transform, build_multiview_transform, collate_views
from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .loop import evaluate, train_one_epoch
from .optim import create_optimizer, create_scheduler

RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoint-last.pt", "checkpoint-best.pt", "summary.json")


class RunFolderError(RuntimeError):
    """The output folder holds another run and neither resume nor overwrite was asked for."""


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
    )


def eval_loader(dataset: Dataset, cfg: dict[str, Any]) -> DataLoader:
    return DataLoader(dataset, batch_size=cfg["eval_batch_size"], num_workers=cfg["workers"], collate_fn=collate_views)


def prepare_folder(out: Path, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (out / "checkpoint-last.pt").is_file():
            raise RunFolderError(f"{out}: nothing to resume (no checkpoint-last.pt)")
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


def fit(
    cfg: dict[str, Any],
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out``; with ``resume`` continue from ``out/checkpoint-last.pt``."""
    out = Path(out)
    prepare_folder(out, resume, overwrite)
    run = build_run(cfg)
    model, criterion, device = run.model, run.criterion, run.device
    steps_per_epoch = len(run.train_set) // cfg["batch_size"]
    if steps_per_epoch == 0:
        raise ValueError(
            f"the training split has {len(run.train_set)} images, fewer than batch_size {cfg['batch_size']}"
        )
    total_steps = steps_per_epoch * cfg["epochs"]
    optimizer = create_optimizer([*model.parameters(), *criterion.parameters()], cfg)
    scheduler = create_scheduler(optimizer, cfg, steps_per_epoch)

    state = {"epoch": -1, "global_step": 0, "best_val_top1": -1.0, "best_epoch": -1}
    if resume:
        ckpt = load_checkpoint(out / "checkpoint-last.pt")
        model.model.load_state_dict(ckpt["model"])
        criterion.load_state_dict(ckpt["criterion"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state.update({k: ckpt[k] for k in state})
        _truncate_metrics(out / "metrics.jsonl", state["epoch"])
        log(f"resuming {out} after epoch {state['epoch'] + 1}/{cfg['epochs']}")
    else:
        (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    def on_step(step: int) -> None:
        scheduler.step_update(step)
        if hasattr(criterion, "set_progress"):
            criterion.set_progress(step / total_steps)

    val_loader, test_loader = eval_loader(run.val_set, cfg), eval_loader(run.test_set, cfg)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    log(
        f"{cfg['name']}: {cfg['model']} ({n_params:.2f}M params) on {run.info.name} "
        f"({len(run.train_set)} train / {len(run.val_set)} val / {len(run.test_set)} test), "
        f"method {cfg['method']}, views {cfg['views']}, {cfg['epochs']} epochs x {steps_per_epoch} steps, {device}"
    )
    for epoch in range(state["epoch"] + 1, cfg["epochs"]):
        torch.manual_seed(cfg["seed"] * 100_003 + epoch)
        run.train_set.set_epoch(epoch)
        if run.mixer is not None:
            run.mixer.set_epoch(cfg["seed"], epoch)
        loader = DataLoader(
            run.train_set,
            batch_size=cfg["batch_size"],
            shuffle=True,
            drop_last=True,
            num_workers=cfg["workers"],
            collate_fn=collate_views,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg["seed"] * 100_003 + epoch),
        )
        stats = train_one_epoch(
            model,
            criterion,
            loader,
            optimizer,
            on_step,
            global_step=state["global_step"],
            device=device,
            mixer=run.mixer,
            amp=cfg["amp"],
            channels_last=cfg["channels_last"],
            log_interval=cfg["log_interval"],
            description=f"epoch {epoch + 1}/{cfg['epochs']}",
        )
        state["global_step"] += stats.pop("steps")
        val = evaluate(model, val_loader, device, cfg["amp"], cfg["channels_last"])
        test = evaluate(model, test_loader, device, cfg["amp"], cfg["channels_last"])
        record = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            "train": {k: v for k, v in stats.items() if k not in ("images_per_s", "views_per_s", "seconds")},
            "val_top1": val["top1"],
            "val_top5": val["top5"],
            "test_top1": test["top1"],
            "test_top5": test["top5"],
            "images_per_s": stats["images_per_s"],
            "views_per_s": stats["views_per_s"],
            "seconds": stats["seconds"],
        }
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        state["epoch"] = epoch
        improved = val["n"] == 0 or val["top1"] > state["best_val_top1"]
        if improved:
            state["best_val_top1"], state["best_epoch"] = (val["top1"] if val["n"] else -1.0), epoch
        ckpt = {
            "model": model.model.state_dict(),
            "criterion": criterion.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": cfg,
            **state,
        }
        save_atomic(ckpt, out / "checkpoint-last.pt")
        if improved:
            save_atomic(ckpt, out / "checkpoint-best.pt")
        terms = " ".join(f"{k} {v:.3f}" for k, v in record["train"].items() if k not in ("train_top1",))
        log(
            f"epoch {epoch + 1}/{cfg['epochs']}: {terms} | val {val['top1']:.2f} test {test['top1']:.2f} | "
            f"{stats['images_per_s']:.0f} img/s ({stats['views_per_s']:.0f} views/s) {stats['seconds']:.1f}s"
            + (" *" if improved else "")
        )
    summary = summarize(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines written after the checkpoint we resume from (a run killed mid-epoch)."""
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line)["epoch"] <= last_epoch + 1]
    path.write_text("".join(line + "\n" for line in kept))


def read_metrics(out: Path) -> list[dict[str, Any]]:
    path = Path(out) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(out: Path) -> dict[str, Any]:
    """Test accuracy at the best-validation epoch (the selected model) and at the last epoch."""
    cfg = yaml.safe_load((Path(out) / "config.yaml").read_text())
    records = read_metrics(out)
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
    }


def evaluate_checkpoint(
    path: str | Path, dataset: str | None = None, data_dir: str | None = None, device: torch.device | None = None
) -> dict[str, Any]:
    """Top-1/top-5 of a checkpoint's model on the test set of its dataset (or of ``dataset``)."""
    ckpt = load_checkpoint(path)
    cfg = dict(ckpt["config"])
    if dataset:
        cfg["dataset"], cfg["data_dir"] = dataset, data_dir
    elif data_dir:
        cfg["data_dir"] = data_dir
    splits = build_splits(cfg["dataset"], cfg["data_dir"], 0.0, None, cfg["seed"], cfg["image_size"])
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(cfg, splits.info)
    try:
        model.model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"{path}: its {cfg['model']} does not fit {splits.info.name} ({splits.info.num_classes} classes, "
            f"{splits.info.in_chans} channels): {str(e).splitlines()[0]}"
        ) from None
    model.to(device)
    test_set = ViewDataset(splits.test, build_eval_transform(splits.info))
    return evaluate(model, eval_loader(test_set, cfg), device, cfg["amp"], cfg["channels_last"])
