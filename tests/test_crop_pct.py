"""The evaluation crop keys ``crop_pct`` and ``interpolation``, with timm's meaning, everywhere evaluation runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import timm.data
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import pil_to_tensor

from accord.config import ConfigError, load_config
from accord.config.files import _fragments
from accord.data import DataInfo
from accord.data.bounds import eval_resize_side
from accord.data.datasets import DATASET_FACTS
from accord.engine.run import build_run
from accord.views import build_eval_transform
from accord.views.eval_crop import INTERPOLATIONS, eval_geometry

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TINY = {"batch_size": 8, "lr_batch": 8, "eval_batch_size": 50, "workers": 0, "epochs": 1}


def folder_info(size: int, crop_pct: float, interpolation: str) -> DataInfo:
    return DataInfo("imagefolder", 3, 3, size, MEAN, STD, False, crop_pct, interpolation)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(4, 512),
    crop_pct=st.floats(0.3, 1.0),
    interpolation=st.sampled_from(INTERPOLATIONS),
)
def test_resize_side_is_timms(size, crop_pct, interpolation):
    """The short side accord resizes to is the one timm's eval transform resizes to, for any size and crop."""
    timm_tf = timm.data.create_transform(
        input_size=(3, size, size), crop_pct=crop_pct, interpolation=interpolation, mean=MEAN, std=STD
    )
    resize = next(t for t in timm_tf.transforms if type(t).__name__ == "Resize")
    assert eval_resize_side(size, crop_pct) == resize.size == math.floor(size / crop_pct)
    ours = eval_geometry(folder_info(size, crop_pct, interpolation))
    assert getattr(ours[0], "size", None) in (resize.size, [resize.size])
    assert isinstance(ours[1], v2.CenterCrop) and tuple(ours[1].size) == (size, size)


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(12, 80),
    w=st.integers(12, 80),
    size=st.integers(8, 48),
    crop_pct=st.floats(0.4, 1.0),
    interpolation=st.sampled_from(INTERPOLATIONS),
    seed=st.integers(0, 2**16),
)
def test_eval_transform_matches_timms_pixels(h, w, size, crop_pct, interpolation, seed):
    """accord's eval transform (uint8 tensors) and timm's (PIL images): the same pixels for bicubic and nearest
    (both PIL), within 2 grey levels for bilinear (torchvision's antialiased kernel; 2 is its worst on noise)."""
    image = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    ours = build_eval_transform(folder_info(size, crop_pct, interpolation))(pil_to_tensor(image))
    theirs = timm.data.create_transform(
        input_size=(3, size, size), crop_pct=crop_pct, interpolation=interpolation, mean=MEAN, std=STD
    )(image)
    assert ours.shape == theirs.shape
    grey_levels = ((ours - theirs) * torch.tensor(STD)[:, None, None] * 255).abs().max().item()
    assert grey_levels <= (2.0 if interpolation == "bilinear" else 0.0) + 1e-3


def small_folder(root: Path, side: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in range(2):
            (root / split / f"c{label}").mkdir(parents=True)
            for i in range(8):
                pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"c{label}" / f"{i}.png")
    return root


def geometry_of(transform: v2.Compose | list) -> list[tuple[str, object]]:
    ops = transform.transforms if isinstance(transform, v2.Compose) else transform
    return [(type(t).__name__, list(t.size)) for t in ops if hasattr(t, "size")]


def test_image_folder_selects_and_reports_at_timms_default_crop(tmp_path):
    """A 32-px image folder: validation (best-epoch selection) and test resize to floor(32 / 0.875) = 36."""
    data = small_folder(tmp_path / "data")
    overrides = {**TINY, "dataset": "imagefolder", "data_dir": str(data), "image_size": 32, "val_fraction": 0.25}
    cfg = load_config("FashionMNIST-ResNet8-standard", overrides)
    assert (cfg.data.crop_pct, cfg.data.interpolation) == (0.875, "bilinear")
    run = build_run(cfg, torch.device("cpu"))
    for dataset in (run.val_set, run.test_set):
        assert geometry_of(dataset.transform) == [("Resize", [36]), ("CenterCrop", [32, 32])]
    cfg = load_config("FashionMNIST-ResNet8-standard", {**overrides, "crop_pct": 1.0, "interpolation": "bicubic"})
    run = build_run(cfg, torch.device("cpu"))
    resize = run.val_set.transform.transforms[1]
    assert (resize.size, resize.interpolation) == (32, "bicubic")


@pytest.mark.parametrize("model", sorted(_fragments("models")))
def test_built_in_configs_keep_their_evaluation(model):
    """Every built-in model config evaluates as before the keys existed: 28-32 px data sets whole, image folders
    resized to image_size + 32 (224 -> 256, crop 0.875), bilinear."""
    cfg = load_config(f"{model}-standard")
    facts = DATASET_FACTS[cfg.data.dataset]
    size = cfg.data.image_size or facts.image_size
    info = DataInfo(
        cfg.data.dataset, 10, 3, size, MEAN, STD, facts.fixed_size, cfg.data.crop_pct, cfg.data.interpolation
    )
    expected = [] if facts.fixed_size else [("Resize", [size + 32]), ("CenterCrop", [size, size])]
    assert geometry_of(eval_geometry(info)) == expected
    assert cfg.data.interpolation == "bilinear"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"crop_pct": 0.0}, "'crop_pct' must be in (0, 1], got 0.0"),
        ({"crop_pct": 1.5}, "'crop_pct' must be in (0, 1], got 1.5"),
        ({"crop_pct": "big"}, "'crop_pct': expected float or null"),
        ({"interpolation": "lanczos"}, "'interpolation': 'lanczos' is not one of bilinear, bicubic, nearest"),
    ],
)
def test_bad_crop_values_are_one_line(override, message):
    with pytest.raises(ConfigError) as info:
        load_config("FashionMNIST-ResNet8-standard", override)
    assert message in str(info.value) and "\n" not in str(info.value)
