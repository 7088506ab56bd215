"""Export the evaluation model of an accord run (backbone + classifier) as a timm ``safetensors`` file.

No AgMax Q head (it lives in the loss, never in the model state), and split BatchNorm folded back to the
main BN layers (timm's ``SplitBatchNorm2d`` keeps the main statistics in the layer itself and the auxiliary
views' in ``aux_bn.*``, which evaluation never uses, so those keys are dropped).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from ..data.identity import DATA_KEY
from ..engine.runfolder import RunFolder
from ..models.cifar import CIFAR_MODELS
from .timm_format import eval_state_dict, infer_head, input_metadata, save_timm_safetensors

#: Stored in (and printed for) an export of accord's CIFAR networks, which plain timm does not know.
ACCORD_REQUIRED = (
    "accord: these cifar_* models are registered with timm by accord - pip install accord, then "
    "`import accord.models` before timm.create_model (an export folder: local-dir:PATH, pretrained=True)"
)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its ``checkpoint-best.pt`` (the selected model), else ``checkpoint-last.pt``."""
    path = Path(path)
    if not path.is_dir():
        return path
    folder = RunFolder(path)
    if folder.best.is_file():
        return folder.best
    if folder.last.is_file():
        print(
            f"accord: note: {path} has no {folder.BEST} (no epoch was evaluated on a validation split yet); "
            f"using {folder.LAST}, the latest weights",
            file=sys.stderr,
        )
        return folder.last
    raise FileNotFoundError(f"{path}: no {folder.BEST} or {folder.LAST} (not a run folder?)")


@dataclass
class RunExport:
    """What an export of a run writes: the checkpoint's evaluation weights, as timm names them, and metadata."""

    path: Path  # the checkpoint
    checkpoint: dict[str, Any]
    arch: str  # the timm architecture
    state: dict[str, Tensor]  # the evaluation weights (EMA ones for an ema: true run)
    num_classes: int
    in_chans: int
    extra: dict[str, Any]  # input fields (timm's data config) and provenance


def load_run_export(src: str | Path) -> RunExport:
    """The evaluation model of an accord run folder or checkpoint and its metadata, ready to be written."""
    from ..config import config_from_saved
    from ..engine.checkpoint import load_checkpoint
    from ..models import resolve_model_name

    path = resolve_checkpoint(src)
    ckpt = load_checkpoint(path)
    cfg = config_from_saved(dict(ckpt["config"]), f"{path}: config")
    arch = resolve_model_name(cfg.model.model)
    weights = "ema" if ckpt.get("ema") is not None else "model"  # ema: true exports the weights it selected with
    state = eval_state_dict(ckpt[weights])
    num_classes, in_chans = infer_head(arch, state)
    extra = {
        **input_metadata(cfg.data.dataset, cfg.data.image_size, in_chans, cfg.data.crop_pct, cfg.data.interpolation),
        "source": "accord",
        "config": cfg.name,
        "method": cfg.method.method,
        "dataset": cfg.data.dataset,
        "weights": weights,
    }
    if arch in CIFAR_MODELS.values():
        extra["requires"] = ACCORD_REQUIRED
    if "epoch" in ckpt:
        extra["epoch"] = int(ckpt["epoch"]) + 1
    data = ckpt.get(DATA_KEY)
    if isinstance(data, dict) and data.get("class_names"):  # timm's name for the class of each output, in order
        extra["label_names"] = [str(name) for name in data["class_names"]]
    return RunExport(path, ckpt, arch, state, num_classes, in_chans, extra)


def export_checkpoint(src: str | Path, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write the evaluation model of an accord run folder or checkpoint to ``out`` (safetensors).

    Returns the metadata written (architecture as a timm name, classes, channels, input, provenance, and
    ``label_names``: the class of every output, when the checkpoint recorded its data's classes). A run
    trained with ``ema: true`` exports its EMA weights (``weights: ema`` in the metadata), the ones it was
    evaluated and selected with. accord's CIFAR ResNets/WRNs are registered with timm by accord only: their
    metadata says so in ``requires``. ``out`` is written through :func:`~accord.engine.writer.write_output`
    (an existing file accord did not write needs ``overwrite``).
    """
    run = load_run_export(src)
    return save_timm_safetensors(run.state, out, run.arch, run.extra, overwrite)
