"""What the splits of any data set must be before a run trains or evaluates on them.

- The test split holds no training file: a split folder that is a link to the other, or files shared by a
  hard link or a symlink, make the "test" images training images. Files are compared by (device, inode),
  which every path that leads to a file shares; for an image folder that is every image file, for a
  built-in data set the files its splits were read from.
- At least two classes: a classifier of one class scores 100% on anything.
- A built-in data set's images have its own size: Fashion-MNIST of 32-px images would train on 28-px
  crops and test on whole 32-px images; and a fixed-size data set is not resized (:func:`check_image_size`).
- ``val_source: folder`` selects on a data set's own validation folder, which only some have
  (:func:`check_val_source`).

The config's resolution and the data loading both call these; each check is made here only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, get_args

from torch.utils.data import Dataset

from ..errors import UserError
from .identity import class_names
from .registry import dataset_spec

#: What selects the model: a held-out ``split`` of the training set, or an image folder's ``val/`` folder.
ValSource = Literal["split", "folder"]
VAL_SOURCES: tuple[str, ...] = get_args(ValSource)


def check_val_source(dataset: str, val_source: str) -> None:
    """Refuse an unknown ``val_source``, and ``folder`` for a data set without a validation folder."""
    if val_source not in VAL_SOURCES:
        raise UserError(f"val_source: unknown {val_source!r}; valid: {', '.join(VAL_SOURCES)}")
    if val_source == "folder" and not dataset_spec(dataset).val_folder:
        raise UserError(f"val_source: folder selects on an image folder's val/; {dataset} has none (use split)")


def check_image_size(dataset: str, image_size: int | None) -> None:
    """Refuse an ``image_size`` other than a fixed-size data set's own (its images are never resized)."""
    facts = dataset_spec(dataset).facts
    if facts.fixed_size and image_size not in (None, facts.image_size):
        raise UserError(
            f"{dataset} images are {facts.image_size} px and are not resized; "
            f"got {image_size} (drop image_size or set it to {facts.image_size})"
        )


def source_paths(dataset: Dataset) -> list[str]:
    """The files ``dataset`` was read from: an image folder's images, a tensor data set's ``files``."""
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return [str(path) for path, _ in samples]
    return [str(path) for path in getattr(dataset, "files", ())]


def _keys(paths: Iterable[str]) -> dict[tuple[int, int], str]:
    keys: dict[tuple[int, int], str] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        keys.setdefault((st.st_dev, st.st_ino), path)
    return keys


def check_disjoint(train: Dataset, test: Dataset, test_name: str) -> None:
    """Refuse a ``test`` split that shares a file with ``train`` (by device and inode), naming one pair."""
    train_paths, test_paths = source_paths(train), source_paths(test)
    if not train_paths or not test_paths:
        return
    train_keys = _keys(train_paths)
    shared = [(path, train_keys[key]) for key, path in _keys(test_paths).items() if key in train_keys]
    if shared:
        path, same = shared[0]
        raise UserError(
            f"{test_name}: {len(shared)} of its {len(test_paths)} files are training files ({path} is {same}, "
            "through a link); the test images must not be training images - give it files of its own"
        )


def check_class_count(names: Sequence[str], where: str) -> None:
    """Refuse fewer than two classes, naming them."""
    if len(names) < 2:
        found = f"one class ({names[0]!r})" if names else "no class"
        raise UserError(f"{where}: {found}; a classifier needs at least 2 classes")


def check_image_side(dataset: Dataset, name: str, side: int) -> None:
    """Refuse a built-in data set whose images (a ``(N, C, H, W)`` ``images`` tensor) are not ``side`` px."""
    images = getattr(dataset, "images", None)
    if images is None or tuple(images.shape[-2:]) == (side, side):
        return
    files = source_paths(dataset)
    where = files[0] if files else name
    height, width = images.shape[-2:]
    raise UserError(
        f"{where}: {name} images are {side}x{side} px, these are {width}x{height}; "
        f"put images of other sizes in an image folder (dataset: imagefolder)"
    )


def check_sources(
    name: str,
    data_dir: Path | None,
    train: Dataset,
    test: Dataset,
    side: int | None,
    known: Sequence[str] | None = None,
) -> None:
    """Every check above on the source splits of ``name`` (``side``: the images' size, for a built-in set)."""
    root = data_dir if name == "imagefolder" else None
    check_class_count(class_names(train, known), str(root / "train") if root else name)
    check_disjoint(train, test, str(root / "val") if root else f"{name} test split")
    if side is not None:
        for split in (train, test):
            check_image_side(split, name, side)
