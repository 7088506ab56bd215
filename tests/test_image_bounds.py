"""Every image accord decodes is bounded by what it reads and by what the pipelines make of it: a 1x300000 strip
of a few hundred bytes is refused (skipped and named), not resized to 256 x 76.8 million pixels."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from tiny_runs import QUIET, tiny_config
from torchvision.transforms.v2.functional._geometry import _compute_resized_output_size

from accord.cli import main
from accord.data.bounds import MAX_PIXELS, MAX_RESIZE_SIDE, eval_resize_side, pixel_excess
from accord.data.datasets import CheckedImageFolder, build_splits
from accord.engine import fit
from accord.engine.runfiles import read_skipped

pytestmark = pytest.mark.usefixtures("one_thread")


@settings(max_examples=300, deadline=None)
@given(
    width=st.integers(1, 400_000),
    height=st.integers(1, 400_000),
    image_size=st.integers(1, 1024),
    crop_pct=st.floats(0.05, 1.0),
)
def test_the_guard_passes_exactly_the_images_whose_made_size_is_bounded(width, height, image_size, crop_pct):
    """Against torchvision's own size arithmetic for the evaluation resize (the largest image made of it)."""
    side = eval_resize_side(image_size, crop_pct)
    made_h, made_w = _compute_resized_output_size((height, width), size=[side])
    bounded = width * height <= MAX_PIXELS and made_h * made_w <= MAX_PIXELS
    reason = pixel_excess(width, height, side)
    assert (reason is None) == bounded, (width, height, side, made_h, made_w, reason)
    assert reason is None or reason.startswith(f"{width}x{height} pixels")


def strip(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (200, 40, 40)).save(path)
    return path


@pytest.fixture
def stripped(imagefolder_dir, tmp_path) -> tuple[Path, list[Path]]:
    """The image folder with a 1-pixel-high strip in train/ and a 1-pixel-wide one in val/."""
    data = Path(shutil.copytree(imagefolder_dir, tmp_path / "data"))
    strips = [
        strip(data / "train" / "class0" / "wide.png", 300_000, 1),
        strip(data / "val" / "class1" / "tall.png", 1, 300_000),
    ]
    return data, strips


def test_strips_are_skipped_and_named_in_every_split(stripped):
    data, strips = stripped
    splits = build_splits("imagefolder", data, 0.0)
    reasons = dict(splits.skipped)
    assert sorted(reasons) == sorted(str(p) for p in strips)
    for path in strips:
        assert "its short side resized to 256 px makes" in reasons[str(path)], reasons
    assert len(splits.train) == 24 and len(splits.test) == 9  # the fixture's own images, every one


def test_a_strip_met_lazily_is_replaced_and_reported(stripped, capsys):
    data, strips = stripped
    folder = CheckedImageFolder(str(data / "val"), eval_resize_side(224))  # not scanned: a folder too large to scan
    index = next(i for i, (p, _) in enumerate(folder.samples) if p == str(strips[1]))
    image, _ = folder[index]
    assert tuple(image.shape) == (3, 40, 40)  # the next image of the split, not the strip
    assert f"skipping {strips[1]}: unreadable image (1x300000 pixels" in capsys.readouterr().err


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_training_and_evaluation_skip_a_strip_every_pipeline_would_blow_up(
    augment_on, imagefolder_dir, tmp_path, capsys
):
    """At image_size 32 the evaluation resize (floor(32 / 0.875) = 36) makes a 1x60000 strip 36 x 2.16 million
    pixels (the bound is 67 million): it is skipped and named in every split, whatever makes the views."""
    data = Path(shutil.copytree(imagefolder_dir, tmp_path / "data"))
    strips = [
        strip(data / "train" / "class2" / "wide.png", 60_000, 1),
        strip(data / "val" / "class0" / "tall.png", 1, 60_000),
    ]
    cfg = tiny_config(data, "FashionMNIST-ResNet8-standard", dataset="imagefolder", train_subset=None,
                      batch_size=4, lr_batch=4, image_size=32, augment_on=augment_on)  # fmt: skip
    out = tmp_path / "run"
    fit(cfg, out, log=QUIET)
    assert sorted(p for p, _ in read_skipped(out)) == sorted(str(p) for p in strips)
    assert main(["eval", "--checkpoint", str(out / "checkpoint-best.pt")]) == 0
    said = capsys.readouterr().out
    assert "(9 images)" in said and f"skipped 1 unreadable test images: {strips[1]} (1x60000 pixels" in said


@pytest.mark.parametrize(
    ("image_size", "crop_pct"),
    [(MAX_RESIZE_SIDE, 1.0), (MAX_RESIZE_SIDE + 1, 1.0), (10**6, 1.0), (7168, 0.875), (7169, 0.875), (224, 0.02)],
)
def test_an_evaluation_resize_that_passes_the_bound_is_refused_naming_the_keys(image_size, crop_pct, imagefolder_dir):
    """The resize is floor(image_size / crop_pct), timm's rule, at any crop: 7168 / 0.875 = 8192 is the largest."""
    from accord.config import ConfigError, load_config

    overrides = {"dataset": "imagefolder", "data_dir": str(imagefolder_dir), "image_size": image_size}
    overrides["crop_pct"] = crop_pct
    if eval_resize_side(image_size, crop_pct) <= MAX_RESIZE_SIDE:  # a square image the guard decodes stays usable
        load_config("FashionMNIST-ResNet8-standard", overrides)
        side = math.isqrt(MAX_PIXELS)
        assert pixel_excess(side, side, eval_resize_side(image_size, crop_pct)) is None
        return
    with pytest.raises(ConfigError, match=rf"'image_size' and 'crop_pct': .* floor\({image_size} / {crop_pct}\)"):
        load_config("FashionMNIST-ResNet8-standard", overrides)


@pytest.mark.parametrize(("image_size", "crop_pct"), [(32, 1.0), (32, 0.5), (224, 0.875), (64, 0.1)])
def test_an_image_folder_decodes_under_its_runs_own_evaluation_resize(image_size, crop_pct, imagefolder_dir):
    """build_splits bounds what an image folder decodes by the evaluation resize of the run's crop_pct."""
    from accord.data import build_splits

    splits = build_splits("imagefolder", imagefolder_dir, 0.1, image_size=image_size, crop_pct=crop_pct)
    folders = [d for d in (splits.train.dataset, splits.test) if hasattr(d, "resize_side")]
    assert len(folders) == 2
    assert all(d.resize_side == math.floor(image_size / crop_pct) for d in folders)
