"""accord's built-in data sets, registered in :mod:`.registry`: Fashion-MNIST, CIFAR-10/100, image folders, and
Hugging Face ``datasets`` saved on disk (:mod:`.hf_disk`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision.datasets import CIFAR10, CIFAR100

from ..errors import UserError
from .datasets import TensorImageDataset, image_folder
from .hf_disk import hf_class_names, load_hf_disk
from .identity import FASHION_MNIST_CLASSES
from .idx import DEBIAN_FASHION_MNIST, check_labels, idx_files, load_idx_split
from .registry import DatasetFacts, DatasetSpec, Loaded, register

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

#: 28-32 px data sets as the AgMax and Tied-Augment authors train them: pad-4 random crops, the CIFAR-10
#: AutoAugment policy, MixUp alpha 1.0 and CutMix on half the batches, evaluated whole (crop_pct 1.0).
SMALL_IMAGES = {"fixed_size": True, "train_crop": "pad", "autoaugment": "cifar10", "crop_pct": 1.0,
                "mixup_alpha": 1.0, "cutmix_prob": 0.5}  # fmt: skip
#: Photos of any size (ImageNet's recipe): RandomResizedCrop, ImageNet statistics and AutoAugment policy,
#: MixUp alpha 0.2, timm's evaluation crop 0.875.
LARGE_IMAGES = {"fixed_size": False, "train_crop": "resized", "autoaugment": "imagenet", "crop_pct": 0.875,
                "mixup_alpha": 0.2, "cutmix_prob": 1.0}  # fmt: skip


def fashion_mnist(data_dir: Path | None, image_size: int | None = None) -> Loaded:
    """Fashion-MNIST's idx files in ``data_dir`` (default: Debian's ``dataset-fashion-mnist``)."""
    root = Path(data_dir) if data_dir else DEBIAN_FASHION_MNIST
    try:
        train, test = (
            TensorImageDataset(*load_idx_split(root, s, 10), FASHION_MNIST_CLASSES, idx_files(root, s))
            for s in ("train", "test")
        )
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"Fashion-MNIST not found ({e}). Run `bash scripts/setup.sh` (as root it installs Debian's "
            "dataset-fashion-mnist), or on Debian/Ubuntu `apt-get install dataset-fashion-mnist`; "
            "or pass --data-dir pointing at a folder with the four idx files "
            "(torchvision.datasets.FashionMNIST(root, download=True) fetches them where a network exists)."
        ) from None
    return Loaded(train, test, 10, 1)


def cifar(name: str, data_dir: Path | None) -> Loaded:
    """CIFAR-10 or CIFAR-100 (``name``) from torchvision's ``cifar-*-python`` files in ``data_dir``."""
    if data_dir is None:
        raise UserError(f"{name} needs --data-dir: the folder that holds torchvision's cifar-*-python files")
    cls, classes = (CIFAR10, 10) if name == "cifar10" else (CIFAR100, 100)
    try:
        splits = [cls(str(data_dir), train=t, download=False) for t in (True, False)]
    except RuntimeError as e:
        raise FileNotFoundError(f"{name} not found under {data_dir} ({e})") from None
    for split, s in zip(("train", "test"), splits, strict=True):
        check_labels(np.asarray(s.targets), classes, f"{data_dir} ({name} {split} split)")
    train, test = (
        TensorImageDataset(
            torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(s.targets), s.classes,
            [data_dir / s.base_folder / file for file, _ in (s.train_list if s.train else s.test_list)],
        )
        for s in splits
    )  # fmt: skip
    return Loaded(train, test, classes, 3, splits[0].classes)


def _train_folders(data_dir: Path | None) -> list[str] | None:
    """An image folder's class names (its ``train/`` class folders, sorted as torchvision's ``ImageFolder``)."""
    try:
        return sorted(p.name for p in (Path(data_dir) / "train").iterdir() if p.is_dir()) if data_dir else None
    except OSError:
        return None


register(
    DatasetSpec(
        "fashion_mnist",
        fashion_mnist,
        DatasetFacts((0.2860,), (0.3530,), 28, **SMALL_IMAGES),  # type: ignore[arg-type]
        class_names=lambda _: FASHION_MNIST_CLASSES,
        label="FashionMNIST",
    )
)
register(
    DatasetSpec(
        "cifar10",
        lambda data_dir, _: cifar("cifar10", data_dir),
        DatasetFacts((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 32, **SMALL_IMAGES),  # type: ignore[arg-type]
        class_names=lambda _: CIFAR10_CLASSES,
        label="CIFAR10",
    )
)
register(
    DatasetSpec(
        "cifar100",
        lambda data_dir, _: cifar("cifar100", data_dir),
        DatasetFacts((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 32, **SMALL_IMAGES),  # type: ignore[arg-type]
        label="CIFAR100",
    )
)
register(
    DatasetSpec(
        "imagefolder",
        image_folder,
        DatasetFacts(IMAGENET_MEAN, IMAGENET_STD, 224, **LARGE_IMAGES),  # type: ignore[arg-type]
        class_names=_train_folders,
        val_folder=True,
        label="ImageFolder",
    )
)
register(
    DatasetSpec(
        "hf_disk",
        load_hf_disk,
        DatasetFacts(IMAGENET_MEAN, IMAGENET_STD, 224, **LARGE_IMAGES),  # type: ignore[arg-type]
        class_names=hf_class_names,
        label="HF",
    )
)
