"""``accord bench``: what agreement between views costs, and what a user gets end to end.

:mod:`.steps` times each method's training step against a CE step on as many views, the loss alone,
the loaders and the augmentation on one core, and accounts peak memory; :mod:`.end_to_end` times the
real training loop with its loader against the same steps on ready tensors. Every timing is interleaved
in one process; see ``docs/performance.md`` for the method and the figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..losses import baseline_method, method_spec
from .end_to_end import AUGMENT_ON, E2E_POLICIES, FolderRun, format_end_to_end, measure_end_to_end
from .steps import (
    MEASURED_METHODS,
    BenchConfig,
    baseline_steps,
    measure_augment,
    measure_loaders,
    measure_memory,
    step_steps,
    summarize_steps,
    time_interleaved,
    views_of,
)

__all__ = [
    "AUGMENT_ON",
    "E2E_POLICIES",
    "MEASURED_METHODS",
    "BenchConfig",
    "check_result",
    "format_table",
    "run_benchmark",
]


def run_benchmark(cfg: BenchConfig, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run every measurement and return the JSON-ready result (see the module docstring)."""
    log("peak memory ...")
    memory = measure_memory(cfg)
    log("training steps (interleaved) ...")
    steps = summarize_steps(cfg, time_interleaved(step_steps(cfg), cfg.repeats, cfg.warmup))
    log("data loaders ...")
    loaders = measure_loaders(cfg)
    log("augmentation on one core ...")
    augment = measure_augment(cfg)
    log("end to end: the training loop with its loader vs the same steps on ready tensors ...")
    folder = FolderRun(cfg.image_size, cfg.amp) if cfg.e2e_data else None
    data = Path(cfg.e2e_data) if cfg.e2e_data else None
    e2e = measure_end_to_end(
        cfg.model, cfg.batch, cfg.e2e_steps, cfg.repeats, cfg.device, cfg.e2e_workers, data, folder=folder
    )
    model_rate = steps["model_views_per_s"]
    return {
        "config": asdict(cfg),
        "device": device_name(cfg.device),
        **steps,
        "loader_views_per_s": loaders,
        "loader_starves_model": {p: max(v.values()) < model_rate for p, v in loaders.items()},
        "peak_memory_mb": memory,
        "peak_memory_kind": "cuda max_memory_allocated"
        if cfg.device.startswith("cuda")
        else "cpu estimate: 3 x parameters + input + saved activations",
        "augment_images_per_s_1core": augment,
        **e2e,
    }


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({torch.get_num_threads()} threads)"


def format_table(result: dict[str, Any]) -> str:
    """A markdown table of the step measurements, then the loader, augmentation and memory lines."""
    cfg = result["config"]
    lines = [
        f"{cfg['model']}, batch {cfg['batch']} x {cfg['views']} views, {cfg['image_size']} px, "
        f"{cfg['channels']} ch, {result['device']}, median of {cfg['repeats']} interleaved repeats",
        "",
        "| method | step ms | baseline | overhead ratio | loss share % | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for m in MEASURED_METHODS:
        base = f"{baseline_method()} {views_of(m, cfg['views'])}B"
        lines.append(
            f"| {m} | {result['step_ms'][m]:.1f} | {base} | {result['overhead_ratio'][m]:.3f} "
            f"| {result['loss_share_pct'][m]:.1f} | {result['peak_memory_mb'][m]:.0f} |"
        )
    for name in baseline_steps(BenchConfig(views=cfg["views"])):
        lines.append(f"| {name} | {result['step_ms'][name]:.1f} | - | 1 | - | {result['peak_memory_mb'][name]:.0f} |")
    lines.append("")
    for m, ratio in result["own_bn_vs_concat"].items():
        lines.append(f"{m}, bn {method_spec(m).bn} vs concat: {ratio:.3f}x the concat step")
    lines.append(f"model consumes {result['model_views_per_s']:.0f} views/s (baseline step)")
    for policy, by_workers in result["loader_views_per_s"].items():
        rates = ", ".join(f"{w} workers {v:.0f}" for w, v in by_workers.items())
        starves = "slower" if result["loader_starves_model"][policy] else "faster"
        lines.append(f"loader alone, {policy}: {rates} views/s, {starves} than the step alone (see end to end)")
    aug = ", ".join(f"{k} {v:.0f}" for k, v in result["augment_images_per_s_1core"].items())
    lines.append(f"augmentation on 1 core, images/s: {aug}")
    lines.append(f"peak memory: {result['peak_memory_kind']}")
    lines += format_end_to_end(result)
    return "\n".join(lines)


def check_result(result: dict[str, Any]) -> None:
    """Raise ``ValueError`` if a ratio or rate is not a positive finite number."""
    values = [*result["overhead_ratio"].values(), *result["own_bn_vs_concat"].values(), result["model_views_per_s"]]
    values += list(result["loss_share_pct"].values())
    values += [v for d in result["loader_views_per_s"].values() for v in d.values()]
    values += [v for d in result["end_to_end_ratio"].values() for v in d.values()]
    if not all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"benchmark produced a non-positive or non-finite value: {values}")
