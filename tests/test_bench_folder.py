"""``accord bench --e2e-data FOLDER``: the end-to-end comparison on an image folder at its image size, with views
made in the loader and on the device (crops in the loader, the rest batch-wise); ``--amp bf16`` times autocast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from accord.bench.end_to_end import AUGMENT_ON, FolderRun, e2e_config, measure_end_to_end

pytestmark = pytest.mark.usefixtures("one_thread")


def jpeg_folder(root: Path, per_class: int, size: int = 80) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", 1)):
        for label in range(2):
            (root / split / f"c{label}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size + 7 * i % 20, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"c{label}" / f"{i}.jpg")
    return root


def test_folder_config_is_the_resnet50_recipe_at_the_folders_size(tmp_path):
    cfg = e2e_config("ResNet8", "crop-flip", "device", 4, 2, 0, tmp_path, FolderRun(64, "bf16"))
    assert (cfg.data.dataset, cfg.data.image_size, cfg.run.amp, cfg.views.augment_on) == (
        "imagefolder",
        64,
        "bf16",
        "device",
    )
    assert cfg.views.view_policies == ("crop-flip", "crop-flip")  # the policy named, as on Fashion-MNIST


def test_end_to_end_on_an_image_folder_times_both_places(tmp_path):
    data = jpeg_folder(tmp_path / "jpegs", per_class=6)
    result = measure_end_to_end(
        "ResNet8", 4, 2, 1, "cpu", workers=0, data_dir=data, policies=("crop-flip",), folder=FolderRun(48, "bf16")
    )
    assert set(result["end_to_end_ratio"]["crop-flip"]) == set(AUGMENT_ON)
    assert all(v > 0 for v in result["end_to_end_ratio"]["crop-flip"].values())
    assert result["end_to_end_setup"]["data"].startswith("image folder")
