"""Datasets: Fashion-MNIST (IDX files), CIFAR-10/100 (torchvision folders), class-per-folder images, Hugging Face
data sets saved on disk; more through :func:`~.registry.register`."""

from . import builtin  # noqa: F401  (registers the built-in data sets)
from .datasets import DATASETS, DataInfo, Splits, TensorImageDataset, build_splits, split_indices
from .idx import read_idx
from .registry import DatasetFacts, DatasetSpec, Loaded, dataset_names, dataset_spec, register

__all__ = [
    "DATASETS",
    "DataInfo",
    "DatasetFacts",
    "DatasetSpec",
    "Loaded",
    "Splits",
    "TensorImageDataset",
    "build_splits",
    "dataset_names",
    "dataset_spec",
    "read_idx",
    "register",
    "split_indices",
]
