"""Round three: 16-bit images are scaled to 8 bits, not clipped; any file name round-trips through the
skipped-images list."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_runs import QUIET, tiny_config

from accord.data.datasets import decode_rgb
from accord.data.files import escape_path, unescape_path
from accord.engine import fit
from accord.engine.runfiles import read_skipped

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
