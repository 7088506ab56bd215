"""Image classification datasets as uint8 CHW tensors, and the seeded train/val/test split.

Every dataset here returns ``(image, label)`` with ``image`` a ``uint8`` tensor ``(C, H, W)``; the
augmentation pipelines of :mod:`accord.views` take it from there.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, is_image_file
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import UserError
from ..logs import logger
from .bounds import eval_resize_side, pixel_excess
from .checks import ValSource, check_image_size, check_sources, check_val_source
from .files import directory_keys, escape_path, regular_files
from .identity import class_difference, data_identity
from .registry import DATASET_FACTS, DatasetFacts, Loaded, dataset_spec
from .subsets import training_subset

log = logger(__name__)

__all__ = ["DATASETS", "DATASET_FACTS", "DataInfo", "DatasetFacts", "Loaded", "Splits", "ValSource", "build_splits"]

#: The built-in data sets (:mod:`.builtin`); :func:`~.registry.dataset_names` lists every registered one.
DATASETS: tuple[str, ...] = ("fashion_mnist", "cifar10", "cifar100", "imagefolder", "hf_disk")


@dataclass(frozen=True)
class DataInfo:
    """What the model and the augmentation pipelines need to know about a dataset."""

    name: str
    num_classes: int
    in_chans: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fixed_size: bool  # fixed-size images (every one image_size px): batched on the device whole, no eval resize at 1.0
    crop_pct: float | None = None  # evaluation crop (timm's); None: 1.0 if fixed_size, else 0.875
    interpolation: str = "bilinear"  # resize interpolation at evaluation: bilinear, bicubic or nearest
    train_crop: str | None = None  # the crop token: pad (RandomCrop, padding 4) or resized; None: pad if fixed_size
    autoaugment: str | None = None  # a bare autoaug token's policy; None: cifar10 if fixed_size, else imagenet

    def __post_init__(self) -> None:
        if self.train_crop is None:
            object.__setattr__(self, "train_crop", "pad" if self.fixed_size else "resized")
        if self.autoaugment is None:
            object.__setattr__(self, "autoaugment", "cifar10" if self.fixed_size else "imagenet")


class TensorImageDataset(Dataset):
    """A dataset held in memory as a uint8 ``(N, C, H, W)`` tensor and int64 labels; ``classes`` names the
    labels, ``files`` are the files it was read from."""

    def __init__(
        self, images: torch.Tensor, targets: torch.Tensor, classes: Sequence[str] = (), files: Sequence[Path] = ()
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images, self.targets, self.classes, self.files = images, targets, list(classes), list(files)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset
    info: DataInfo
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unreadable images dropped up front
    identity: dict[str, Any] = field(default_factory=dict)  # what a run records of its data (.identity)
    class_names: list[str] | None = None  # label order, where the loader's files name the classes


class UnreadableImageError(OSError):
    """An image file that cannot be decoded (corrupt, truncated, empty, not an image)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: unreadable image ({reason})")
        self.path, self.reason = path, reason


#: Image-folder splits with at most this many files are decoded once up front and their unreadable files
#: dropped (an exact count, found before training); larger ones are checked lazily as they are loaded.
SCAN_LIMIT = 10_000


def decode_rgb(path: str, resize_side: int | None = None) -> torch.Tensor:
    """Read an image file as a uint8 RGB ``(3, H, W)`` tensor; :class:`UnreadableImageError` if it cannot, or if
    it has more pixels, or would make more, than :mod:`.bounds` allows (the header is read, the pixels are not
    decoded)."""
    try:
        with warnings.catch_warnings():  # the size check below replaces PIL's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            if too_large := pixel_excess(*image.size, resize_side):
                raise UnreadableImageError(str(path), too_large)
            return pil_to_tensor(_to_rgb(image, str(path)))
    except UnreadableImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        reason = str(e).replace(str(path), "").strip(" '\"") or type(e).__name__
        raise UnreadableImageError(str(path), reason) from None


def _to_rgb(image: Image.Image, path: str) -> Image.Image:
    """``image`` as 8-bit RGB. PIL's ``convert`` clips 16-bit grey (``I;16``) to 255 instead of scaling it
    (0-20000 becomes a mean of 252), so those are scaled here to 8 bits (the high byte); 32-bit integer or
    float pixels have no known range and are refused as unreadable."""
    if image.mode.startswith("I;16"):
        grey = (np.asarray(image).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("I", "F"):
        raise UnreadableImageError(path, f"32-bit {'integer' if image.mode == 'I' else 'float'} pixels (mode "
                                   f"{image.mode}) have no known range; save it with 8 or 16 bits")  # fmt: skip
    return image.convert("RGB")


class CheckedImageFolder(ImageFolder):
    """torchvision's ``ImageFolder`` that skips unreadable images instead of failing inside a worker.

    :meth:`scan` decodes every file once and drops the unreadable ones (kept in :attr:`skipped`). An
    unreadable file met later (a folder too large to scan, or a file damaged during the run) is reported
    on stderr (once per process: the main one or a loader worker) and appended to :attr:`report` (a file
    every worker appends to), and the next readable image *of the same split* (see :meth:`link_splits`),
    with its own label, is returned in its place.
    """

    samples: list[tuple[str, int]]  # ImageFolder's (path, class index) pairs

    def __init__(self, root: str, resize_side: int | None = None) -> None:
        """``resize_side``: the short side the evaluation resize gives each image (:func:`.bounds.pixel_excess`)."""
        self.resize_side = resize_side
        super().__init__(root, loader=self.decode)  # calls make_dataset below
        self.skipped: list[tuple[str, str]] = []
        self.report: Path | None = None
        self._successor: list[int] | None = None
        self._seen: set[str] = set()

    @staticmethod
    def make_dataset(
        directory: str | Path,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        """torchvision's samples, found by :func:`~.files.regular_files`: no loops, no FIFOs, no duplicates."""
        keep = is_valid_file or (lambda path: is_image_file(path))
        seen = directory_keys(str(directory), *(os.path.join(directory, name) for name in class_to_idx))
        samples = [
            (path, index)
            for name, index in sorted(class_to_idx.items())
            for path in regular_files(os.path.join(directory, name), keep, seen)
        ]
        if not allow_empty and {i for _, i in samples} != set(class_to_idx.values()):
            raise FileNotFoundError(f"{directory}: a class folder without image files")  # explained by _open_split
        return samples

    def decode(self, path: str) -> torch.Tensor:
        """The image at ``path``, within the bound on what the pipelines make of it."""
        return decode_rgb(path, self.resize_side)

    def scan(self) -> list[tuple[str, str]]:
        """Decode every file; drop the unreadable ones from the samples. Returns ``(path, reason)`` pairs."""
        good, bad = [], []
        for path, target in self.samples:
            try:
                self.decode(path)
                good.append((path, target))
            except UnreadableImageError as e:
                bad.append((path, e.reason))
        self.samples = self.imgs = good
        self.targets = [t for _, t in good]
        self.skipped += bad
        return bad

    def link_splits(self, groups: list[list[int]]) -> None:
        """Replace an unreadable image only by one of the same group (train or val): no leak across splits."""
        n = len(self.samples)
        successor = [(i + 1) % n for i in range(n)]
        for group in groups:
            for i, index in enumerate(group):
                successor[index] = group[(i + 1) % len(group)]
        self._successor = successor

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        i = index
        for _ in range(len(self.samples)):
            path, target = self.samples[i]
            try:
                image = self.decode(path)
            except UnreadableImageError as e:
                self._report_unreadable(e)
                i = self._successor[i] if self._successor else (i + 1) % len(self.samples)
                continue
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return image, target
        raise UnreadableImageError(self.root, "no readable image left in this split")

    def _report_unreadable(self, error: UnreadableImageError) -> None:
        if error.path in self._seen:
            return
        self._seen.add(error.path)
        log.warning("skipping %s", error)
        if self.report is None:
            return
        line = f"{escape_path(error.path)}\t{escape_path(error.reason)}\n".encode()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK  # never a link, never waits
        try:
            fd = os.open(self.report, flags, 0o644)
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.write(fd, line)  # one short O_APPEND write: whole lines even from many workers
            finally:
                os.close(fd)
        except OSError:
            pass  # the warning above was printed; losing the report line must not stop the run


def _open_split(path: Path, resize_side: int | None = None) -> CheckedImageFolder:
    """Open one split of an image folder; a missing or empty class folder is one clear line."""
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: missing (an image folder needs train/ and val/)")
    try:
        dataset = CheckedImageFolder(str(path), resize_side)
    except FileNotFoundError:  # torchvision: no class folder, or a class folder without image files
        raise FileNotFoundError(_explain_no_files(path)) from None
    if len(dataset.samples) <= SCAN_LIMIT:
        dataset.scan()
        if not dataset.samples:
            raise FileNotFoundError(f"{path}: no readable images ({len(dataset.skipped)} unreadable files)")
        _check_every_class_has_images(path, dataset)
    return dataset


def _check_every_class_has_images(path: Path, dataset: CheckedImageFolder) -> None:
    """A class folder whose images are all unreadable would stay a class without images: refuse it."""
    present = set(dataset.targets)
    empty = [name for name, index in dataset.class_to_idx.items() if index not in present]
    if empty:
        folder = path / empty[0]
        bad = [(p, r) for p, r in dataset.skipped if Path(p).parent == folder]
        first = f": {bad[0][0]} ({bad[0][1]})" if bad else ""
        more = f" (and {len(empty) - 1} more class folders like it)" if len(empty) > 1 else ""
        raise FileNotFoundError(
            f"{folder}: no readable images, {len(bad)} unreadable{first}{more}; add readable images or remove it"
        )


def _explain_no_files(path: Path) -> str:
    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes:
        return f"{path}: no class folders (expected {path}/<class>/<image files>)"
    empty = [c for c in classes if next(regular_files(str(c), is_image_file, directory_keys(str(c))), None) is None]
    names = ", ".join(str(c) for c in empty) or str(path)
    return f"{names}: empty class folder (no {'/'.join(IMG_EXTENSIONS)} files); add images or remove it"


def image_folder(data_dir: Path | None, image_size: int | None = None) -> Loaded:
    if data_dir is None:
        raise UserError("imagefolder needs --data-dir: a folder with train/ and val/ class-per-folder trees")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (--data-dir of an image folder: train/ and val/ inside)")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise FileNotFoundError(f"{root / split}: missing (an image folder needs train/ and val/)")
    side = eval_resize_side(image_size or DATASET_FACTS["imagefolder"].image_size)
    train, test = (_open_split(root / s, side) for s in ("train", "val"))
    if train.classes != test.classes:
        diff = class_difference(train.classes, test.classes, ("only in train/:", "only in val/:"))
        raise UserError(f"{root}: train/ and val/ have different class folders: {diff}")
    return Loaded(train, test, len(train.classes), 3, train.classes)


def image_folders(dataset: Dataset) -> list[CheckedImageFolder]:
    """The :class:`CheckedImageFolder` under ``dataset`` (through ``.dataset`` wrappers), if any."""
    inner: object = dataset
    while not isinstance(inner, CheckedImageFolder):
        inner = getattr(inner, "dataset", None)
        if inner is None:
            return []
    return [inner]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of ``range(n)`` into (train, val) index lists."""
    if not 0.0 <= val_fraction < 1.0:
        raise UserError(f"val_fraction must be in [0, 1), got {val_fraction}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = int(round(n * val_fraction))
    return sorted(order[n_val:]), sorted(order[:n_val])


def build_splits(
    name: str,
    data_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    train_subset: int | None = None,
    seed: int = 0,
    image_size: int | None = None,
    train_subset_per_class: int | None = None,
    val_source: ValSource = "split",
    crop_pct: float | None = None,
) -> Splits:
    """Load ``name`` and hold out a seeded validation split from its training set.

    The validation split selects models; the test set (the official test or ``val/`` split) is only
    reported. With ``val_source="folder"`` (image folders only) nothing is held out: ``val/`` selects the model,
    as timm's ``train.py`` does, and is the reported test set too, so that number is no longer held out.
    ``train_subset`` keeps that many training images (seeded), for small-budget runs;
    ``train_subset_per_class`` that many of every class (:func:`~.subsets.class_balanced_indices`).
    ``crop_pct``: the evaluation crop (``None``: the data set's), which bounds the images an image folder decodes.
    """
    data_dir = Path(data_dir) if data_dir else None
    spec = dataset_spec(name)
    facts = spec.facts
    check_image_size(name, image_size)
    check_val_source(name, val_source)
    train, test, num_classes, in_chans, class_names = spec.loader(data_dir, image_size)
    if class_names is None:  # the loader's files name no classes: the spec's names, else class_<i>
        known = spec.class_names(data_dir) if spec.class_names is not None else None
        class_names = known or [f"class_{i}" for i in range(num_classes)]
    info = DataInfo(
        name, num_classes, in_chans, image_size or facts.image_size, facts.mean, facts.std, facts.fixed_size,
        facts.crop_pct, train_crop=facts.train_crop, autoaugment=facts.autoaugment,
    )  # fmt: skip
    check_sources(name, data_dir, train, test, info.image_size if info.fixed_size else None, class_names)
    n_train = len(cast(Sized, train))  # every built-in data set has a length; torch's Dataset does not declare it
    train_idx, val_idx = split_indices(n_train, 0.0 if val_source == "folder" else val_fraction, seed)
    train_idx = training_subset(train, train_idx, len(val_idx), seed + 1, train_subset, train_subset_per_class)
    skipped = []
    if isinstance(train, CheckedImageFolder) and isinstance(test, CheckedImageFolder):
        train.resize_side = test.resize_side = eval_resize_side(info.image_size, crop_pct or facts.crop_pct)
        train.link_splits([train_idx, val_idx])
        skipped = train.skipped + test.skipped
    val = test if val_source == "folder" else Subset(train, val_idx)
    sizes = {"train": len(train_idx), "val": len(cast(Sized, val)), "test": len(cast(Sized, test))}
    names = [str(c) for c in class_names]
    identity = data_identity(name, train, test, sizes, names)
    return Splits(Subset(train, train_idx), val, test, info, skipped, identity, names)
