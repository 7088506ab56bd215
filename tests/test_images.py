"""Image files and image folders: an unreadable, truncated or empty image is named and skipped (and counted in
the summary), a bad folder layout is one line, 16-bit images are scaled to 8 bits and 32-bit ones refused, any
file name round-trips through the skipped-images list, and symlink loops, FIFOs or duplicate paths in a folder
neither hang nor miscount."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from interrupted_runs import OVERRIDES
from PIL import Image
from tiny_runs import QUIET, tiny_config
from torch.utils.data import DataLoader

from accord.cli import main
from accord.config import load_config
from accord.data import build_splits
from accord.data.datasets import CheckedImageFolder, UnreadableImageError, decode_rgb
from accord.data.files import escape_path, unescape_path
from accord.engine import fit
from accord.engine.runfiles import SKIP_REPORT, read_skipped

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    values = np.linspace(0, 20000, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    image = decode_rgb(str(tmp_path / "deep.png"))
    expected = (values >> 8).astype(np.float64).mean()  # 10000 / 257, about 38.6; clipped it was 252.6
    assert abs(image.double().mean().item() - expected) < 0.01
    assert image.max().item() == 20000 >> 8


def test_32_bit_pixels_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.full((8, 8), 1e6, dtype=np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(OSError, match=r"float.tiff: unreadable image \(32-bit float pixels"):
        decode_rgb(str(tmp_path / "float.tiff"))


@pytest.mark.parametrize("name", ["plain.png", "new\nline.png", "tab\tand\\back.png", "bytes-\udcff\udc80.png"])
def test_escaped_names_round_trip(name):
    line = escape_path(name)
    assert "\n" not in line and "\t" not in line
    assert unescape_path(line) == name


def test_a_newline_in_an_unreadable_files_name_is_counted_once(imagefolder_dir, tmp_path):
    data = Path(shutil.copytree(imagefolder_dir, tmp_path / "data"))
    odd = [data / "train" / "class0" / "bad\nname.png", data / "train" / "class1" / os.fsdecode(b"bad-\xff.png")]
    for path in odd:
        path.write_bytes(b"not an image")
    out = tmp_path / "run"
    cfg = tiny_config(data, "FashionMNIST-ResNet8-standard", dataset="imagefolder", train_subset=None,
                      batch_size=4, lr_batch=4, image_size=32)  # fmt: skip
    fit(cfg, out, log=QUIET)
    assert sorted(p for p, _ in read_skipped(out)) == sorted(str(p) for p in odd)
    assert (out / "skipped-images.txt").read_text().count("\n") == 2


def test_a_fifo_or_symlink_as_the_skip_report_neither_blocks_nor_writes_through(imagefolder_dir, tmp_path):
    from accord.data.datasets import CheckedImageFolder, UnreadableImageError

    folder = CheckedImageFolder(str(imagefolder_dir / "train"))
    users = tmp_path / "notes.txt"
    users.write_text("mine\n")
    for kind in ("fifo", "link"):
        report = tmp_path / f"{kind}-skipped-images.txt"
        os.mkfifo(report) if kind == "fifo" else report.symlink_to(users)
        folder.report = report
        folder._report_unreadable(UnreadableImageError(f"/x/{kind}.png", "broken"))  # before: blocked on the FIFO
    assert users.read_text() == "mine\n"


def write_image_folder(root: Path) -> dict[str, Path]:
    """3 classes of 40 px PNGs/JPEGs, then one corrupt, one truncated and one zero-byte file."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for c in range(3):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    good = (root / "train" / "class0" / "0.jpg").read_bytes()
    bad = {
        "corrupt": root / "train" / "class0" / "corrupt.jpg",
        "truncated": root / "train" / "class1" / "truncated.jpg",
        "empty": root / "val" / "class2" / "empty.png",
    }
    bad["corrupt"].write_bytes(b"\xff\xd8 definitely not a JPEG" * 20)
    bad["truncated"].write_bytes(good[: len(good) // 2])
    bad["empty"].write_bytes(b"")
    return bad


def as_list(batch: list) -> list:
    return batch


def test_decode_rgb_names_the_file_and_the_reason(tmp_path):
    bad = write_image_folder(tmp_path)
    for path in bad.values():
        with pytest.raises(UnreadableImageError, match=rf"{path}: unreadable image \(.+\)"):
            decode_rgb(str(path))


def test_unreadable_images_are_skipped_and_counted_in_the_summary(tmp_path):
    bad = write_image_folder(tmp_path / "data")
    splits = build_splits("imagefolder", tmp_path / "data", val_fraction=0.25, image_size=32)
    assert sorted(p for p, _ in splits.skipped) == sorted(str(p) for p in bad.values())
    assert len(splits.train) + len(splits.val) == 24 and len(splits.test) == 9
    overrides = {"dataset": "imagefolder", "data_dir": str(tmp_path / "data"), "image_size": 32}
    small = {"train_subset": None, "batch_size": 4, "lr_batch": 4, "epochs": 1, "mix": "none"}
    cfg = load_config("FashionMNIST-ResNet8-standard", {**OVERRIDES, **overrides, **small})
    lines: list[str] = []
    summary = fit(cfg, tmp_path / "run", log=lines.append)
    assert summary["skipped_images"]["count"] == 3
    assert sorted(summary["skipped_images"]["paths"]) == sorted(str(p) for p in bad.values())
    assert any(line.startswith("skipping 3 unreadable images") for line in lines)
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["skipped_images"]["count"] == 3


def test_large_folders_skip_lazily_inside_workers_without_a_traceback(tmp_path, monkeypatch, capfd):
    bad = write_image_folder(tmp_path / "data")
    monkeypatch.setattr("accord.data.datasets.SCAN_LIMIT", 0)  # as for a folder too large to scan up front
    splits = build_splits("imagefolder", tmp_path / "data", val_fraction=0.25)
    assert splits.skipped == [] and len(splits.train) + len(splits.val) == 26
    folder = splits.train.dataset
    assert isinstance(folder, CheckedImageFolder)
    folder.report = tmp_path / SKIP_REPORT
    train_paths = {folder.samples[i][0] for i in splits.train.indices}
    loader = DataLoader(splits.train, batch_size=4, num_workers=2, collate_fn=as_list)
    items = [item for batch in loader for item in batch]
    assert len(items) == len(splits.train) and all(image.shape[0] == 3 for image, _ in items)
    reported = {line.split("\t")[0] for line in (tmp_path / SKIP_REPORT).read_text().splitlines()}
    assert reported == {str(p) for p in bad.values() if str(p) in train_paths}
    err = capfd.readouterr().err
    assert "accord: warning: skipping" in err and "Traceback" not in err


@pytest.mark.parametrize("fault", ["empty class folder", "missing split", "wrong data path", "no class folders"])
def test_bad_data_folders_get_one_clear_line(fault, tmp_path, capsys):
    root = tmp_path / "data"
    write_image_folder(root)
    if fault == "empty class folder":
        (root / "val" / "class3").mkdir()
        (root / "train" / "class3").mkdir()
        expected = f"{root / 'train' / 'class3'}: empty class folder"
    elif fault == "missing split":
        os.rename(root / "val", tmp_path / "elsewhere")
        expected = f"{root / 'val'}: missing"
    elif fault == "wrong data path":
        root = tmp_path / "nowhere"
        expected = f"{root}: no such folder"
    else:
        for p in sorted((root / "val").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        expected = f"{root / 'val'}: no class folders"
    with pytest.raises(FileNotFoundError) as info:
        build_splits("imagefolder", root)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    args = ["train", "--dataset", "imagefolder", "--data-dir", str(root), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


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
