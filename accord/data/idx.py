"""Read Fashion-MNIST / MNIST images and labels from IDX files (optionally gzipped).

torchvision's ``FashionMNIST`` insists on its own ``raw/`` folder of unpacked files; Debian's
``dataset-fashion-mnist`` ships the gzipped IDX files, so this 30-line reader takes them as they are.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path: Path) -> np.ndarray:
    """Decode one IDX file (magic 0x00000800 | ndim for unsigned bytes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:  # truncated or corrupt gzip (BadGzipFile is an OSError)
        reason = str(e).strip() or type(e).__name__
        raise UserError(f"{path}: cannot read ({reason}); the file is truncated or corrupt") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise UserError(f"{path}: truncated IDX file ({array.size} bytes for shape {shape})")
    return array.reshape(shape)


def find_idx(data_dir: Path, split: str, kind: str) -> Path:
    """Locate ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` in ``data_dir``."""
    stem = f"{_PREFIX[split]}-{'images-idx3' if kind == 'images' else 'labels-idx1'}-ubyte"
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def idx_files(data_dir: Path, split: str) -> list[Path]:
    """The images and labels files of ``split``."""
    return [find_idx(data_dir, split, kind) for kind in ("images", "labels")]


def load_idx_split(data_dir: Path, split: str, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as a uint8 ``(N, 1, H, W)`` tensor and labels as int64 ``(N,)``; with ``num_classes``, a
    label outside ``0 .. num_classes - 1`` is a :class:`ValueError` naming the file."""
    images = read_idx(find_idx(data_dir, split, "images"))
    labels_path = find_idx(data_dir, split, "labels")
    labels = read_idx(labels_path)
    if len(images) != len(labels):
        raise UserError(f"{data_dir}: {len(images)} {split} images but {len(labels)} labels")
    if num_classes is not None:
        check_labels(labels, num_classes, str(labels_path))
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def check_labels(labels: np.ndarray, num_classes: int, source: str) -> None:
    """Refuse a label outside ``0 .. num_classes - 1``, naming ``source``, the label and its index."""
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(bad):
        i = int(bad[0])
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(
            f"{source}: label {int(labels[i])} at index {i}{more} is outside the {num_classes} classes "
            f"(0-{num_classes - 1})"
        )
