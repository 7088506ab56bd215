"""Turn one image into V augmented views, and batch the views view-major.

The layout follows timm's AugMix split collate: a batch of ``B`` images with ``V`` views becomes one
tensor of ``V*B`` images in which rows ``[j*B, (j+1)*B)`` are view ``j``, so one forward pass sees
every view and ``logits.chunk(V)`` recovers them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset, get_worker_info
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from .policies import build_policy, geometry_transforms
from .tokens import parse_policy


class MultiViewTransform:
    """Apply ``shared`` once (e.g. one crop and flip for all views), then each view's own pipeline: view ``j`` is
    ``transforms[j]`` (a list of transforms, as torchvision's ``Compose.transforms``)."""

    def __init__(self, transforms: Sequence[Callable], shared: Callable | None = None) -> None:
        if not transforms:
            raise ValueError("at least one view transform is needed")
        self.transforms = list(transforms)
        self.shared = shared

    def __call__(self, image: Tensor) -> tuple[Tensor, ...]:
        if self.shared is not None:
            image = self.shared(image)
        return tuple(transform(image) for transform in self.transforms)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shared={self.shared!r}, transforms={self.transforms!r})"


def build_multiview_transform(policies: Sequence[str], info: DataInfo, same_crop: bool = False) -> MultiViewTransform:
    """One pipeline per policy; with ``same_crop`` every view shares view 1's crop and flip."""
    if not same_crop:
        return MultiViewTransform([build_policy(policy, info) for policy in policies])
    parsed = [parse_policy(policy, info.image_size) for policy in policies]
    if any(p.geometry != parsed[0].geometry for p in parsed):
        raise ValueError(f"same_crop needs every view to use the same crop/flip tokens, got {list(policies)}")
    shared = v2.Compose(geometry_transforms(parsed[0], info))
    return MultiViewTransform([build_policy(policy, info, geometry=False) for policy in policies], shared=shared)


def _image_and_label(item: Any, index: int) -> tuple[Any, Any]:
    """The ``(image, label)`` of a dataset item; a TypeError naming the item when it is anything else."""
    if isinstance(item, tuple | list) and len(item) == 2:
        return item[0], item[1]
    shape = f"a {len(item)}-tuple" if isinstance(item, tuple | list) else f"a {type(item).__name__}"
    raise TypeError(
        f"dataset item {index} is {shape}, not (image, label): views are made of (image, label) items; "
        "wrap the dataset so each item is one image and its label"
    )


class ViewDataset(Dataset):
    """Wrap an ``(image, label)`` dataset so each item is ``(views, label)``.

    Each sample's views are drawn from their own seed, inside :func:`torch.random.fork_rng`: the
    caller's random state (dropout, batched augmentation, the user's own code) is the same after
    indexing as before, whatever the number of loader workers.

    - ``seed=None`` (the default): fresh views at every draw, so every epoch of a plain loop sees new
      views with no call to make. The seed of a draw combines the loader worker's seed (new for every
      epoch's iterator) or a seed drawn from the OS at construction, a count of this process's draws,
      and the index.
    - ``seed=S``: views are a pure function of ``(S, epoch, index)``, the same for any number of workers
      or processes, so a resumed run repeats the views of an uninterrupted one. Call :meth:`set_epoch`
      before each epoch (before the loader's workers start), as accord's trainer does.
    """

    def __init__(self, dataset: Dataset, transform: Callable | None, seed: int | None = None) -> None:
        self.dataset = dataset
        self.transform: Callable | None = transform  # None until set (timm's create_loader assigns it)
        self.seed = seed
        self.epoch = 0
        self._fresh_base = int.from_bytes(os.urandom(8), "little") >> 1
        self._draws = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor | tuple[Tensor, ...], int]:
        if self.transform is None:
            raise RuntimeError(f"{type(self).__name__} has no view transforms: pass them or use timm's create_loader")
        image, label = _image_and_label(self.dataset[index], index)
        with torch.random.fork_rng(devices=[]):  # restores the CPU generator on exit
            torch.default_generator.manual_seed(self._sample_seed(index))  # the CPU generator only
            views = self.transform(image)
        return views, label

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[Tensor | tuple[Tensor, ...], int]]:
        """The items of a loader's batch: gathered at once when the transform draws nothing and can fetch the
        whole batch (``augment_on: device``'s uint8 images), else one by one."""
        fetch = getattr(self.transform, "fetch_batch", None)
        batch = fetch(self.dataset, indices) if fetch is not None else None
        return batch if batch is not None else [self[i] for i in indices]

    def _sample_seed(self, index: int) -> int:
        if self.seed is not None:
            return sample_seed(self.seed, self.epoch, index)
        worker = get_worker_info()
        self._draws += 1
        return sample_seed(worker.seed if worker is not None else self._fresh_base, self._draws, index)


_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """SplitMix64's step (Steele et al., 2014): a fixed bijection of 64-bit integers in which every input bit
    moves every output bit. Written out so that views do not depend on how a Python version hashes tuples."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for every (seed, epoch, index): each part (taken modulo 2**64) mixed in turn by SplitMix64,
    the same integers on every Python version and processor."""
    x = 0
    for part in (seed, epoch, index):
        x = _mix64(x ^ (part & _MASK64))
    return x & 0x7FFF_FFFF_FFFF_FFFF


def collate_views(batch: Sequence[tuple[Sequence[Tensor] | Tensor, int]]) -> tuple[Tensor, Tensor]:
    """``[(views, label)] * B`` -> images ``(V*B, C, H, W)`` view-major, labels ``(B,)``; ``views`` is one image, a
    sequence of views, or the views stacked in one ``(V, C, H, W)`` tensor."""
    first = batch[0][0]
    single = isinstance(first, Tensor) and first.dim() == 3
    num_views = 1 if single else len(first)
    if single:
        images = torch.stack([cast(Tensor, item[0]) for item in batch])  # every item one image, as the first
    else:
        images = torch.stack([item[0][j] for j in range(num_views) for item in batch])
    labels = torch.tensor([int(item[1]) for item in batch], dtype=torch.int64)
    return images, labels
