"""Export trained models as timm-compatible ``safetensors`` files, and import the AgMax release's checkpoints.

* :func:`export_checkpoint` writes the evaluation model of an accord run (backbone + classifier) under
  timm's own key names: no AgMax Q head (it lives in the loss, never in the model state), and split
  BatchNorm folded back to the main BN layers (timm's ``SplitBatchNorm2d`` keeps the main statistics in
  the layer itself and the auxiliary views' in ``aux_bn.*``, which evaluation never uses, so those keys
  are dropped). The file's metadata names the timm architecture, ``num_classes``, ``in_chans``, the input
  size, the normalisation and the evaluation crop, so plain timm rebuilds it (see :func:`timm_overlay`).
* :func:`import_agmax` converts a checkpoint of the AgMax authors' code (github.com/roatienza/agmax) to
  timm's ``resnet50``/``resnet101`` keys. Their ResNets are torchvision's layout inside two wrappers:
  ``Backbone`` (``feature_extractor.*`` = the ResNet trunk, ``classifier.*`` = the linear head after a 1x1
  average pool) and, for AgMax runs, ``AgMaxNet`` (``backbone.*`` + the Q network ``qnet.*``), all inside
  ``nn.DataParallel`` (``module.``) and saved as ``{"model_state_dict": ..., "optimizer_state_dict": ...}``
  by ``Classifier.save_checkpoint``.

Only ``torch``, ``timm`` and ``safetensors`` (a timm dependency) are needed to read an exported file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from . import __version__
from .data.datasets import DATASET_FACTS
from .engine.checkpoint import CheckpointError, load_weights_only

#: AgMax release architectures -> accord's built-in model config names.
AGMAX_ARCHS: dict[str, str] = {"resnet50": "ResNet50", "resnet101": "ResNet101"}

#: Key prefixes of the AgMax code's wrappers, outermost first (``nn.DataParallel``, ``AgMaxNet``, ``Backbone``).
AGMAX_PREFIXES = ("module.", "backbone.", "feature_extractor.")


class ExportError(ValueError):
    """A checkpoint or state dict that cannot be exported or converted; the message says why."""


# --------------------------------------------------------------------------------------------- state dicts


def eval_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The evaluation weights of a model state: split BatchNorm's auxiliary layers (``aux_bn``) dropped.

    timm's ``convert_splitbn_model`` turns each BN into ``SplitBatchNorm2d``, whose own parameters and
    running statistics are the main (view 1, evaluation) BN and whose ``aux_bn.<i>`` hold the other views';
    without ``aux_bn`` the keys are exactly those of the unconverted timm model.
    """
    return {k: v.detach().cpu().contiguous() for k, v in state.items() if ".aux_bn." not in f".{k}"}


def _meta_model(arch: str, num_classes: int = 1000, in_chans: int = 3) -> nn.Module:
    import timm

    from .models import cifar  # noqa: F401  (registers the CIFAR models with timm)

    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans)


def infer_head(arch: str, state: Mapping[str, Tensor]) -> tuple[int, int]:
    """``(num_classes, in_chans)`` of ``state`` from timm's ``classifier`` and ``first_conv`` layer names."""
    cfg = _meta_model(arch).pretrained_cfg
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
            f"{label} {len(keys)} ({_preview(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        ]
        raise ExportError(f"the weights do not match timm's {arch} ({num_classes} classes): " + "; ".join(parts))


def _preview(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f", ... {len(keys) - n} more" if len(keys) > n else "")


# ------------------------------------------------------------------------------------------------ metadata


def input_metadata(dataset: str | None, image_size: int | None, in_chans: int) -> dict[str, Any]:
    """timm-style input fields for a model trained on accord's ``dataset`` (empty when it is unknown).

    Evaluation in accord keeps 28-32 px images whole and resizes larger ones to ``size + 32`` before a
    centre crop of ``size`` (``accord.views.policies.eval_geometry``): timm's ``crop_pct = size / (size + 32)``
    with bilinear resizing.
    """
    if dataset not in DATASET_FACTS:
        return {}
    mean, std, default_size, small = DATASET_FACTS[dataset]
    size = image_size or default_size
    return {
        "input_size": [in_chans, size, size],
        "mean": list(mean),
        "std": list(std),
        "crop_pct": 1.0 if small else size / (size + 32),
        "interpolation": "bilinear",
    }


def save_timm_safetensors(
    state: Mapping[str, Tensor], out: str | Path, arch: str, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check ``state`` against timm's ``arch`` and write it with metadata to ``out``; returns the metadata.

    Metadata values are JSON-encoded strings (safetensors stores ``str -> str``); :func:`read_metadata`
    decodes them.
    """
    from safetensors.torch import save_file

    state = eval_state_dict(state)
    num_classes, in_chans = infer_head(arch, state)
    check_timm_keys(arch, state, num_classes, in_chans)
    meta = {"architecture": arch, "num_classes": num_classes, "in_chans": in_chans, **(extra or {})}
    meta["accord_version"] = __version__
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"format": "pt", **{k: json.dumps(v) for k, v in meta.items()}})
    return meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported file, JSON values decoded (``architecture``, ``num_classes``, ...)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
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

    from .models import cifar  # noqa: F401  (registers the CIFAR models with timm)

    meta = read_metadata(path)
    model = timm.create_model(meta["architecture"], num_classes=meta["num_classes"], in_chans=meta["in_chans"])
    model.load_state_dict(load_file(str(path)))
    return model.eval()


# ------------------------------------------------------------------------------------------ accord export


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its ``checkpoint-best.pt`` (the selected model), else ``checkpoint-last.pt``."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in ("checkpoint-best.pt", "checkpoint-last.pt"):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path}: no checkpoint-best.pt or checkpoint-last.pt (not a run folder?)")


def export_checkpoint(src: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the evaluation model of an accord run folder or checkpoint to ``out`` (safetensors).

    Returns the metadata written (architecture as a timm name, classes, channels, input, provenance).
    """
    from .config import config_from_saved
    from .engine.checkpoint import load_checkpoint
    from .models import resolve_model_name

    path = resolve_checkpoint(src)
    ckpt = load_checkpoint(path)
    cfg = config_from_saved(dict(ckpt["config"]), f"{path}: config")
    arch = resolve_model_name(cfg.model.model)
    state = eval_state_dict(ckpt["model"])
    _, in_chans = infer_head(arch, state)
    extra = {
        **input_metadata(cfg.data.dataset, cfg.data.image_size, in_chans),
        "source": "accord",
        "config": cfg.name,
        "method": cfg.method.method,
        "dataset": cfg.data.dataset,
    }
    if "epoch" in ckpt:
        extra["epoch"] = int(ckpt["epoch"]) + 1
    return save_timm_safetensors(state, out, arch, extra)


# ------------------------------------------------------------------------------------------ AgMax import


def load_agmax_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read an AgMax ``.pth`` with ``torch.load(weights_only=True)`` (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        data = load_weights_only(path)
    except CheckpointError as e:
        raise ExportError(
            f"{e}. accord reads with torch.load(weights_only=True): tensors and plain containers only; re-save "
            "the file's model_state_dict alone with torch.save in a trusted environment"
        ) from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a dict (a state dict or a checkpoint), got {type(data).__name__}")
    return data


def agmax_to_timm(data: Mapping[str, Any]) -> dict[str, Tensor]:
    """Map an AgMax checkpoint's state dict to timm ResNet keys.

    Takes the ``model_state_dict`` (or ``state_dict``) entry when present, strips ``module.`` (DataParallel),
    drops the Q network (``qnet.*``), strips ``backbone.`` (AgMaxNet) and ``feature_extractor.`` (Backbone's
    ResNet trunk, whose keys are torchvision's = timm's) and renames Backbone's ``classifier.`` to ``fc.``.
    """
    for key in ("model_state_dict", "state_dict"):
        if isinstance(data.get(key), Mapping):
            data = data[key]
            break
    bad = sorted(str(k) for k, v in data.items() if not isinstance(v, Tensor))
    if bad:
        raise ExportError(f"not a state dict: non-tensor entries {_preview(bad)}")
    out: dict[str, Tensor] = {}
    for key, value in data.items():
        key = _strip(key, "module.")
        if key.startswith("qnet."):
            continue
        key = _strip(_strip(key, "backbone."), "feature_extractor.")
        if key.startswith("classifier."):
            key = "fc." + key[len("classifier.") :]
        out[key] = value
    return out


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def import_agmax(src: str | Path, arch: str, out: str | Path, config: str | None = None) -> dict[str, Any]:
    """Convert an AgMax ResNet checkpoint to ``out``: timm safetensors (``.safetensors``) or an accord
    checkpoint (``.pt``/``.pth``: ``{"model", "config"}`` with the ``<Model>-standard`` config, or ``config``),
    which ``accord eval --checkpoint OUT --data-dir IMAGENET`` evaluates with the ImageNet protocol
    (resize 256, centre crop 224) used by the AgMax code. Returns a description of what was written.
    """
    if arch not in AGMAX_ARCHS:
        raise ExportError(f"unknown AgMax architecture {arch!r}; valid: {', '.join(AGMAX_ARCHS)}")
    out = Path(out)
    if out.suffix not in (".safetensors", ".pt", ".pth"):
        raise ExportError(f"{out}: the output must end in .safetensors (timm) or .pt (accord checkpoint)")
    data = load_agmax_checkpoint(src)
    state = agmax_to_timm(data)
    num_classes = int(state["fc.weight"].shape[0]) if "fc.weight" in state else 1000
    in_chans = int(state["conv1.weight"].shape[1]) if "conv1.weight" in state else 3
    check_timm_keys(arch, state, num_classes, in_chans)
    info = {k: data[k] for k in ("epoch", "best_top1", "best_top5") if isinstance(data.get(k), int | float)}
    if out.suffix == ".safetensors":
        extra = {**input_metadata("imagefolder", 224, in_chans), "source": "agmax", "agmax": info}
        return save_timm_safetensors(state, out, arch, extra)
    return _write_accord_checkpoint(state, out, config or f"{AGMAX_ARCHS[arch]}-standard", arch, info)


def _write_accord_checkpoint(
    state: dict[str, Tensor], out: Path, config: str, arch: str, info: dict[str, Any]
) -> dict[str, Any]:
    from .config import load_config
    from .engine.checkpoint import save_atomic
    from .models import resolve_model_name

    cfg = load_config(config)
    if resolve_model_name(cfg.model.model) != arch:
        raise ExportError(f"config {config!r} trains {cfg.model.model}, not {arch}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"model": state, "config": cfg.as_flat(), "agmax": info}, out)
    return {"architecture": arch, "num_classes": int(state["fc.weight"].shape[0]), "config": cfg.name, **info}
