"""Tests for accord.data: the IDX reader, the seeded splits and the dataset loaders (tiny fake data only)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from accord.data import DATASETS, TensorImageDataset, build_splits, read_idx
from accord.data.idx import find_idx, load_idx_split

N_TRAIN, N_TEST, SIDE = 40, 6, 28

# torchvision.io (used here to write and re-read the PNGs) is deprecated, not removed, in torchvision 0.29.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")


def _idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file: magic 0x000008NN (NN = ndim), big-endian dims, raw bytes."""
    assert array.dtype == np.uint8
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _write(path: Path, payload: bytes) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def _fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, SIDE, SIDE), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def _write_fashion_mnist(root: Path, gz: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write the four Fashion-MNIST IDX files (tiny) into ``root``; return what was written."""
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    written = {}
    for split, prefix, n in (("train", "train", N_TRAIN), ("test", "t10k", N_TEST)):
        images, labels = _fake_split(n, seed=len(written))
        _write(root / f"{prefix}-images-idx3-ubyte{ext}", _idx_bytes(images))
        _write(root / f"{prefix}-labels-idx1-ubyte{ext}", _idx_bytes(labels))
        written[split] = (images, labels)
    return written


# ---------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_images_and_labels(tmp_path: Path, gz: bool) -> None:
    ext = ".gz" if gz else ""
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 255], dtype=np.uint8)
    img_path = _write(tmp_path / f"train-images-idx3-ubyte{ext}", _idx_bytes(images))
    lbl_path = _write(tmp_path / f"train-labels-idx1-ubyte{ext}", _idx_bytes(labels))
    if gz:  # really compressed on disk
        assert img_path.read_bytes()[:2] == b"\x1f\x8b"
        assert struct.unpack(">I", gzip.decompress(img_path.read_bytes())[:4])[0] == 0x00000803
    else:
        assert struct.unpack(">I", img_path.read_bytes()[:4])[0] == 0x00000803
        assert struct.unpack(">I", lbl_path.read_bytes()[:4])[0] == 0x00000801

    got = read_idx(img_path)
    assert got.dtype == np.uint8 and got.shape == (3, 4, 5)
    np.testing.assert_array_equal(got, images)
    got_labels = read_idx(lbl_path)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (3,)
    np.testing.assert_array_equal(got_labels, labels)


@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_split_shapes_and_dtypes(tmp_path: Path, gz: bool) -> None:
    written = _write_fashion_mnist(tmp_path, gz=gz)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = load_idx_split(tmp_path, split)
        assert images.dtype == torch.uint8 and images.shape == (n, 1, SIDE, SIDE)
        assert labels.dtype == torch.int64 and labels.shape == (n,)
        np.testing.assert_array_equal(images[:, 0].numpy(), written[split][0])
        np.testing.assert_array_equal(labels.numpy(), written[split][1].astype(np.int64))


def test_find_idx_prefers_gz_and_falls_back_to_plain(tmp_path: Path) -> None:
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(2, np.uint8)))
    assert find_idx(tmp_path, "train", "labels").name == "train-labels-idx1-ubyte"
    _write(tmp_path / "train-labels-idx1-ubyte.gz", _idx_bytes(np.zeros(2, np.uint8)))
    assert find_idx(tmp_path, "train", "labels").name == "train-labels-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        find_idx(tmp_path, "test", "images")


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_truncated_raises(tmp_path: Path, gz: bool) -> None:
    payload = _idx_bytes(np.ones((3, 4, 5), np.uint8))
    path = _write(tmp_path / ("t.idx.gz" if gz else "t.idx"), payload[:-7])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


def test_read_idx_trailing_bytes_raise(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.idx", _idx_bytes(np.ones((2, 3), np.uint8)) + b"\x00")
    with pytest.raises(ValueError):
        read_idx(path)


@pytest.mark.parametrize(
    "magic",
    [0x00000903, 0x01000803, 0x00000D03, 0x08030000],  # other type byte / nonzero lead / float / little-endian
)
def test_read_idx_wrong_magic_raises(tmp_path: Path, magic: int) -> None:
    body = _idx_bytes(np.ones((2, 2, 2), np.uint8))[4:]
    path = _write(tmp_path / "bad.idx", struct.pack(">I", magic) + body)
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        read_idx(path)


def test_read_idx_empty_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_idx(_write(tmp_path / "empty.idx", b""))


def test_load_idx_split_count_mismatch_raises(tmp_path: Path) -> None:
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match="3 train images but 4 labels"):
        load_idx_split(tmp_path, "train")


# ------------------------------------------------------------------------------------ TensorImageDataset


def test_tensor_image_dataset() -> None:
    images = torch.arange(2 * 1 * 2 * 2, dtype=torch.uint8).reshape(2, 1, 2, 2)
    ds = TensorImageDataset(images, torch.tensor([3, 4]))
    assert len(ds) == 2
    image, label = ds[1]
    assert torch.equal(image, images[1]) and label == 4 and isinstance(label, int)
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(images.float(), torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="uint8"):
        TensorImageDataset(images[:, 0], torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="targets"):
        TensorImageDataset(images, torch.tensor([3]))


# --------------------------------------------------------------------------------- build_splits: FMNIST


def _indices(subset: Subset) -> list[int]:
    return list(subset.indices)


@pytest.mark.parametrize("val_fraction", [0.1, 0.25, 0.33, 0.37])
def test_build_splits_fashion_mnist_val_split(tmp_path: Path, val_fraction: float) -> None:
    written = _write_fashion_mnist(tmp_path)
    splits = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=val_fraction, seed=3)
    train_idx, val_idx = _indices(splits.train), _indices(splits.val)
    assert len(val_idx) == round(N_TRAIN * val_fraction)
    assert len(train_idx) == N_TRAIN - len(val_idx)
    assert not set(train_idx) & set(val_idx)
    assert sorted(train_idx + val_idx) == list(range(N_TRAIN))
    # train and val both index the official training set; the test set is the t10k files.
    assert splits.train.dataset is splits.val.dataset
    assert len(splits.test) == N_TEST
    image, label = splits.val[0]
    assert image.dtype == torch.uint8 and image.shape == (1, SIDE, SIDE)
    np.testing.assert_array_equal(image[0].numpy(), written["train"][0][val_idx[0]])
    assert label == int(written["train"][1][val_idx[0]])
    test_image, _ = splits.test[N_TEST - 1]
    np.testing.assert_array_equal(test_image[0].numpy(), written["test"][0][N_TEST - 1])

    info = splits.info
    assert (info.name, info.num_classes, info.in_chans, info.image_size, info.fixed_size) == (
        "fashion_mnist",
        10,
        1,
        28,
        True,
    )
    assert len(info.mean) == len(info.std) == 1


def test_build_splits_seeding(tmp_path: Path) -> None:
    _write_fashion_mnist(tmp_path)
    a = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=0)
    b = build_splits("fashion_mnist", data_dir=str(tmp_path), val_fraction=0.25, seed=0)
    c = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=1)
    assert _indices(a.val) == _indices(b.val) and _indices(a.train) == _indices(b.train)
    assert _indices(a.val) != _indices(c.val)
    assert len(c.val) == len(a.val)


def test_build_splits_val_fraction_zero_and_invalid(tmp_path: Path) -> None:
    _write_fashion_mnist(tmp_path)
    splits = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.0)
    assert len(splits.val) == 0 and _indices(splits.train) == list(range(N_TRAIN))
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="val_fraction"):
            build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=bad)


def test_build_splits_train_subset(tmp_path: Path) -> None:
    _write_fashion_mnist(tmp_path)
    full = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=5)
    sub = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=5, train_subset=7)
    again = build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=5, train_subset=7)
    assert len(sub.train) == 7
    assert set(_indices(sub.train)) <= set(_indices(full.train))  # never takes validation images
    assert _indices(sub.val) == _indices(full.val)
    assert _indices(sub.train) == _indices(again.train)
    with pytest.raises(ValueError, match="train_subset 10000 is more than the 30 training images"):
        build_splits("fashion_mnist", data_dir=tmp_path, val_fraction=0.25, seed=5, train_subset=10_000)
    with pytest.raises(ValueError, match="train_subset"):
        build_splits("fashion_mnist", data_dir=tmp_path, train_subset=0)


def test_build_splits_fashion_mnist_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as excinfo:
        build_splits("fashion_mnist", data_dir=tmp_path)
    message = str(excinfo.value)
    assert "apt-get" in message and "--data-dir" in message
    assert "dataset-fashion-mnist" in message


def test_build_splits_fashion_mnist_missing_test_files(tmp_path: Path) -> None:
    _write_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        build_splits("fashion_mnist", data_dir=tmp_path)


def test_build_splits_small_dataset_rejects_other_image_size(tmp_path: Path) -> None:
    _write_fashion_mnist(tmp_path)
    assert build_splits("fashion_mnist", data_dir=tmp_path, image_size=28).info.image_size == 28
    with pytest.raises(ValueError, match="are not resized; got 32"):
        build_splits("fashion_mnist", data_dir=tmp_path, image_size=32)


def test_build_splits_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as excinfo:
        build_splits("mnist_fashion", data_dir=tmp_path)
    message = str(excinfo.value)
    assert "mnist_fashion" in message
    for name in DATASETS:
        assert name in message
    assert set(DATASETS) == {"fashion_mnist", "cifar10", "cifar100", "imagefolder", "hf_disk"}


# ------------------------------------------------------------------------------------------ imagefolder


def _write_png(path: Path, image: torch.Tensor) -> None:
    from torchvision.io import write_png

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image, str(path))


def _write_image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "emu")) -> None:
    g = torch.Generator().manual_seed(0)
    for split, per_class in (("train", 4), ("val", 2)):
        for c in classes:
            for i in range(per_class):
                channels = 1 if i == 0 else 3  # a grayscale PNG must come back as RGB too
                h, w = 20 + i, 24
                image = torch.randint(0, 256, (channels, h, w), dtype=torch.uint8, generator=g)
                _write_png(root / split / c / f"{i}.png", image)


def test_build_splits_imagefolder(tmp_path: Path) -> None:
    _write_image_folder(tmp_path)
    splits = build_splits("imagefolder", tmp_path, image_size=32, val_fraction=0.25, seed=0)
    info = splits.info
    assert info.num_classes == 3 and info.in_chans == 3 and info.image_size == 32 and not info.fixed_size
    assert len(info.mean) == len(info.std) == 3
    assert len(splits.train) + len(splits.val) == 12 and len(splits.val) == 3
    assert len(splits.test) == 6
    for ds in (splits.train, splits.val, splits.test):
        for i in range(len(ds)):
            image, label = ds[i]
            assert image.dtype == torch.uint8 and image.dim() == 3 and image.shape[0] == 3
            assert image.shape[2] == 24
            assert 0 <= label < 3
    # the grayscale file decodes to three equal channels, with its exact pixels
    from torchvision.io import decode_png, read_file

    original = decode_png(read_file(str(tmp_path / "val" / "dog" / "0.png")))
    index = splits.test.samples.index((str(tmp_path / "val" / "dog" / "0.png"), 1))
    image, label = splits.test[index]
    assert label == 1
    assert torch.equal(image, original.expand(3, -1, -1))
    assert build_splits("imagefolder", tmp_path).info.image_size == 224


def test_build_splits_imagefolder_missing_val(tmp_path: Path) -> None:
    _write_image_folder(tmp_path)
    for f in (tmp_path / "val").rglob("*.png"):
        f.unlink()
    for d in sorted((tmp_path / "val").iterdir()):
        d.rmdir()
    (tmp_path / "val").rmdir()
    with pytest.raises(FileNotFoundError) as excinfo:
        build_splits("imagefolder", tmp_path, image_size=32)
    assert str(tmp_path / "val") in str(excinfo.value)


def test_build_splits_imagefolder_class_mismatch_and_no_dir(tmp_path: Path) -> None:
    _write_image_folder(tmp_path)
    _write_png(tmp_path / "train" / "fox" / "0.png", torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="different class folders"):
        build_splits("imagefolder", tmp_path)
    with pytest.raises(ValueError, match="--data-dir"):
        build_splits("imagefolder", None)


# ----------------------------------------------------------------------------------------------- CIFAR


def _write_fake_cifar10(root: Path, per_batch: int = 3, n_test: int = 4) -> tuple[np.ndarray, list[int]]:
    """A torchvision-layout ``cifar-10-batches-py`` folder with tiny batches; returns the train data.

    The real files are Python 2 pickles whose byte-string keys torchvision reads back as ``str`` (it
    unpickles with ``encoding="latin1"`` and indexes ``entry["data"]``), so the fakes use ``str`` keys.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    all_data, all_labels = [], []
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=n)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f)
        if name != "test_batch":
            all_data.append(data)
            all_labels += labels
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch}, f)
    return np.concatenate(all_data), all_labels


def test_build_splits_cifar10_fake_files_are_refused(tmp_path: Path) -> None:
    """torchvision checks the md5 sums of the real CIFAR files: fakes read as 'not found'."""
    _write_fake_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="cifar10 not found under"):
        build_splits("cifar10", tmp_path)


def test_build_splits_cifar10_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With torchvision's md5 check bypassed, the fake batches load as uint8 NCHW tensors."""
    import torchvision.datasets.cifar as tv_cifar

    if not hasattr(tv_cifar, "check_integrity"):
        pytest.skip("torchvision.datasets.cifar no longer uses check_integrity; cannot bypass its md5 check")
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    data, labels = _write_fake_cifar10(tmp_path)
    splits = build_splits("cifar10", tmp_path, val_fraction=0.2, seed=0)
    info = splits.info
    facts = (info.name, info.num_classes, info.in_chans, info.image_size, info.fixed_size)
    assert facts == ("cifar10", 10, 3, 32, True)
    assert len(splits.train) + len(splits.val) == 15 and len(splits.val) == 3 and len(splits.test) == 4
    full = splits.train.dataset
    assert full.images.dtype == torch.uint8 and full.images.shape == (15, 3, 32, 32)
    assert full.images.is_contiguous()
    # CIFAR rows are 1024 R, then 1024 G, then 1024 B values in row-major order
    np.testing.assert_array_equal(full.images.numpy(), data.reshape(15, 3, 32, 32))
    assert full.targets.tolist() == labels


def test_build_splits_cifar_needs_data_dir() -> None:
    for name in ("cifar10", "cifar100"):
        with pytest.raises(ValueError, match="--data-dir"):
            build_splits(name, None)


def test_build_splits_cifar_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar100 not found under"):
        build_splits("cifar100", tmp_path)
