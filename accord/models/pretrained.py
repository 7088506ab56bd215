"""Start a model from local weights (``pretrained_file``): timm's loader, a new head when the classes differ.

The file is read with timm's ``load_state_dict`` (``.safetensors``, or a ``.pth``/``.pt``/``.pth.tar`` holding a
state dict, or a checkpoint with ``state_dict``/``model``/``state_dict_ema`` in it: accord's own checkpoints and
exports and timm's ``train.py`` checkpoints — ``last.pth.tar``, ``model_best.pth.tar``, ``checkpoint-N.pth.tar`` —
all load: timm's ``state_dict`` before its ``state_dict_ema`` as timm's ``--initial-checkpoint`` takes them, an accord
run's ``ema`` weights when it kept them (those it selected with); one line says which were taken). Pickles are read
with ``weights_only=True``, allowing only the one class timm's checkpoints add, ``argparse.Namespace`` (its
``args``): nothing else is unpickled. As timm does for ``pretrained_cfg_overlay=dict(file=...)`` with another
``num_classes``, the classifier's weights are dropped when their shape differs and the head stays freshly
initialised (fine-tuning). Any other key that is missing, unexpected or of another shape is refused in one line
naming the keys: nothing is downloaded and nothing is loaded partly.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from timm.models import clean_state_dict, load_state_dict
from torch import nn

from ..errors import UserError
from .interface import timm_interface

SHOWN = 5  # mismatched keys named in the error


class PretrainedError(UserError):
    """The pretrained file cannot start this model; the message names the file and the keys."""


def classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of the classifier head: the pretrained config's ``classifier`` names, else the
    module ``get_classifier()`` returns."""
    names = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    if not names and hasattr(model, "get_classifier"):
        head = timm_interface(model).get_classifier()
        names = tuple(n for n, m in model.named_modules() if m is head and n)
    return tuple(f"{n}." for n in names)


#: The state dicts a checkpoint may hold, in the order they are taken: an accord run's ``ema`` (kept with
#: ``ema: true``, the weights it selected and reported with), then the model's weights (timm's ``state_dict``, as
#: its ``--initial-checkpoint`` takes them; accord's ``model``), timm's EMA copy only in a file without others.
WEIGHT_KEYS = ("ema", "state_dict", "model", "state_dict_ema", "model_ema")


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in ``path`` and a phrase saying which one it is: a checkpoint's model weights
    (:data:`WEIGHT_KEYS`, timm's and accord's), else the file's own state dict."""
    if path.suffix == ".safetensors":
        return load_state_dict(str(path)), "its weights (safetensors)"
    with torch.serialization.safe_globals([argparse.Namespace]):  # timm's checkpoints store their args
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(ckpt, dict):
        held = [k for k in WEIGHT_KEYS if isinstance(ckpt.get(k), dict)]
        if held:
            others = f"; not {', '.join(repr(k) for k in held[1:])}" if held[1:] else ""
            return clean_state_dict(ckpt[held[0]]), f"its {held[0]!r} weights{others}"
    return clean_state_dict(ckpt), "its state dict"


def load_pretrained_file(model: nn.Module, path: str | Path, log: Callable[[str], None] | None = None) -> list[str]:
    """Load ``path`` into ``model``; returns the head keys left freshly initialised (classes differ). One line to
    ``log`` (default: stderr) says what was taken."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"pretrained_file {path}: no such file")
    try:
        state, taken = read_weights(path)
    except pickle.UnpicklingError:
        unsafe = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        raise PretrainedError(
            f"pretrained_file {path}: cannot read it safely: it pickles {unsafe}, which weights_only=True refuses "
            "(save the state dict alone)"
        ) from None
    except Exception as e:  # noqa: BLE001 - a torn file or a pickle that is not a checkpoint: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise PretrainedError(f"pretrained_file {path}: cannot read it ({type(e).__name__}: {first})") from None
    own = model.state_dict()
    head = classifier_prefixes(model)
    new_head = [k for k in own if k.startswith(head) and k in state and state[k].shape != own[k].shape]
    for k in new_head:
        del state[k]
    missing = [k for k in own if k not in state and k not in new_head]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [
            f"{what} {', '.join(keys[:SHOWN])}{' ...' if len(keys) > SHOWN else ''} ({len(keys)})"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("other shape", shapes))
            if keys
        ]
        raise PretrainedError(f"pretrained_file {path} does not match this model's architecture: {'; '.join(parts)}")
    with torch.no_grad():
        model.load_state_dict({k: state[k] for k in own if k not in new_head}, strict=False)
    fresh = f", a new {len(new_head)}-tensor head (the classes differ)" if new_head else ""
    (log or _stderr)(f"pretrained_file {path}: took {taken}{fresh}")
    return new_head


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
