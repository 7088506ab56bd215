"""Hugging Face ``datasets`` saved on disk as a data set (``dataset: hf_disk``, ``data_dir``: the folder).

The folder is what ``DatasetDict.save_to_disk`` writes (``dataset_dict.json`` and one folder per split), or
parquet files named by split (``train-*.parquet``, ``test-*.parquet``, or ``train/``, ``test/`` folders of
them). The ``train`` split trains; ``test`` (else ``validation``) is the reported split. The images are the
first ``Image`` feature, the labels the first ``ClassLabel`` feature, whose names are the class names. Nothing
is downloaded. Needs the ``datasets`` package (``pip install accord[hf]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import UserError
from .datasets import _to_rgb
from .registry import Loaded

TEST_SPLITS = ("test", "validation")


class HFImageDataset(Dataset):
    """``(uint8 (3, H, W) image, label)`` items of a Hugging Face data set's image and label columns."""

    def __init__(self, split: Split, image_column: str, label_column: str, classes: list[str]) -> None:
        self.data, self.image_column, self.label_column = split.data, image_column, label_column
        self.classes = classes
        self.files = split.files  # what the check of a test split sharing training files compares
        data = split.data
        self.targets = [int(t) for t in data[label_column]]  # read once: class-balanced subsets count them
        #: what the run's data record hashes: the data set's own fingerprint of its content and history
        self.content_identity = f"{getattr(data, '_fingerprint', '')}:{len(data)}"

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row = self.data[int(index)]
        return pil_to_tensor(_to_rgb(row[self.image_column], f"{self.image_column}[{index}]")), int(
            row[self.label_column]
        )


def _datasets() -> Any:
    try:
        import datasets  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError("dataset hf_disk needs the datasets package: pip install accord[hf]") from None
    return datasets


class Split(NamedTuple):
    """One split of a saved data set and the files it was read from (its arrow files, or its parquet files)."""

    data: Any
    files: list[str]


def open_splits(data_dir: Path | None) -> dict[str, Split]:
    """The splits of a saved ``DatasetDict`` or of split-named parquet files under ``data_dir``."""
    if data_dir is None:
        raise UserError("hf_disk needs --data-dir: a folder written by DatasetDict.save_to_disk, or parquet files")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (--data-dir of a Hugging Face data set saved on disk)")
    datasets = _datasets()
    if (root / "dataset_dict.json").is_file():
        saved = datasets.load_from_disk(str(root))
        return {name: Split(data, [c["filename"] for c in data.cache_files]) for name, data in saved.items()}
    if (root / "state.json").is_file():
        raise UserError(f"{root}: one saved split; save a DatasetDict with train and test splits (save_to_disk)")
    splits: dict[str, Split] = {}
    for split in ("train", *TEST_SPLITS):
        files = sorted(
            {*root.glob(f"{split}-*.parquet"), *root.glob(f"{split}.parquet"), *root.glob(f"{split}/*.parquet")}
        )
        if files:
            paths = [str(f) for f in files]
            splits[split] = Split(datasets.Dataset.from_parquet(paths, keep_in_memory=True), paths)
    if not splits:
        raise FileNotFoundError(f"{root}: no dataset_dict.json (save_to_disk) and no train-*.parquet files")
    return splits


def columns(data: Any, where: str) -> tuple[str, str, list[str]]:
    """The image column, the label column and the class names of a split's features."""
    datasets = _datasets()
    images = [k for k, f in data.features.items() if isinstance(f, datasets.Image)]
    labels = [k for k, f in data.features.items() if isinstance(f, datasets.ClassLabel)]
    if not images or not labels:
        found = ", ".join(f"{k} ({type(f).__name__})" for k, f in data.features.items())
        raise UserError(f"{where}: needs an Image feature and a ClassLabel feature; has {found}")
    return images[0], labels[0], list(data.features[labels[0]].names)


def load_hf_disk(data_dir: Path | None, image_size: int | None = None) -> Loaded:
    """The train and test (else validation) splits of a Hugging Face data set saved on disk."""
    splits = open_splits(data_dir)
    test_name = next((s for s in TEST_SPLITS if s in splits), None)
    if "train" not in splits or test_name is None:
        raise UserError(f"{data_dir}: needs a train and a test (or validation) split; has {', '.join(splits)}")
    image, label, names = columns(splits["train"].data, f"{data_dir} (train)")
    if columns(splits[test_name].data, f"{data_dir} ({test_name})")[2] != names:
        raise UserError(f"{data_dir}: the train and {test_name} splits name different classes")
    train, test = (HFImageDataset(splits[s], image, label, names) for s in ("train", test_name))
    return Loaded(train, test, len(names), 3, names)


def hf_class_names(data_dir: Path | None) -> list[str] | None:
    """The class names of a saved data set's label feature (None if it cannot be opened)."""
    try:
        return columns(open_splits(data_dir)["train"].data, str(data_dir))[2]
    except (OSError, ValueError, ImportError, KeyError):
        return None
