"""Tests for accord.views.lighting against offsets computed by hand from AlexNet's PCA constants."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from accord.views.lighting import Lighting, adjust_lighting, lighting_delta

# alpha = (1, 0, 0): delta = column 0 of eigvec times eigval 0 = 0.2175 * (-0.5675, -0.5808, -0.5836)
DELTA_E1 = (-0.12343125, -0.126324, -0.126933)
# alpha = (0.5, -2, 4): delta_c = 0.5*0.2175*v[c][0] - 2*0.0188*v[c][1] + 4*0.0045*v[c][2]
DELTA_MIX = (
    0.5 * 0.2175 * -0.5675 - 2 * 0.0188 * 0.7192 + 4 * 0.0045 * 0.4009,
    0.5 * 0.2175 * -0.5808 - 2 * 0.0188 * -0.0045 + 4 * 0.0045 * -0.8140,
    0.5 * 0.2175 * -0.5836 - 2 * 0.0188 * -0.6948 + 4 * 0.0045 * 0.4203,
)


def test_delta_matches_hand_computation():
    assert lighting_delta(torch.tensor([1.0, 0.0, 0.0])).tolist() == pytest.approx(DELTA_E1, abs=1e-12)
    assert lighting_delta(torch.tensor([0.5, -2.0, 4.0])).tolist() == pytest.approx(DELTA_MIX, abs=1e-12)


def test_float_image_gets_the_offset_unclamped():
    image = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1).expand(3, 2, 2).clone()
    out = adjust_lighting(image, torch.tensor([1.0, 0.0, 0.0]))
    expected = [0.0 - 0.12343125, 0.5 - 0.126324, 1.0 - 0.126933]
    for c in range(3):
        assert out[c].flatten().tolist() == pytest.approx([expected[c]] * 4, abs=1e-6)
    assert out.dtype == torch.float32
    assert adjust_lighting(image, torch.tensor([-8.0, 0.0, 0.0]))[2, 0, 0] > 1.0  # not clamped, as the authors


def test_uint8_image_is_shifted_by_255_delta_rounded_and_clamped():
    image = torch.tensor([100, 100, 5], dtype=torch.uint8).view(3, 1, 1)
    out = adjust_lighting(image, torch.tensor([1.0, 0.0, 0.0]))
    # 100 - 31.47496875 = 68.525 -> 69; 100 - 32.21262 = 67.787 -> 68; 5 - 32.367915 < 0 -> 0
    assert out.dtype == torch.uint8
    assert out.flatten().tolist() == [69, 68, 0]
    bright = adjust_lighting(torch.full((3, 1, 1), 250, dtype=torch.uint8), torch.tensor([-1.0, 0.0, 0.0]))
    assert bright.flatten().tolist() == [255, 255, 255]  # 250 + 31.5 clamps at 255


def test_transform_draws_alpha_from_the_global_generator_and_keeps_types():
    image = tv_tensors.Image(torch.full((3, 4, 4), 128, dtype=torch.uint8))
    torch.manual_seed(3)
    out = Lighting(0.1)(image)
    torch.manual_seed(3)
    alpha = torch.empty(3).normal_(0.0, 0.1)
    assert isinstance(out, tv_tensors.Image)
    assert torch.equal(out.as_subclass(torch.Tensor), adjust_lighting(image.as_subclass(torch.Tensor), alpha))
    assert torch.equal(Lighting(0.0)(image), image)
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[0, 0, 2, 2]]), format="XYXY", canvas_size=(4, 4))
    _, same_boxes = Lighting(0.1)(image, boxes)
    assert torch.equal(same_boxes, boxes)


def test_composes_in_the_authors_order_on_float_images():
    pipeline = v2.Compose([v2.ToDtype(torch.float32, scale=True), Lighting(0.1), v2.Normalize([0.5] * 3, [0.5] * 3)])
    out = pipeline(torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8))
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32


@pytest.mark.parametrize("bad", [-0.1, float("nan")])
def test_negative_or_nan_std_is_refused(bad):
    with pytest.raises(ValueError, match="std must be >= 0"):
        Lighting(bad)


def test_non_rgb_image_is_refused():
    with pytest.raises(ValueError, match="RGB"):
        adjust_lighting(torch.zeros(1, 2, 2), torch.zeros(3))
