"""Notes on a resolved config that its keys alone do not say: where it departs from the method's authors."""

from __future__ import annotations

from .schema import Config

TIED_CONCAT = (
    "bn: {bn} is not the Tied-Augment authors' step: they run one forward pass per view, each view with its own"
    " BatchNorm statistics (ekurtulus/tied-augment pytorch/supervised/train.py#L20-L30); set bn: separate for theirs"
)


def config_notes(cfg: Config) -> list[str]:
    """One line per departure of ``cfg`` from its method's authors that a user would not see in its keys."""
    notes = []
    if cfg.method.method == "tied" and cfg.model.bn != "separate":
        notes.append(TIED_CONCAT.format(bn=cfg.model.bn))
    return notes
