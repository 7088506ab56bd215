"""A timm-compatible ``safetensors`` file: the evaluation state dict under timm's key names, and metadata
(timm architecture, ``num_classes``, ``in_chans``, input size, normalisation, evaluation crop) from which
plain timm rebuilds the model (:func:`timm_overlay`). Only ``torch``, ``timm`` and ``safetensors`` (a timm
dependency) are needed to read one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import __version__
from ..data.datasets import DATASET_FACTS
from .errors import ExportError


def eval_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The evaluation weights of a model state: split BatchNorm's auxiliary layers (``aux_bn``) dropped.

    timm's ``convert_splitbn_model`` turns each BN into ``SplitBatchNorm2d``, whose own parameters and
    running statistics are the main (view 1, evaluation) BN and whose ``aux_bn.<i>`` hold the other views';
    without ``aux_bn`` the keys are exactly those of the unconverted timm model.
    """
    return {k: v.detach().cpu().contiguous() for k, v in state.items() if ".aux_bn." not in f".{k}"}


def _meta_model(arch: str, num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    import timm

    from ..models import cifar  # noqa: F401  (registers the CIFAR models with timm)

    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def infer_head(arch: str, state: Mapping[str, Tensor]) -> tuple[int, int]:
    """``(num_classes, in_chans)`` of ``state`` from timm's ``classifier`` and ``first_conv`` layer names."""
    cfg: dict = getattr(_meta_model(arch), "pretrained_cfg", None) or {}  # every timm model has one
    classifier, first_conv = cfg.get("classifier"), cfg.get("first_conv")
    if not isinstance(classifier, str) or not isinstance(first_conv, str):
        raise ExportError(f"{arch}: timm does not name a single classifier and first conv layer")
    for key in (f"{classifier}.weight", f"{first_conv}.weight"):
        if key not in state:
            raise ExportError(f"{arch}: the state has no {key!r} (is it a {arch}?)")
    return int(state[f"{classifier}.weight"].shape[0]), int(state[f"{first_conv}.weight"].shape[1])


def check_timm_keys(arch: str, state: Mapping[str, Tensor], num_classes: int, in_chans: int) -> None:
    """Raise :class:`ExportError` unless ``state`` has exactly the keys and shapes of timm's ``arch``."""
    model = _meta_model(arch, num_classes, in_chans)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or wrong:
        parts = [
            f"{label} {len(keys)} ({preview_keys(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise ExportError(f"the weights do not match timm's {arch} ({num_classes} classes): " + "; ".join(parts))


def preview_keys(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", ... {len(keys) - n} more" if len(keys) > n else "")


def input_metadata(
    dataset: str | None,
    image_size: int | None,
    in_chans: int,
    crop_pct: float | None = None,
    interpolation: str = "bilinear",
) -> dict[str, Any]:
    """timm-style input fields for a model trained on accord's ``dataset`` (empty when it is unknown).

    ``crop_pct`` and ``interpolation`` are the run's evaluation crop (the config keys of the same names, timm's
    meaning: :mod:`accord.views.eval_crop`); ``crop_pct`` None is the data set's own.
    """
    if dataset is None or dataset not in DATASET_FACTS:
        return {}
    facts = DATASET_FACTS[dataset]
    size = image_size or facts.image_size
    return {
        "input_size": [in_chans, size, size],
        "mean": list(facts.mean),
        "std": list(facts.std),
        "crop_pct": facts.crop_pct if crop_pct is None else crop_pct,
        "interpolation": interpolation,
    }


def save_timm_safetensors(
    state: Mapping[str, Tensor],
    out: str | Path,
    arch: str,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Check ``state`` against timm's ``arch`` and write it with metadata to ``out``; returns the metadata.

    safetensors stores metadata as ``str -> str``: text values are stored as they are (``resnet50``, not
    ``"resnet50"``), numbers and lists as JSON (``10``, ``[3, 32, 32]``); :func:`read_metadata` decodes them.
    """
    from safetensors.torch import save

    from ..engine.writer import write_output

    state = eval_state_dict(state)
    num_classes, in_chans = infer_head(arch, state)
    check_timm_keys(arch, state, num_classes, in_chans)
    meta = {"architecture": arch, "num_classes": num_classes, "in_chans": in_chans, **(extra or {})}
    meta["accord_version"] = __version__
    data = save(dict(state), metadata={"format": "pt", **{k: metadata_text(v) for k, v in meta.items()}})
    write_output(out, lambda f: f.write(data), overwrite=overwrite)  # atomic, the umask's mode (not 0600)
    return meta


def metadata_text(value: Any) -> str:
    """A metadata value as safetensors stores it: text as itself, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


#: Metadata keys whose values are text (never decoded as JSON, so a config named ``1e3`` stays text).
TEXT_KEYS = frozenset(
    {"format", "architecture", "source", "config", "method", "dataset", "interpolation", "accord_version",
     "weights", "requires"}
)  # fmt: skip


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported file, JSON values decoded (``architecture``, ``num_classes``, ...)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TEXT_KEYS:
            out[key] = json.loads(value) if value.startswith('"') else value  # files written as JSON text before
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def timm_overlay(path: str | Path) -> dict[str, Any]:
    """``pretrained_cfg_overlay`` for ``timm.create_model(arch, pretrained=True, ...)`` from an exported file.

    ``num_classes`` must be in the overlay: timm drops the classifier weights when the file's classes differ
    from the pretrained config's (1000 for ImageNet models). timm's own CIFAR-style entries (accord's
    ``cifar_*`` models) have no pretrained loading; use ``model.load_state_dict(load_file(path))`` for those.
    """
    meta = read_metadata(path)
    keys = ("num_classes", "input_size", "mean", "std", "crop_pct", "interpolation")
    overlay = {k: tuple(meta[k]) if isinstance(meta[k], list) else meta[k] for k in keys if k in meta}
    return {"file": str(path), **overlay}


def load_exported(path: str | Path) -> nn.Module:
    """Build the timm model named in an exported file's metadata and load its weights (eval mode)."""
    import timm
    from safetensors.torch import load_file

    from ..models import cifar  # noqa: F401  (registers the CIFAR models with timm)

    meta = read_metadata(path)
    model = timm.create_model(meta["architecture"], num_classes=meta["num_classes"], in_chans=meta["in_chans"])
    model.load_state_dict(load_file(str(path)))
    return model.eval()
