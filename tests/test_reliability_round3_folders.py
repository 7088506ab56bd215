"""Round three: an image folder with symlink loops, FIFOs or duplicate paths neither hangs nor miscounts."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import pytest

from accord.data import build_splits


class Hung(Exception):
    """Not an OSError, which os.walk would swallow."""


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (the old scan blocked forever on a FIFO and never ended on two loops)."""

    def expire(*_):
        raise Hung(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def folder(imagefolder_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(imagefolder_dir, root)
    return root


def test_a_symlink_loop_counts_each_image_once_and_leaks_nothing_into_val(folder):
    clean = build_splits("imagefolder", folder, val_fraction=0.25)
    (folder / "train" / "class0" / "again").symlink_to(".")
    with deadline(20):
        looped = build_splits("imagefolder", folder, val_fraction=0.25)
    assert len(looped.train) + len(looped.val) == len(clean.train) + len(clean.val) == 24
    train = {os.path.realpath(looped.train.dataset.samples[i][0]) for i in looped.train.indices}
    val = {os.path.realpath(looped.val.dataset.samples[i][0]) for i in looped.val.indices}
    assert not train & val


def test_two_symlink_loops_end_at_once(folder):
    (folder / "train" / "class1" / "a").symlink_to(".")
    (folder / "train" / "class1" / "b").symlink_to("..")
    with deadline(20):
        splits = build_splits("imagefolder", folder, val_fraction=0.25)
    assert len(splits.train) + len(splits.val) == 24


def test_a_fifo_named_like_an_image_is_skipped_without_opening_it(folder):
    os.mkfifo(folder / "train" / "class2" / "pipe.png")
    os.mkfifo(folder / "val" / "class2" / "pipe.png")
    with deadline(20):
        splits = build_splits("imagefolder", folder, val_fraction=0.25)
    assert len(splits.train) + len(splits.val) == 24 and len(splits.test) == 9
    assert not any("pipe.png" in path for path, _ in splits.skipped)
