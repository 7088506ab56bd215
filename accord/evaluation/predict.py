"""``accord predict``: the top-k classes and probabilities of image files, from a run or an export folder.

The images go through the evaluation transform of ``accord eval`` (:func:`~accord.views.build_eval_transform`:
the run's size, normalisation, ``crop_pct`` and ``interpolation``), resized and centre-cropped whatever their
size. The model is the one ``accord export`` writes: the evaluation weights (an ``ema: true`` run's EMA ones).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.datasets.folder import is_image_file
from torchvision.transforms.v2.functional import rgb_to_grayscale

from ..data.datasets import DATASET_FACTS, DataInfo, UnreadableImageError, decode_rgb
from ..data.files import directory_keys, regular_files
from ..errors import UserError
from ..views import build_eval_transform


@dataclass
class Predictor:
    """A model in eval mode, the evaluation transform of uint8 ``(C, H, W)`` images, and the class names."""

    model: nn.Module
    transform: Callable[[Tensor], Tensor]
    class_names: list[str]
    in_chans: int


@dataclass
class Prediction:
    image: str
    classes: list[str]  # best first
    probabilities: list[float]


def load_predictor(source: str | Path) -> Predictor:
    """A :class:`Predictor` from a run folder, an accord checkpoint (``.pt``) or an ``accord export`` folder."""
    source = Path(source)
    if source.is_dir() and (source / "config.json").is_file():
        return _from_export_folder(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such run folder, checkpoint or export folder")
    return _from_run(source)


def _from_run(source: Path) -> Predictor:
    import timm

    from ..config import config_from_saved
    from ..export.labels import class_names
    from ..export.run import load_run_export
    from ..models import cifar  # noqa: F401  (registers accord's CIFAR networks with timm)

    run = load_run_export(source)
    cfg = config_from_saved(dict(run.checkpoint["config"]), f"{run.path}: config")
    facts = DATASET_FACTS[cfg.data.dataset]
    info = DataInfo(
        cfg.data.dataset, run.num_classes, run.in_chans, cfg.data.image_size or facts.image_size,
        cfg.data.normalize_mean or facts.mean, cfg.data.normalize_std or facts.std, fixed_size=False,
        crop_pct=cfg.data.crop_pct, interpolation=cfg.data.interpolation,
    )  # fmt: skip
    model = timm.create_model(run.arch, num_classes=run.num_classes, in_chans=run.in_chans)
    model.load_state_dict(run.state)
    names = class_names(run.checkpoint, run.num_classes)
    return Predictor(model.eval(), build_eval_transform(info), names, run.in_chans)


def _from_export_folder(folder: Path) -> Predictor:
    import timm

    from ..models import cifar  # noqa: F401  (registers accord's CIFAR networks with timm)

    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    cfg: dict[str, Any] = dict(getattr(model, "pretrained_cfg", None) or {})  # timm's data config of the export
    num_classes = int(json.loads((folder / "config.json").read_text())["num_classes"])
    in_chans, height, _ = cfg["input_size"]
    info = DataInfo(
        "export", num_classes, in_chans, height, tuple(cfg["mean"]), tuple(cfg["std"]), fixed_size=False,
        crop_pct=cfg.get("crop_pct", 0.875), interpolation=cfg.get("interpolation", "bilinear"),
    )  # fmt: skip
    names = cfg.get("label_names")  # timm moves config.json's label_names into the pretrained_cfg
    if not isinstance(names, list | tuple) or len(names) != num_classes:
        names = [f"class_{i}" for i in range(num_classes)]
    return Predictor(model.eval(), build_eval_transform(info), [str(n) for n in names], in_chans)


def image_paths(inputs: Iterable[str | Path]) -> list[str]:
    """Image files given as files or found (sorted, recursively) in folders; a missing input is an error."""
    paths: list[str] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            paths += regular_files(str(item), is_image_file, directory_keys(str(item)))
        elif item.is_file():
            paths.append(str(item))
        else:
            raise FileNotFoundError(f"{item}: no such image file or folder")
    if not paths:
        raise FileNotFoundError(f"no image files in {', '.join(map(str, inputs))}")
    return paths


def _load(path: str, in_chans: int) -> Tensor:
    """An image file as uint8 ``(in_chans, H, W)``: RGB, or grey for a one-channel model."""
    image = decode_rgb(path)
    return image if in_chans == 3 else rgb_to_grayscale(image)  # ITU-R 601 luma, as PIL's convert("L")


@torch.no_grad()
def predict(predictor: Predictor, paths: list[str], top_k: int = 5, batch_size: int = 64) -> list[Prediction]:
    """The ``top_k`` (at most every class) names and probabilities of each readable image, in ``paths``' order;
    an unreadable image is skipped with one line on stderr."""
    if top_k < 1:
        raise UserError(f"--top-k must be positive, got {top_k}")
    k = min(top_k, len(predictor.class_names))
    readable: list[tuple[str, Tensor]] = []
    for path in paths:
        try:
            readable.append((path, predictor.transform(_load(path, predictor.in_chans))))
        except UnreadableImageError as e:
            print(f"accord: warning: skipping {e}", file=sys.stderr)
    results = []
    for start in range(0, len(readable), batch_size):
        chunk = readable[start : start + batch_size]
        probs = predictor.model(torch.stack([x for _, x in chunk])).float().softmax(1)
        values, indices = probs.topk(k, dim=1)
        for (path, _), p, i in zip(chunk, values.tolist(), indices.tolist(), strict=True):
            results.append(Prediction(path, [predictor.class_names[j] for j in i], p))
    return results


def to_csv(predictions: list[Prediction]) -> str:
    """``image,class_1,probability_1,...,class_k,probability_k``, one row per image."""
    k = max((len(p.classes) for p in predictions), default=0)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *(f"{name}_{r}" for r in range(1, k + 1) for name in ("class", "probability"))])
    for p in predictions:
        writer.writerow(
            [p.image, *(v for c, q in zip(p.classes, p.probabilities, strict=True) for v in (c, f"{q:.6f}"))]
        )
    return out.getvalue()


def to_table(predictions: list[Prediction]) -> str:
    """One line per image: the path, then each class with its probability in percent."""
    width = max((len(p.image) for p in predictions), default=0)
    lines = [
        f"{p.image:<{width}}  "
        + "  ".join(f"{c} {100 * q:.1f}%" for c, q in zip(p.classes, p.probabilities, strict=True))
        for p in predictions
    ]
    return "\n".join(lines) + "\n"


def run_predict(
    source: str, inputs: list[str], top_k: int, out: str | None, batch_size: int, overwrite: bool = False
) -> int:
    """``accord predict``: a table on stdout, or a CSV written whole to ``out`` through accord's one writer
    (checked by the caller before the model is loaded, and again when written)."""
    from ..engine.writer import write_text_output

    if batch_size < 1:
        raise UserError(f"--batch-size must be positive, got {batch_size}")
    paths = image_paths(inputs)
    predictions = predict(load_predictor(source), paths, top_k, batch_size)
    if out is None:
        print(to_table(predictions), end="")
    else:
        write_text_output(out, to_csv(predictions), overwrite=overwrite)
        print(f"{out}: top-{min(top_k, len(predictions[0].classes)) if predictions else top_k} of "
              f"{len(predictions)} images")  # fmt: skip
    return 0
