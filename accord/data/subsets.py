"""Class-balanced training subsets: ``k`` images of every class, drawn with a seed.

Tied-Augment's reduced CIFAR-10 keeps 400 images per class (4,000 in all), taken in the order of a
random permutation of the training set until every class has its share (ekurtulus/tied-augment,
``pytorch/supervised/datasets.py`` ``reduced_cifar``). :func:`class_balanced_indices` draws the same
kind of subset, seeded: for each class, a seeded permutation of its images, of which the first ``k``
are kept. (``build_splits``'s ``train_subset`` draws that many images at random regardless of class.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset, Subset

from ..errors import UserError


def training_subset(
    train: Dataset, train_idx: list[int], held_out: int, seed: int, size: int | None, per_class: int | None
) -> list[int]:
    """The training indices a run keeps of ``train_idx`` (the training split after ``held_out`` images went to
    validation): ``size`` of them drawn at random, or ``per_class`` of every class, seeded; all of them when
    both are None. A ``size`` larger than the split is refused (it would silently be the whole split)."""
    if size is not None:
        if size < 1:
            raise UserError(f"train_subset must be positive, got {size}")
        check_subset_size(size, len(train_idx), held_out)
        keep = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[:size]
        train_idx = sorted(train_idx[i] for i in keep.tolist())
    if per_class is not None:
        classes = getattr(train, "classes", None)
        train_idx = class_balanced_indices(dataset_targets(train), per_class, seed, train_idx, classes)
    return train_idx


def check_subset_size(train_subset: int, available: int, held_out: int) -> None:
    """Refuse a ``train_subset`` larger than the ``available`` training images (``held_out`` went to val)."""
    if train_subset > available:
        after = f" after the {held_out} held out for validation" if held_out else ""
        raise UserError(
            f"train_subset {train_subset} is more than the {available} training images{after}; "
            f"set at most {available}, or drop it to train on all of them"
        )


def dataset_targets(dataset: Dataset) -> list[int]:
    """The labels of ``dataset`` without loading images (``targets`` of the dataset or of a ``Subset``'s base)."""
    if isinstance(dataset, Subset):
        base = dataset_targets(dataset.dataset)
        return [base[i] for i in dataset.indices]
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"{type(dataset).__name__} has no `targets`; a class-balanced subset needs the labels")
    return [int(t) for t in targets]


def class_balanced_indices(
    targets: Sequence[int],
    per_class: int,
    seed: int,
    among: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
) -> list[int]:
    """``per_class`` indices of every class present in ``targets``, seeded; sorted.

    Args:
        targets: the label of every image of the dataset.
        per_class: images kept per class (``k``).
        seed: seed of the draw; one seed gives one subset.
        among: the candidate indices (e.g. the training split once a validation split is held out);
            all of ``targets`` by default.
        class_names: names for the error message (index -> name), e.g. an ImageFolder's ``classes``.

    Raises:
        ValueError: ``per_class`` is not positive, or is larger than the smallest class, which it names.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise UserError(f"train_subset_per_class must be a positive integer, got {per_class!r}")
    candidates = range(len(targets)) if among is None else among
    by_class: dict[int, list[int]] = {}
    for index in candidates:
        by_class.setdefault(int(targets[index]), []).append(index)
    if not by_class:
        raise UserError("no training images to draw a class-balanced subset from")
    smallest = min(sorted(by_class), key=lambda c: len(by_class[c]))
    if per_class > len(by_class[smallest]):
        name = class_names[smallest] if class_names is not None else smallest
        raise UserError(
            f"train_subset_per_class {per_class} is larger than class {name!r}, which has "
            f"{len(by_class[smallest])} training images (the smallest class)"
        )
    generator = torch.Generator().manual_seed(seed)
    keep: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        order = torch.randperm(len(members), generator=generator)[:per_class].tolist()
        keep.extend(members[i] for i in order)
    return sorted(keep)
