"""AgMax's AutoAugment (``autoaug_agmax``), op by op, against the authors' definitions run through PIL.

The reference is roatienza/agmax ``dataset/auto_augment.py#L167-L303`` written out here: ``level(low, high, m) =
m / 10 * (high - low) + low`` and the PIL call each op makes. Colour and integer ops must match PIL exactly; the
geometric ones (PIL's nearest affine) may differ only at pixels whose sampling point lies within 1e-3 px of a
rounding tie (a whole pixel coordinate, where PIL's floor and grid_sample's rounding may part).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from accord.views.author_policies import AGMAX_OPS, AgMaxAutoAugment, PerImage
from accord.views.batched_policies import BatchedAutoAugment

TIE = 1e-3


def level(low, high, m):
    return (m / 10.0) * (high - low) + low


def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 11, 13), generator=g, dtype=torch.uint8)
    x[1, 0] = 77  # a flat channel: autocontrast leaves it
    x[2] = x[2] // 64 * 60 + 10  # a few levels only: equalize's step
    x[3, :, :4] = 255
    return x


def pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray(x.permute(1, 2, 0).numpy())


def tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


COLOUR = {  # name: (PIL reference at magnitude m)
    "Brightness": lambda img, m: ImageEnhance.Brightness(img).enhance(level(0.1, 1.9, m)),
    "Color": lambda img, m: ImageEnhance.Color(img).enhance(level(0.1, 1.9, m)),
    "Contrast": lambda img, m: ImageEnhance.Contrast(img).enhance(level(0.1, 1.9, m)),
    "Sharpness": lambda img, m: ImageEnhance.Sharpness(img).enhance(level(0.1, 1.9, m)),
    "Posterize": lambda img, m: ImageOps.posterize(img, int(level(4, 8, m))),
    "Solarize": lambda img, m: ImageOps.solarize(img, level(0, 256, m)),
    "AutoContrast": lambda img, m: ImageOps.autocontrast(img),
    "Equalize": lambda img, m: ImageOps.equalize(img),
    "Invert": lambda img, m: ImageOps.invert(img),
}


def accord_op(name: str, x: torch.Tensor, m: int, sign: float = 1.0) -> torch.Tensor:
    space = AgMaxAutoAugment("imagenet").space(x.shape[2], x.shape[3])
    value = space.table[space.names.index(name), m] * sign
    return AGMAX_OPS[name](x, value.expand(x.shape[0]).clone(), "nearest")


@pytest.mark.parametrize("name", list(COLOUR))
def test_colour_ops_match_pil_exactly(name):
    x = images()
    for m in range(10):
        expected = torch.stack([tensor(COLOUR[name](pil(img), m)) for img in x])
        assert torch.equal(accord_op(name, x, m), expected), f"{name} at magnitude {m}"


def test_enhance_at_magnitude_zero_is_factor_0_1_not_identity():
    x = images()
    out = accord_op("Color", x, 0)
    assert not torch.equal(out, x)  # torchvision's Color at bin 0 returns the image; the authors' greys it to 0.1
    assert torch.equal(out, torch.stack([tensor(ImageEnhance.Color(pil(i)).enhance(0.1)) for i in x]))


def _pil_matrix(name: str, v: float, width: int, height: int) -> tuple[float, ...]:
    """The (a, b, c, d, e, f) PIL samples input ``(a x + b y + c, d x + e y + f)`` at output pixel centre (x, y)."""
    if name == "ShearX":
        return (1, v, 0, 0, 1, 0)
    if name == "ShearY":
        return (1, 0, 0, v, 1, 0)
    if name == "TranslateX":
        return (1, 0, v * width, 0, 1, 0)
    if name == "TranslateY":
        return (1, 0, 0, 0, 1, v * height)
    angle = -math.radians(v % 360.0)  # Image.rotate
    a, b, d, e = (round(math.cos(angle), 15), round(math.sin(angle), 15), round(-math.sin(angle), 15),
                  round(math.cos(angle), 15))  # fmt: skip
    cx, cy = width / 2.0, height / 2.0
    return (a, b, a * -cx + b * -cy + cx, d, e, d * -cx + e * -cy + cy)


def _pil_geometric(name: str, img: Image.Image, v: float) -> Image.Image:
    if name == "Rotate":
        return img.rotate(v)
    return img.transform(img.size, Image.AFFINE, _pil_matrix(name, v, *img.size))


def _near_tie(name: str, v: float, width: int, height: int) -> torch.Tensor:
    a, b, c, d, e, f = _pil_matrix(name, v, width, height)
    ys, xs = np.meshgrid(np.arange(height) + 0.5, np.arange(width) + 0.5, indexing="ij")
    xin, yin = a * xs + b * ys + c, d * xs + e * ys + f
    near = (np.abs(xin - np.round(xin)) < TIE) | (np.abs(yin - np.round(yin)) < TIE)
    return torch.from_numpy(near)


GEOMETRIC = {  # name: (the authors' value at magnitude m, the sign accord's op takes for PIL's positive value)
    "ShearX": (lambda m: level(0, 0.3, m), 1.0),
    "ShearY": (lambda m: level(0, 0.3, m), 1.0),
    "TranslateX": (lambda m: level(0, 0.45, m), -1.0),
    "TranslateY": (lambda m: level(0, 0.45, m), -1.0),
    "Rotate": (lambda m: level(0, 30, m), 1.0),
}


@pytest.mark.parametrize("name", list(GEOMETRIC))
def test_geometric_ops_match_pil_but_at_rounding_ties(name):
    value, direction = GEOMETRIC[name]
    x = images()
    height, width = x.shape[2:]
    for m in range(10):
        for sign in (1.0, -1.0):
            v = sign * value(m)
            expected = torch.stack([tensor(_pil_geometric(name, pil(img), v)) for img in x])
            out = accord_op(name, x, m, sign * direction)
            differs = (out != expected).any(dim=1)
            allowed = _near_tie(name, v, width, height)
            assert not (differs & ~allowed).any(), f"{name} at magnitude {m}, sign {sign}"


def test_the_sub_policies_are_the_authors_and_the_policy_runs_per_image():
    # roatienza/agmax dataset/auto_augment.py#L9-L92 equals torchvision's tables but for one magnitude (#L24)
    for policy in ("imagenet", "cifar10", "svhn"):
        ours, theirs = AgMaxAutoAugment(policy), BatchedAutoAugment(policy)
        assert torch.equal(ours.sub_ops, theirs.sub_ops) and torch.equal(ours.sub_probs, theirs.sub_probs)
        differs = (ours.sub_bins != theirs.sub_bins).nonzero().tolist()
        assert differs == ([[13, 1]] if policy == "cifar10" else []), policy
    assert AgMaxAutoAugment("cifar10").sub_bins[13].tolist() == [6, 6]  # [('Brightness', 0.9, 6), ('Color', 0.2, 6)]
    x = images()
    torch.manual_seed(0)
    batch = AgMaxAutoAugment("imagenet")(x)
    assert batch.shape == x.shape and batch.dtype == torch.uint8
    assert PerImage(AgMaxAutoAugment("cifar10"))(x[0]).shape == x[0].shape


def test_the_token_is_in_the_loader_and_on_the_device():
    from accord.data.datasets import DataInfo
    from accord.views.batched import BatchedViews
    from accord.views.policies import build_policy

    imagenet = DataInfo("imagefolder", 1000, 3, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False)
    pipeline = build_policy("crop-flip-autoaug_agmax-jitter-lighting", imagenet)
    (step,) = [t for t in pipeline.transforms if isinstance(t, PerImage)]
    assert step.policy.policy == "imagenet"
    assert pipeline(torch.randint(0, 256, (3, 240, 300), dtype=torch.uint8)).shape == (3, 224, 224)
    cifar = DataInfo("cifar10", 10, 3, 32, (0.5,) * 3, (0.25,) * 3, True)
    views = BatchedViews(["crop-flip-autoaug_agmax-cutout"] * 2, cifar)
    assert repr(views.operations[0][0]) == "AgMaxAutoAugment(policy='cifar10')"
    assert views(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)).shape == (16, 3, 32, 32)
    with pytest.raises(ValueError, match=r"autoaug\[_agmax\]"):
        build_policy("crop-autoaug_agmax_mnist", imagenet)
