"""Notes on a resolved config that its keys alone do not say: where it departs from the method's authors."""

from __future__ import annotations

from .schema import DEFAULTS, Config

#: What each BatchNorm mode runs, in a note's words.
BN_STEPS = {
    "concat": "one forward pass over all views, with shared BatchNorm statistics",
    "split": "one forward pass with an auxiliary BatchNorm per view (timm's split BatchNorm)",
    "separate": "one forward pass per view, each view with its own BatchNorm statistics",
}


def config_notes(cfg: Config) -> list[str]:
    """One line per departure of ``cfg`` from its method's authors that a user would not see in its keys: a
    method whose authors' BatchNorm step (``MethodSpec.bn``) is not accord's default, run with another."""
    from ..losses import method_spec  # deferred: the losses import torch

    spec = method_spec(cfg.method.method)
    notes = []
    if spec.bn != DEFAULTS["bn"] and cfg.model.bn != spec.bn:
        notes.append(
            f"bn: {cfg.model.bn} is not the {spec.label} authors' step: they run {BN_STEPS[spec.bn]}; "
            f"set bn: {spec.bn} for theirs"
        )
    return notes
