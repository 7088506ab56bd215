"""Tests for accord.views.cutout: the square clipped at the border, as the authors' CutOut."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from accord.views.cutout import ClippedCutout, cutout


def test_inside_square_is_length_by_length():
    out = cutout(torch.ones(3, 8, 8), cy=4, cx=4, length=4)  # rows 2..5, columns 2..5
    assert torch.equal(out[0, 2:6, 2:6], torch.zeros(4, 4))
    assert int((out == 0).sum()) == 3 * 16


def test_square_at_the_corner_is_clipped():
    out = cutout(torch.ones(1, 8, 8), cy=0, cx=7, length=4)  # rows 0..1 (clip of -2..1), columns 5..7 (clip of 5..8)
    assert int((out == 0).sum()) == 2 * 3
    assert torch.equal(out[0, 0:2, 5:8], torch.zeros(2, 3))


def test_odd_length_covers_twice_the_half_side_as_the_reference():
    out = cutout(torch.ones(1, 9, 9), cy=4, cx=4, length=5)  # 5 // 2 = 2: rows 2..5
    assert int((out == 0).sum()) == 16


def test_transform_draws_the_centre_over_the_whole_image_and_keeps_the_type():
    image = tv_tensors.Image(torch.ones(3, 32, 32))
    torch.manual_seed(0)
    out = ClippedCutout(16)(image)
    torch.manual_seed(0)
    cy, cx = int(torch.randint(32, ()).item()), int(torch.randint(32, ()).item())
    assert isinstance(out, tv_tensors.Image)
    assert torch.equal(out.as_subclass(torch.Tensor), cutout(torch.ones(3, 32, 32), cy, cx, 16))
    torch.manual_seed(1)
    erased = [int((ClippedCutout(16)(image) == 0).sum()) // 3 for _ in range(200)]
    assert max(erased) == 256 and min(erased) < 256  # a whole square at times, a clipped one at others


@pytest.mark.parametrize("bad", [0, -4, 2.5, True])
def test_bad_length_is_refused(bad):
    with pytest.raises(ValueError, match="positive number of pixels"):
        ClippedCutout(bad)
