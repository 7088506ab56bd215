"""The AgMax authors' released ImageNet checkpoints, by name; nothing here downloads anything.

From the README of roatienza/agmax (section "Test"): two AgMax and two baseline checkpoints, trained
with CutMix and AutoAugment for 270 epochs (``scripts/imagenet.sh``; the ResNet-50 files are evaluated
from a ``weights/best/270`` folder in ``scripts/crop.sh``). No sha256 is published for any of them. The
README writes the URL of three files; for the AgMax ResNet-50 it names the file only, so its URL here
is the release folder of the other three, marked as not stated by the authors.

A file is used through :func:`accord.export.import_agmax` (``accord import-agmax FILE --arch ARCH``),
which converts the authors' keys to timm's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

RELEASE = "https://github.com/roatienza/agmax/releases/download/agmax-0.1.0/"


@dataclass(frozen=True)
class ReleasedWeights:
    """One released checkpoint."""

    name: str  # accord's name for it
    filename: str  # the authors' file name
    arch: str  # timm architecture (the ``--arch`` of ``accord import-agmax``)
    config: str  # accord config it was trained as
    top1: float  # ImageNet val top-1 in the file name (best test epoch, as the authors report)
    hidden_units: int | None  # Q head width for AgMax files (``mlp-N`` in the name), None for baselines
    url_stated: bool  # whether the authors' README writes this URL
    sha256: str | None = None  # none is published

    @property
    def url(self) -> str:
        return RELEASE + self.filename


RELEASED: dict[str, ReleasedWeights] = {
    w.name: w
    for w in (
        ReleasedWeights(
            "agmax-resnet101-cutmix-auto_augment",
            "imagenet-agmax-mi-ResNet101-cutmix-auto_augment-81.19-mlp-4096.pth",
            "resnet101",
            "ResNet101-auto_augment-cutmix-agmax",
            81.19,
            4096,
            url_stated=True,
        ),
        ReleasedWeights(
            "agmax-resnet50-cutmix-auto_augment",
            "imagenet-agmax-ResNet50-cutmix-auto_augment-79.12-mlp-2048.pth",
            "resnet50",
            "ResNet50-auto_augment-cutmix-agmax",
            79.12,
            2048,
            url_stated=False,
        ),
        ReleasedWeights(
            "baseline-resnet101-cutmix-auto_augment",
            "imagenet-standard-ResNet101-cutmix-auto_augment-80.69.pth",
            "resnet101",
            "ResNet101-auto_augment-cutmix",
            80.69,
            None,
            url_stated=True,
        ),
        ReleasedWeights(
            "baseline-resnet50-cutmix-auto_augment",
            "imagenet-standard-ResNet50-cutmix-auto_augment-78.5.pth",
            "resnet50",
            "ResNet50-auto_augment-cutmix",
            78.5,
            None,
            url_stated=True,
        ),
    )
}


def released_weights(name: str) -> ReleasedWeights:
    """The entry called ``name``; one-line ValueError listing the valid names otherwise."""
    if name in RELEASED:
        return RELEASED[name]
    close = difflib.get_close_matches(str(name), list(RELEASED), n=1, cutoff=0.5)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UserError(f"unknown released weights {name!r}{hint}; valid: {', '.join(RELEASED)}")


def fetch_hint(weights: ReleasedWeights, folder: str | Path = ".") -> str:
    """One line saying where to get the file and where to put it."""
    where = Path(folder) / weights.filename
    source = (
        f"download {weights.url}"
        if weights.url_stated
        else f"the authors' README names the file but not its URL; it is likely {weights.url}"
    )
    return f"{weights.name}: {weights.filename} not found; {source} and save it as {where} (no sha256 is published)"


def find_local(name: str, folders: Iterable[str | Path] = (".",)) -> Path:
    """The local copy of ``name``'s file in the first of ``folders`` that has it.

    Raises FileNotFoundError with :func:`fetch_hint` (naming the first folder) when no folder has it.
    """
    weights = released_weights(name)
    paths = [Path(f) for f in folders] or [Path(".")]
    for folder in paths:
        path = folder / weights.filename
        if path.is_file():
            return path
    raise FileNotFoundError(fetch_hint(weights, paths[0]))


#: Where ``accord eval --weights NAME`` looks for the file, in order, unless ``--weights-dir`` is given.
WEIGHTS_DIRS = (Path.home() / ".cache" / "accord" / "weights", Path("."))


def import_released(name: str, out_dir: str | Path, folders: Iterable[str | Path] = WEIGHTS_DIRS) -> Path:
    """The local copy of ``name``'s file converted to an accord checkpoint in ``out_dir`` (for ``accord eval``).

    ValueError for an unknown name and FileNotFoundError (with the URL and where to save the file) for a
    missing file, both before anything is read or written.
    """
    from .export import import_agmax

    weights = released_weights(name)
    src = find_local(name, folders)
    out = Path(out_dir) / f"{weights.name}.pt"
    import_agmax(src, weights.arch, out)
    return out
