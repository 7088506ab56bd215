"""ViewDataset takes the images users' datasets give: PIL images (torchvision's and timm's datasets), ``(H, W)``
tensors, and says which item is wrong for anything else."""

from __future__ import annotations

import re

import pytest
import torch
from PIL import Image

from accord.data import DataInfo, TensorImageDataset
from accord.views import ViewDataset, build_multiview_transform

GREY = DataInfo("toy", num_classes=10, in_chans=1, image_size=28, mean=(0.5,), std=(0.5,), small=True)
RGB = DataInfo("toy", num_classes=10, in_chans=3, image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, small=True)


class Items:
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def views_of(items: list, info: DataInfo) -> tuple[torch.Tensor, ...]:
    transform = build_multiview_transform(["crop-flip", "crop-flip-randaug_2_14-cutout"], info)
    return ViewDataset(Items(items), transform, seed=3)[0][0]


def uint8(*shape: int) -> torch.Tensor:
    return torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


@pytest.mark.parametrize(("info", "mode"), [(GREY, "L"), (RGB, "RGB")])
def test_a_pil_image_gives_the_views_of_the_same_uint8_tensor(info, mode):
    image = uint8(info.in_chans, info.image_size, info.image_size)
    pil = Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy(), mode=mode)
    expected = views_of([(image, 1)], info)
    got = views_of([(pil, 1)], info)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def test_a_palette_image_is_converted_to_rgb():
    pil = Image.fromarray(uint8(32, 32, 3).numpy(), mode="RGB").convert("P")
    assert all(v.shape == (3, 32, 32) for v in views_of([(pil, 1)], RGB))


def test_an_hw_tensor_gets_its_channel_axis():
    image = uint8(1, 28, 28)
    got, expected = views_of([(image[0], 1)], GREY), views_of([(image, 1)], GREY)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


@pytest.mark.parametrize(("image", "kind"), [(uint8(28), "Tensor of shape (28,)"), ([[0]], "list")])
def test_anything_else_names_the_item(image, kind):
    data = Items([(uint8(1, 28, 28), 0), (image, 1)])
    transform = build_multiview_transform(["crop-flip"], GREY)
    message = rf"^ViewDataset: item 1's image is a {re.escape(kind)}; expected a \(C, H, W\) tensor"
    with pytest.raises(TypeError, match=message):
        ViewDataset(data, transform)[1]


def test_accords_own_datasets_are_unchanged():
    data = TensorImageDataset(uint8(2, 1, 28, 28), torch.arange(2))
    transform = build_multiview_transform(["crop-flip"], GREY)
    assert ViewDataset(data, transform, seed=0)[1][0][0].shape == (1, 28, 28)
