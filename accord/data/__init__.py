"""Datasets: Fashion-MNIST (IDX files), CIFAR-10/100 (torchvision folders), class-per-folder images."""

from .datasets import DATASETS, DataInfo, Splits, TensorImageDataset, build_splits, split_indices
from .idx import read_idx

__all__ = ["DATASETS", "DataInfo", "Splits", "TensorImageDataset", "build_splits", "read_idx", "split_indices"]
