"""Shared fixtures: tiny generated datasets in accord's supported formats (nothing is downloaded)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    """Every test runs torch on one intra-op thread: the tests' tensors are tiny, so more threads only contend (on
    a 2-core machine one thread ran the training-option tests 5x faster). ``ACCORD_TEST_THREADS=N`` sets another
    count. Processes the tests start (``accord train``, torchrun) keep torch's own default."""
    import os

    threads = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("ACCORD_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(threads)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (the Fashion-MNIST format)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def class_images(labels: np.ndarray, size: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """Learnable toy images: class k is a stripe texture (period 2 + k // 2, horizontal or vertical) plus
    noise, so crops and flips keep the class."""
    n = len(labels)
    images = rng.integers(0, 50, size=(n, channels, size, size))
    coords = np.arange(size)
    for i, label in enumerate(labels):
        period, vertical = 2 + int(label) // 2 % 5, int(label) % 2
        stripes = (coords % period) < (period + 1) // 2
        mask = stripes[None, :] if vertical else stripes[:, None]
        images[i, :, np.broadcast_to(mask, (size, size))] += 180
    return images.astype(np.uint8)


@pytest.fixture(scope="session")
def fmnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Fashion-MNIST-format folder: 400 train and 100 test 28x28 images of 10 classes."""
    root = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for split, n in (("train", 400), ("t10k", 100)):
        labels = np.arange(n) % 10
        write_idx(root / f"{split}-images-idx3-ubyte.gz", class_images(labels, 28, 1, rng)[:, 0])
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture(scope="session")
def imagefolder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ImageNet-layout folder: train/ and val/ with 3 classes of small PNGs."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(1)
    for split, n in (("train", 8), ("val", 3)):
        labels = np.repeat(np.arange(3), n)
        for i, (image, label) in enumerate(zip(class_images(labels, 40, 3, rng), labels, strict=True)):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    return root


@pytest.fixture
def cifar_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torchvision-format CIFAR-10/100 folder with a few images (md5 checks patched out)."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    rng = np.random.default_rng(2)
    for folder, files, key, classes in (
        ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], "labels", 10),
        ("cifar-100-python", ["train", "test"], "fine_labels", 100),
    ):
        (tmp_path / folder).mkdir()
        for name in files:
            labels = np.arange(20) % classes
            data = class_images(labels, 32, 3, rng).reshape(20, -1)
            (tmp_path / folder / name).write_bytes(pickle.dumps({"data": data, key: labels.tolist()}))
        meta_name, meta_key = ("batches.meta", "label_names") if classes == 10 else ("meta", "fine_label_names")
        (tmp_path / folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"c{i}" for i in range(classes)]}))
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add overhead (and stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def train_one_step():
    """Run one real training step of a built run (``accord.engine.build_run``) and return its stats."""
    from itertools import islice

    from torch.utils.data import DataLoader

    from accord.engine import EpochSetup, train_one_epoch
    from accord.engine.optim import create_optimizer
    from accord.losses import method_spec
    from accord.step import build_step
    from accord.views import collate_views

    def step(run, cfg, batch_size: int, mixer=None) -> dict:
        loader = DataLoader(run.train_set, batch_size=batch_size, shuffle=True, collate_fn=collate_views)
        optimizer = create_optimizer([*run.model.parameters(), *run.criterion.parameters()], cfg.optim)
        setup = EpochSetup(torch.device("cpu"), mixer=mixer, log_interval=1)
        train_step = build_step(run.model, run.criterion, method_spec(cfg.method.method))
        return train_one_epoch(train_step, islice(loader, 1), optimizer, setup)

    return step


@pytest.fixture(scope="session")
def tiny_run(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the tiny config (``tiny_runs.tiny_config``, one thread), trained once for the session.
    Read only: a test that changes a run copies this one first."""
    from tiny_runs import QUIET, tiny_config

    from accord.engine import fit

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit(tiny_config(fmnist_dir), out, log=QUIET)
    finally:
        torch.set_num_threads(threads)
    return out
