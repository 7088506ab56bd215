"""Accuracy and calibration of a model on clean and corrupted test images.

Corruptions are generated on the fly from the test images, before the normalisation of
:func:`~accord.views.build_eval_transform`: the eval geometry (none for 28-32 px data; resize and centre
crop otherwise, as ImageNet-C corrupts the 224 px crops), then the corruption on the uint8 image
(:mod:`.corruptions`), then conversion to float and normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset
from torchvision.transforms import v2

from ..data import DataInfo
from ..data.loading import DEFAULT_LOADER_TIMEOUT, data_loader
from ..engine.progress import eval_progress
from ..errors import UserError
from .calibration import N_BINS, calibration_error_from_confidences
from .corruptions import CORRUPTION_NAMES, SEVERITIES, SEVERITY_PARAMS, check_names, corrupt
from .per_class import per_class_accuracy


def split_eval_transform(info: DataInfo) -> tuple[v2.Transform, v2.Compose]:
    """:func:`~accord.views.build_eval_transform` cut in two: its geometry (uint8 in, uint8 out) and the
    rest (conversion to float and normalisation), so a corruption can run between them."""
    from ..views import build_eval_transform
    from ..views.policies import TensorImagesOnly, eval_geometry

    ops = [op for op in build_eval_transform(info).transforms if not isinstance(op, TensorImagesOnly)]
    n_geometry = len(eval_geometry(info))
    geometry = v2.Compose(ops[:n_geometry]) if n_geometry else v2.Identity()
    return geometry, v2.Compose(ops[n_geometry:])


class _Transformed(Dataset):
    """``(transform(image), label)`` of an ``(image, label)`` dataset."""

    def __init__(self, dataset: Dataset, transform: Callable[[Tensor], Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.dataset[index]
        return self.transform(image), int(label)


@dataclass
class _Tally:
    """Top-1 confidences and hits of one test condition, gathered batch by batch."""

    confidences: list[Tensor] = field(default_factory=list)
    correct: list[Tensor] = field(default_factory=list)
    top5: list[Tensor] = field(default_factory=list)
    labels: list[Tensor] = field(default_factory=list)

    def add(self, logits: Tensor, labels: Tensor) -> None:
        probs = logits.float().softmax(dim=1)
        top = probs.topk(min(5, probs.shape[1]), dim=1)
        hits = top.indices == labels[:, None]
        self.confidences.append(top.values[:, 0].cpu())
        self.correct.append(hits[:, 0].cpu())
        self.top5.append(hits.any(dim=1).cpu())
        self.labels.append(labels.cpu())

    def summary(self, n_bins: int) -> dict[str, float]:
        """top-1, top-5 and ECE, all in percent."""
        if not self.correct:
            return {"top1": float("nan"), "top5": float("nan"), "ece": float("nan")}
        correct = torch.cat(self.correct)
        return {
            "top1": 100.0 * correct.double().mean().item(),
            "top5": 100.0 * torch.cat(self.top5).double().mean().item(),
            "ece": 100.0 * calibration_error_from_confidences(torch.cat(self.confidences), correct, n_bins),
        }


def noise_generator(seed: int, name: str, severity: int) -> torch.Generator:
    """The generator of one (corruption, severity): a pure function of ``seed``, so results repeat."""
    return torch.Generator().manual_seed(seed * 1000 + 10 * CORRUPTION_NAMES.index(name) + severity)


@torch.no_grad()
def evaluate_robustness(
    model: nn.Module,
    dataset: Dataset,
    info: DataInfo,
    device: torch.device,
    batch_size: int = 500,
    corruptions: Sequence[str] = CORRUPTION_NAMES,
    severities: Sequence[int] = SEVERITIES,
    *,
    limit: int | None = None,
    seed: int = 0,
    n_bins: int = N_BINS,
    amp: str = "none",
    channels_last: bool = False,
    workers: int = 0,
    timeout: float = DEFAULT_LOADER_TIMEOUT,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Clean top-1/top-5/ECE and, per (corruption, severity), top-1 and ECE of ``model`` (all in percent);
    with ``class_names`` (in label order) also the clean top-1 of every class, as ``per_class``.

    ``dataset`` is accord's raw test split (uint8 CHW images and labels, as ``build_splits`` returns);
    ``limit`` keeps its first ``limit`` images. Each batch is read once; the eval geometry, each corruption
    (on the whole uint8 batch), then the normalisation of :func:`split_eval_transform` are applied to it.
    Gaussian noise is seeded by ``seed`` (:func:`noise_generator`), so a rerun with the same batch size gives
    the same numbers. ``mean_corruption_top1`` is the mean over every corruption and severity (Hendrycks &
    Dietterich's unnormalised mean corruption accuracy, mCA).
    """
    from ..step import autocast

    check_names(corruptions, severities)
    if limit is not None:
        if limit < 1:
            raise UserError(f"limit must be positive, got {limit}")
        dataset = Subset(dataset, range(min(limit, len(dataset))))  # type: ignore[arg-type]
    geometry, finish = split_eval_transform(info)
    loader = data_loader(_Transformed(dataset, geometry), workers=workers, timeout=timeout, batch_size=batch_size)
    generators = {(c, s): noise_generator(seed, c, s) for c in corruptions for s in severities}
    tallies = {key: _Tally() for key in [None, *generators]}
    model.eval()

    def predict(images: Tensor) -> Tensor:
        x = finish(images.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(amp, device):
            return model(x)

    for images, labels in eval_progress(loader, "evaluating"):
        labels = labels.to(device)
        tallies[None].add(predict(images), labels)
        for (name, s), generator in generators.items():
            tallies[name, s].add(predict(corrupt(images, name, s, generator)), labels)
    result = _robustness_result(tallies, corruptions, severities, n_bins, seed, len(dataset))  # type: ignore[arg-type]
    if class_names is not None:
        clean = tallies[None]
        correct, labels = (torch.cat(t) if t else torch.zeros(0) for t in (clean.correct, clean.labels))
        result["per_class"] = per_class_accuracy(correct, labels, class_names)
    return result


def _robustness_result(
    tallies: dict[Any, _Tally], corruptions: Sequence[str], severities: Sequence[int], n_bins: int, seed: int, n: int
) -> dict[str, Any]:
    per_corruption: dict[str, Any] = {}
    for name in corruptions:
        cells = [tallies[name, s].summary(n_bins) for s in severities]
        top1 = [c["top1"] for c in cells]
        ece = [c["ece"] for c in cells]
        per_corruption[name] = {
            "params": [SEVERITY_PARAMS[name][s - 1] for s in severities],
            "top1": top1,
            "ece": ece,
            "mean_top1": _mean(top1),
            "mean_ece": _mean(ece),
        }
    every = [v for c in per_corruption.values() for v in c["top1"]]
    return {
        "n": n,
        "n_bins": n_bins,
        "seed": seed,
        "severities": list(severities),
        "clean": tallies[None].summary(n_bins),
        "corruptions": per_corruption,
        "mean_corruption_top1": _mean(every),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def evaluate_checkpoint_robustness(
    path: str | Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    *,
    limit: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
    per_class: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_robustness` of a checkpoint's model on the test set of its dataset (or of ``dataset``);
    with ``per_class``, the top-1 of every class under its name (the data's, which the checkpoint's match).

    With no ``corruptions`` this is the clean top-1/top-5 of :func:`~accord.engine.evaluate_checkpoint`
    (same data, model and eval transform) plus the ECE.
    """
    from ..data.datasets import image_folders
    from ..engine import load_eval_model
    from ..engine.run import loader_workers

    model, cfg, splits, device = load_eval_model(path, dataset, data_dir, device)
    result = evaluate_robustness(
        model,
        splits.test,
        splits.info,
        device,
        cfg.run.eval_batch_size,
        corruptions,
        severities,
        limit=limit,
        seed=seed,
        amp=cfg.run.amp,
        channels_last=cfg.run.channels_last,
        workers=loader_workers(cfg.data.workers),
        timeout=cfg.data.loader_timeout,
        class_names=splits.identity["class_names"] if per_class else None,
    )
    skipped = [[p, r] for folder in image_folders(splits.test) for p, r in folder.skipped]  # named, not silent
    return {
        "checkpoint": str(path),
        "dataset": splits.info.name,
        "model": cfg.model.model,
        **result,
        "skipped": skipped,
    }


def format_robustness(result: dict[str, Any]) -> str:
    """A markdown table of top-1 (%): one row per corruption, one column per severity, and the mean."""
    severities = result["severities"]
    head = "| top-1 (%) | " + " | ".join(f"s{s}" for s in severities) + " | mean |"
    rule = "|---|" + "---:|" * (len(severities) + 1)
    rows = [head, rule]
    for name, cell in result["corruptions"].items():
        values = " | ".join(_fmt(v) for v in cell["top1"])
        rows.append(f"| {name} | {values} | {_fmt(cell['mean_top1'])} |")
    blank = " | ".join("" for _ in severities)
    rows.append(f"| **mean** | {blank} | **{_fmt(result['mean_corruption_top1'])}** |")
    clean = result["clean"]
    rows.append(
        f"\nclean top-1 {_fmt(clean['top1'])}, mean corruption top-1 {_fmt(result['mean_corruption_top1'])} "
        f"({result['n']} images; ECE clean {_fmt(clean['ece'])}%)"
    )
    return "\n".join(rows)


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"
