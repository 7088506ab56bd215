"""Bad data is one line before anything is written: truncated or random
``.gz`` files, labels outside the classes, an empty test set (valid JSON, no NaN), huge images, a class
whose only image is unreadable, more loader workers than CPUs."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx
from PIL import Image, ImageFile
from tiny_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(fmnist_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the Fashion-MNIST-format folder, to damage."""
    return Path(shutil.copytree(fmnist_dir, tmp_path / "data"))


def one_line_before_the_run(main_args: list[str], out: Path, capsys, *needles: str) -> str:
    assert main(main_args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()  # no folder, so no config.yaml either
    return err


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_truncated_or_random_gz_data_is_one_line_naming_the_file(data, tmp_path, damage, capsys):
    path = data / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else np.random.default_rng(0).bytes(4096))
    out = tmp_path / "run"
    one_line_before_the_run(train_args(data, out), out, capsys, str(path), "truncated or corrupt")


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_a_label_outside_the_classes_is_refused_before_config_yaml(data, tmp_path, split, capsys):
    labels = np.arange(400 if split == "train" else 100) % 10
    labels[7] = 200
    write_idx(data / f"{split}-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "run"
    path = data / f"{split}-labels-idx1-ubyte.gz"
    one_line_before_the_run(
        train_args(data, out), out, capsys, f"{path}: label 200 at index 7 is outside the 10 classes (0-9)"
    )


def test_an_empty_test_set_leaves_valid_json_without_nan(data, tmp_path):
    write_idx(data / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", np.zeros((0,), dtype=np.uint8))
    fit(tiny_config(data), tmp_path / "run", log=QUIET)

    def refuse(constant: str):
        raise AssertionError(f"summary.json holds {constant}, which is not JSON")

    summary = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=refuse)
    assert summary["test_top1"] is None and summary["last_test_top1"] is None
    assert summary["best_val_top1"] is not None


def test_gzip_reader_errors_are_value_errors(tmp_path):
    from accord.data.idx import read_idx

    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\0\0\x08\x01" + b"\0\0\0\x05" + b"abcde")
    path.write_bytes(path.read_bytes()[:-6])  # cut into the trailer
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(path)


# ------------------------------------------------------------------------- loaders, huge and unreadable images


def test_more_workers_than_cpus_are_bounded_by_the_cpus(fmnist_dir, tmp_path, capfd):
    cpus = len(os.sched_getaffinity(0))
    fit(tiny_config(fmnist_dir, workers=256), tmp_path / "run", log=QUIET)
    err = capfd.readouterr().err
    assert f"accord: warning: workers: 256 is more than the {cpus} CPUs here; using {cpus}" in err
    assert err.count("workers: 256") == 1  # said once, not per loader


def huge_png(path: Path, width: int, height: int) -> None:
    """A valid grayscale PNG of ``width`` x ``height`` black pixels, streamed (a few hundred KB on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    for _ in range(height):
        parts.append(packer.compress(row))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    )


def image_folder(root: Path, classes: int = 2, per_class: int = 4) -> Path:
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def test_a_144_megapixel_png_is_skipped_without_decoding_it(tmp_path, monkeypatch):
    from accord.data import build_splits

    root = image_folder(tmp_path / "images")
    huge = root / "train" / "class0" / "huge.png"
    huge_png(huge, 12_000, 12_000)
    with pytest.warns(Image.DecompressionBombWarning), Image.open(huge) as image:
        assert image.size == (12_000, 12_000)  # a real PNG of 144 megapixels
    load, decoded = ImageFile.ImageFile.load, []

    def recording_load(image):
        decoded.append(image.filename)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    splits = build_splits("imagefolder", root, 0.0, None, 0, 16)
    assert str(huge) not in decoded and len(decoded) >= 16  # the others were decoded, it was not (2.3 GB)
    (path, reason) = splits.skipped[0]
    assert path == str(huge) and reason == "12000x12000 pixels, more than the 67 megapixels accord decodes"
    assert len(splits.train) == 8


def test_a_class_whose_only_image_is_unreadable_is_one_line(tmp_path, capsys):
    root = image_folder(tmp_path / "images", classes=3, per_class=2)
    for p in (root / "train" / "class2").iterdir():
        p.unlink()
    (root / "train" / "class2" / "only.png").write_bytes(b"not a png")
    out = tmp_path / "run"
    argv = ["train", "--config", "FashionMNIST-ResNet8-standard", "--dataset", "imagefolder", "--data-dir",
            str(root), "--set", "image_size=16", "--set", "batch_size=2", "--out", str(out)]  # fmt: skip
    one_line_before_the_run(
        argv, out, capsys, f"{root / 'train' / 'class2'}: no readable images, 1 unreadable: ", "only.png"
    )
