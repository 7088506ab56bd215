"""Export trained models as timm-compatible ``safetensors`` files (:mod:`.timm_format`, :mod:`.run`), and
import the AgMax release's checkpoints (:mod:`.agmax`)."""

from .agmax import AGMAX_ARCHS, agmax_to_timm, import_agmax, load_agmax_checkpoint
from .errors import ExportError
from .run import export_checkpoint, resolve_checkpoint
from .timm_format import (
    check_timm_keys,
    eval_state_dict,
    infer_head,
    input_metadata,
    load_exported,
    read_metadata,
    save_timm_safetensors,
    timm_overlay,
)

__all__ = [
    "AGMAX_ARCHS",
    "ExportError",
    "agmax_to_timm",
    "check_timm_keys",
    "eval_state_dict",
    "export_checkpoint",
    "import_agmax",
    "infer_head",
    "input_metadata",
    "load_agmax_checkpoint",
    "load_exported",
    "read_metadata",
    "resolve_checkpoint",
    "save_timm_safetensors",
    "timm_overlay",
]
