"""The data identity: what a run records of its data, and the check of other data against that record.

:func:`data_identity` is built once, where the splits are built (:func:`~.datasets.build_splits`), and a run
stores it under the key ``"data"`` of every checkpoint and of ``summary.json``:

- ``dataset``: the data set's name; ``class_names``: the class of every label, in label order (an image
  folder's class folders, sorted; Fashion-MNIST's and CIFAR's own names);
- ``sizes``: the images the run used of each split (``train`` after the validation hold-out and any subset);
- ``sources``: per source split (``train``, ``test``) the number of images, the images of each class and a
  fingerprint: a hash of the sorted (relative path, size) list of an image folder's files, or of the
  decoded images and labels of a built-in data set.

:func:`check_data` compares the data at hand with a record: classes that differ (renamed, missing, extra,
reordered, or a class whose images are gone) are refused in one line that names them, since the model's
outputs would be read as other classes; a different file list with the same classes is one warning line.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import UserError
from ..logs import logger
from .subsets import dataset_targets

#: The key of the record in a checkpoint and in ``summary.json``.
log = logger(__name__)
DATA_KEY = "data"

#: Fashion-MNIST's class names, in label order (Xiao et al., 2017; torchvision's ``FashionMNIST.classes``).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


class DataMismatchError(UserError):
    """The data at hand is not the data a run recorded: other classes, or classes in another order."""


def class_names(dataset: Dataset, known: Sequence[str] | None = None) -> list[str]:
    """The class of every label of ``dataset`` in label order: its ``classes``, else ``known`` (the names its
    data set's loader gave)."""
    names = getattr(dataset, "classes", None) or known
    if not names:
        raise TypeError(f"{type(dataset).__name__} names no classes")
    return [str(name) for name in names]


def data_identity(
    name: str, train: Dataset, test: Dataset, sizes: dict[str, int], known: Sequence[str] | None = None
) -> dict[str, Any]:
    """The record of a run's data (see the module docstring): ``train`` and ``test`` are the source splits
    as loaded (before any hold-out or subset), ``sizes`` the images of each split the run uses."""
    names = class_names(train, known)
    return {
        "dataset": name,
        "class_names": names,
        "sizes": dict(sizes),
        "sources": {split: _source(ds, len(names)) for split, ds in (("train", train), ("test", test))},
    }


def _source(dataset: Dataset, num_classes: int) -> dict[str, Any]:
    """Count, images per class and fingerprint of one source split."""
    targets = dataset_targets(dataset)
    per_class = [0] * num_classes
    for label in targets:
        if 0 <= label < num_classes:
            per_class[label] += 1
    return {"images": len(targets), "per_class": per_class, "fingerprint": fingerprint(dataset)}


def fingerprint(dataset: Dataset) -> str:
    """A hash of what ``dataset`` holds: an image folder's sorted (relative path, size) list, or a tensor
    data set's images and labels."""
    digest = hashlib.blake2b(digest_size=16)
    samples = getattr(dataset, "samples", None)
    if samples is not None:  # an image folder: its files, named relative to its root
        prefix = os.path.join(str(getattr(dataset, "root", "")), "")
        lines = sorted(f"{_relative(path, prefix)}\t{_size(path)}\n" for path, _ in samples)
        for line in lines:
            digest.update(line.encode("utf-8", "surrogateescape"))
        return digest.hexdigest()
    identity = getattr(dataset, "content_identity", None)
    if isinstance(identity, str):  # a data set that names its own content (a saved Hugging Face data set)
        digest.update(identity.encode())
        digest.update(str(list(getattr(dataset, "targets", []))).encode())
        return digest.hexdigest()
    images, targets = getattr(dataset, "images", None), getattr(dataset, "targets", None)
    if not isinstance(images, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(f"{type(dataset).__name__}: no files or tensors to fingerprint")
    digest.update(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().data)
    digest.update(targets.to(torch.int64).contiguous().numpy().data)
    return digest.hexdigest()


def _relative(path: str, prefix: str) -> str:
    """``path`` below the folder ``prefix`` (which ends with a separator), as the walk made it."""
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, prefix)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return -1


def class_difference(
    before: Sequence[str], after: Sequence[str], labels: tuple[str, str] = ("missing", "extra")
) -> str:
    """How the class list ``after`` differs from ``before``, in words ('' when equal): the classes only in
    ``before`` (``labels[0]``), only in ``after`` (``labels[1]``), or the same classes in another order."""
    if list(before) == list(after):
        return ""
    gone = [c for c in before if c not in set(after)]
    new = [c for c in after if c not in set(before)]
    if not gone and not new:
        moved = [c for i, c in enumerate(after) if i >= len(before) or before[i] != c]
        return f"the same classes in another order ({_names(moved)} moved)"
    parts = [f"{label} {_names(names)}" for label, names in zip(labels, (gone, new), strict=True) if names]
    return "; ".join(parts)


def _names(names: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(repr(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def check_data(recorded: Any, current: dict[str, Any], where: str, splits: Sequence[str] = ("train", "test")) -> None:
    """Refuse ``current`` (a :func:`data_identity`) unless its classes are those of ``recorded`` (a run's
    record; ``None`` for a run from before records were kept: nothing to check) and the classes with images
    in each of ``splits`` are the same; warn in one line on stderr when only their files differ. ``where``
    names what is checked (a checkpoint, a run folder)."""
    if not isinstance(recorded, dict) or not isinstance(recorded.get("class_names"), list):
        return
    then, now = recorded["class_names"], current["class_names"]
    diff = class_difference(then, now)
    if diff:
        raise DataMismatchError(
            f"{where}: trained on {len(then)} classes of {recorded.get('dataset')}, the data has {len(now)} classes "
            f"of {current['dataset']}: {diff}; its outputs would be read as other classes - use the data it trained on"
        )
    changed = []
    sources = recorded.get("sources")
    sources = sources if isinstance(sources, dict) else {}
    for split in splits:
        source, mine = sources.get(split), current["sources"].get(split)
        if not isinstance(source, dict) or mine is None:
            continue
        emptied = _emptied(then, source.get("per_class"), mine["per_class"])
        if emptied:
            raise DataMismatchError(
                f"{where}: the data's {split} split has classes that are not the run's: {emptied}; "
                "were classes merged or split? use the data it trained on"
            )
        if source.get("fingerprint") != mine["fingerprint"]:
            changed.append(f"{split} ({source.get('images')} images then, {mine['images']} now)")
    if changed:
        log.warning(
            "%s: the same classes, but other files than the run's in %s; its numbers are not comparable with the run's",
            where,
            ", ".join(changed),
        )


def _emptied(names: Sequence[str], before: Any, after: Sequence[int]) -> str:
    """The classes with images in one of ``before``/``after`` (per-class counts) and none in the other."""
    if not isinstance(before, list) or len(before) != len(after):
        return ""
    gone = [names[i] for i, (b, a) in enumerate(zip(before, after, strict=True)) if b and not a]
    new = [names[i] for i, (b, a) in enumerate(zip(before, after, strict=True)) if a and not b]
    parts = [f"{_names(gone)} had images and have none now"] if gone else []
    parts += [f"{_names(new)} had no images and have some now"] if new else []
    return "; ".join(parts)
