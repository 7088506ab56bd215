"""Import a checkpoint of the AgMax authors' code (github.com/roatienza/agmax) as timm's ``resnet50`` /
``resnet101``.

Their ResNets are torchvision's layout inside two wrappers: ``Backbone`` (``feature_extractor.*`` = the
ResNet trunk, ``classifier.*`` = the linear head after a 1x1 average pool) and, for AgMax runs,
``AgMaxNet`` (``backbone.*`` + the Q network ``qnet.*``), all inside ``nn.DataParallel`` (``module.``) and
saved as ``{"model_state_dict": ..., "optimizer_state_dict": ...}`` by ``Classifier.save_checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from ..engine.checkpoint import CheckpointError, load_weights_only
from .errors import ExportError
from .timm_format import check_timm_keys, input_metadata, preview_keys, save_timm_safetensors

#: AgMax release architectures -> accord's built-in model config names.
AGMAX_ARCHS: dict[str, str] = {"resnet50": "ResNet50", "resnet101": "ResNet101"}

#: Key prefixes of the AgMax code's wrappers, outermost first (``nn.DataParallel``, ``AgMaxNet``, ``Backbone``).
AGMAX_PREFIXES = ("module.", "backbone.", "feature_extractor.")


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
        raise ExportError(f"not a state dict: non-tensor entries {preview_keys(bad)}")
    parallel, agmax_net, trunk = AGMAX_PREFIXES
    out: dict[str, Tensor] = {}
    for key, value in data.items():
        key = _strip(key, parallel)
        if key.startswith("qnet."):
            continue
        key = _strip(_strip(key, agmax_net), trunk)
        if key.startswith("classifier."):
            key = "fc." + key[len("classifier.") :]
        out[key] = value
    return out


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key


def import_agmax(
    src: str | Path, arch: str, out: str | Path, config: str | None = None, overwrite: bool = False
) -> dict[str, Any]:
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
        return save_timm_safetensors(state, out, arch, extra, overwrite)
    return _write_accord_checkpoint(state, out, config or f"{AGMAX_ARCHS[arch]}-standard", arch, info, overwrite)


def _write_accord_checkpoint(
    state: dict[str, Tensor], out: Path, config: str, arch: str, info: dict[str, Any], overwrite: bool = False
) -> dict[str, Any]:
    import torch

    from ..config import load_config
    from ..engine.writer import write_output
    from ..models import resolve_model_name

    cfg = load_config(config)
    if resolve_model_name(cfg.model.model) != arch:
        raise ExportError(f"config {config!r} trains {cfg.model.model}, not {arch}")
    checkpoint = {"model": state, "config": cfg.as_flat(), "agmax": info}
    write_output(out, lambda f: torch.save(checkpoint, f), overwrite=overwrite)
    return {"architecture": arch, "num_classes": int(state["fc.weight"].shape[0]), "config": cfg.name, **info}
