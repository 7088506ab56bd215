"""accord's view pipelines take uint8 tensors; a PIL image (torchvision's and timm's datasets) is one clear
TypeError that names the fix, and ``accord.timm_loop.policy_views`` takes the same policies on PIL images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from accord.data import DataInfo
from accord.timm_loop import policy_views
from accord.views import ViewDataset, build_eval_transform, build_multiview_transform

GREY = DataInfo("toy", num_classes=10, in_chans=1, image_size=28, mean=(0.5,), std=(0.5,), fixed_size=True)
PIL_ITEMS = [(Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)), 1)]

PIPELINES = {
    "views": lambda: build_multiview_transform(["crop-flip", "crop-flip-randaug_2_14"], GREY),
    "same-crop views": lambda: build_multiview_transform(["crop-flip", "crop-flip-randaug_2_14"], GREY, True),
    "eval": lambda: build_eval_transform(GREY),
}


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pil_image_is_a_clear_error_naming_the_fix(name):
    with pytest.raises(
        TypeError, match=r"^accord's view pipelines take uint8 \(C, H, W\) tensors, not PIL.*policy_views"
    ):
        ViewDataset(PIL_ITEMS, PIPELINES[name]())[0]


def test_policy_views_take_the_pil_image_and_match_its_tensor():
    tensor_items = [(torch.from_numpy(np.array(PIL_ITEMS[0][0])).unsqueeze(0), 1)]
    policies = ["crop-flip", "crop-flip-randaug_2_14"]
    from_pil = ViewDataset(PIL_ITEMS, policy_views(policies, GREY), seed=3)[0][0]
    from_tensor = ViewDataset(tensor_items, build_multiview_transform(policies, GREY), seed=3)[0][0]
    assert all(torch.equal(a, b) for a, b in zip(from_pil, from_tensor, strict=True))
