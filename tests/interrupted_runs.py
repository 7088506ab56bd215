"""The interrupted run of the resume tests: an AgMax ResNet-8 (two views and a Q head in the loss state)
with MixUp/CutMix, stopped by a fault planted in its loss, must end exactly as an uninterrupted run does."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from tiny_runs import QUIET

import accord.engine.trainer as trainer
from accord.config import load_config
from accord.engine import load_checkpoint
from accord.engine.runfiles import TIMING_KEYS

__all__ = ["QUIET", "assert_same_run", "config", "plant", "poison", "send"]

NAME = "FashionMNIST-ResNet8-standard-agmax"  # two views and a Q head in the loss state
# MixUp/CutMix draws from a NumPy generator and the views from per-sample seeds: the random state matters;
# 160 images / batch 32 = 5 steps an epoch, a checkpoint every 2 steps: most kills land mid-epoch.
OVERRIDES = {
    "batch_size": 32,
    "lr_batch": 32,
    "eval_batch_size": 100,
    "workers": 0,
    "log_interval": 1,
    "epochs": 2,
    "train_subset": 160,
    "mix": "mixup-cutmix",
    "checkpoint_every_steps": 2,
}
TIMING = TIMING_KEYS


def config(fmnist_dir: Path, **extra) -> dict:
    return load_config(NAME, {**OVERRIDES, "data_dir": str(fmnist_dir), **extra})


def metrics(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        for key in TIMING:
            r.pop(key)
    return records


def assert_same_run(out: Path, reference: Path) -> None:
    assert metrics(out) == metrics(reference)
    got = load_checkpoint(out / "checkpoint-last.pt")
    want = load_checkpoint(reference / "checkpoint-last.pt")
    for part in ("model", "criterion"):
        assert got[part].keys() == want[part].keys()
        assert all(torch.equal(got[part][k], want[part][k]) for k in want[part]), part
    assert got["global_step"] == want["global_step"] and got["partial"] is None


def assert_files_whole(out: Path) -> None:
    """Every run file under its real name parses completely (only hidden .tmp files may be partial)."""
    if (out / "config.yaml").exists():
        assert yaml.safe_load((out / "config.yaml").read_text())["method"] == "agmax"
    if (out / "metrics.jsonl").exists():
        for line in (out / "metrics.jsonl").read_text().splitlines():
            json.loads(line)
    for name in ("checkpoint-last.pt", "checkpoint-best.pt"):
        if (out / name).exists():
            load_checkpoint(out / name)
    if (out / "summary.json").exists():
        json.loads((out / "summary.json").read_text())


def temp_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob(".*.tmp"))


Action = Callable[[dict], dict]


def plant(monkeypatch: pytest.MonkeyPatch, at_call: int = 0, action: Action | None = None, every: Action | None = None):
    """Make the run's loss call ``action(terms)`` on its ``at_call``-th forward (1-based), ``every`` on all."""
    build_run = trainer.build_run

    def patched(cfg, device=None, dist=None):
        run = build_run(cfg, device, dist)
        forward, calls = run.criterion.forward, [0]

        def spy(*args, **kwargs):
            terms = forward(*args, **kwargs)
            calls[0] += 1
            if every is not None:
                terms = every(terms)
            return action(terms) if action is not None and calls[0] == at_call else terms

        run.criterion.forward = spy
        return run

    monkeypatch.setattr(trainer, "build_run", patched)


def poison(terms: dict) -> dict:
    return {**terms, "ce": terms["ce"] * float("nan"), "loss": terms["loss"] * float("nan")}


def draw_noise(terms: dict) -> dict:
    """Use torch's global generator in the main process, as dropout or drop-path do."""
    return {**terms, "loss": terms["loss"] * (1.0 + 0.01 * torch.rand(()))}


def send(signum: int) -> Action:
    def action(terms: dict) -> dict:
        os.kill(os.getpid(), signum)
        return terms

    return action
