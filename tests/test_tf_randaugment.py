"""TensorFlow's reference RandAugment (``tfrandaug``), op by op, against a numpy reference of its definitions.

The reference below is ekurtulus/tied-augment ``flax/supervised/augmentations.py`` (``blend``, the ops at
#L71-L426, ``level_to_arg`` at #L456-L510, ``distort_image_with_randaugment`` at #L645-L685) and TensorFlow
Addons' projective transform, written out per image in numpy. Colour and integer ops must match exactly; the
geometric ones may differ by at most one level (bilinear) and, at pixels whose sampling point lies within 1e-3
px of a rounding tie (nearest) or of the image's edge (where the reference's unwrap fills 128), in any way.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accord.views.author_policies import PerImage, TFRandAugment, tf_levels
from accord.views.tf_ops import TF_OPS

F32 = np.float32
TIE = 1e-3
MAGNITUDES = [*range(16), 20, 30]


def ref_level_to_arg(name: str, m: int) -> float:
    level = float(m)
    return {
        "Rotate": (level / 10.0) * 30.0,
        "Posterize": int((level / 10.0) * 4),
        "Solarize": int((level / 10.0) * 256),
        "Color": (level / 10.0) * 1.8 + 0.1,
        "Contrast": (level / 10.0) * 1.8 + 0.1,
        "Brightness": (level / 10.0) * 1.8 + 0.1,
        "Sharpness": (level / 10.0) * 1.8 + 0.1,
        "ShearX": (level / 10.0) * 0.3,
        "ShearY": (level / 10.0) * 0.3,
        "TranslateX": (level / 10.0) * 100.0,
        "TranslateY": (level / 10.0) * 100.0,
    }.get(name, 0.0)


def blend(image1, image2, factor):
    if factor == 0.0:
        return image1
    if factor == 1.0:
        return image2
    a, b = image1.astype(F32), image2.astype(F32)
    temp = a + F32(factor) * (b - a)
    if 0.0 < factor < 1.0:
        return temp.astype(np.uint8)
    return np.clip(temp, 0.0, 255.0).astype(np.uint8)


def grey(image):
    flt = image.astype(F32) * F32(1.0 / 255.0)
    g = flt[..., 0] * F32(0.2989) + flt[..., 1] * F32(0.5870) + flt[..., 2] * F32(0.1140)
    return np.repeat((g * F32(255.5)).astype(np.uint8)[..., None], 3, axis=2)


def sharpen(image, factor):
    k = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=F32) / F32(13.0)
    h, w, _ = image.shape
    flt, out = image.astype(F32), image.copy()
    total = np.zeros((h - 2, w - 2, 3), dtype=F32)
    for dy in range(3):
        for dx in range(3):
            total = total + flt[dy : h - 2 + dy, dx : w - 2 + dx] * k[dy, dx]
    out[1:-1, 1:-1] = np.clip(total, 0.0, 255.0).astype(np.uint8)
    return blend(out, image, factor)


def autocontrast(image):
    out = []
    for c in range(3):
        ch = image[..., c]
        lo, hi = F32(ch.min()), F32(ch.max())
        if hi > lo:
            scale = F32(255.0) / (hi - lo)
            ch = np.clip(ch.astype(F32) * scale + (-lo * scale), 0.0, 255.0).astype(np.uint8)
        out.append(ch)
    return np.stack(out, 2)


def equalize(image):
    out = []
    for c in range(3):
        ch = image[..., c].astype(np.int64)
        histo = np.bincount(ch.ravel(), minlength=256)
        nonzero = histo[histo != 0]
        step = (nonzero.sum() - nonzero[-1]) // 255
        if step == 0:
            out.append(ch.astype(np.uint8))
            continue
        lut = np.concatenate([[0], ((np.cumsum(histo) + step // 2) // step)[:-1]]).clip(0, 255)
        out.append(lut[ch].astype(np.uint8))
    return np.stack(out, 2)


def colour_reference(name, image, arg):
    h, w, _ = image.shape
    if name == "Brightness":
        return blend(np.zeros_like(image), image, arg)
    if name == "Color":
        return blend(grey(image), image, arg)
    if name == "Contrast":
        mean = np.clip(F32(h * w) / F32(256.0), 0.0, 255.0).astype(np.uint8)
        return blend(np.full_like(image, mean), image, arg)
    if name == "Sharpness":
        return sharpen(image, arg)
    if name == "AutoContrast":
        return autocontrast(image)
    if name == "Equalize":
        return equalize(image)
    if name == "Posterize":
        shift = np.uint8(min(max(8 - arg, 0), 7))  # TensorFlow's shift kernels clamp to 0..width-1
        return (image >> shift) << shift
    if name == "Solarize":
        threshold = np.array(arg).astype(np.uint8)  # the graph's uint8 constant: numpy wraps modulo 256
        return np.where(image < threshold, image, 255 - image)
    raise KeyError(name)


def transform(name, arg, h, w):
    """(t0..t5) of the projective transform from output (x, y) to input pixel indices, float64."""
    if name == "Rotate":
        a = arg * math.pi / 180.0
        cos, sin = math.cos(a), math.sin(a)
        x_off = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
        y_off = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
        return (cos, -sin, x_off, sin, cos, y_off)
    return {
        "ShearX": (1, arg, 0, 0, 1, 0),
        "ShearY": (1, 0, 0, arg, 1, 0),
        "TranslateX": (1, 0, arg, 0, 1, 0),  # translate(wrap(image), [-pixels, 0])
        "TranslateY": (1, 0, 0, 0, 1, arg),
    }[name]


def geometric_reference(name, image, arg):
    """The reference's output, and a mask of pixels near a tie or the edge where it may differ."""
    h, w, _ = image.shape
    t = transform(name, arg, h, w)
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    xin, yin = t[0] * xs + t[1] * ys + t[2], t[3] * xs + t[4] * ys + t[5]
    padded = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)))

    def read(r, c):
        return padded[np.clip(r, -1, h).astype(int) + 1, np.clip(c, -1, w).astype(int) + 1]

    if name.startswith("Translate"):  # nearest, half away from zero
        r, c = np.sign(yin) * np.floor(np.abs(yin) + 0.5), np.sign(xin) * np.floor(np.abs(xin) + 0.5)
        value, inside = read(r, c), (r >= 0) & (r <= h - 1) & (c >= 0) & (c <= w - 1)
        tie = (np.abs(np.abs(xin % 1) - 0.5) < TIE) | (np.abs(np.abs(yin % 1) - 0.5) < TIE)
    else:  # bilinear
        x0, y0 = np.floor(xin), np.floor(yin)
        fx, fy = (xin - x0)[..., None], (yin - y0)[..., None]
        top = (1 - fx) * read(y0, x0) + fx * read(y0, x0 + 1)
        bottom = (1 - fx) * read(y0 + 1, x0) + fx * read(y0 + 1, x0 + 1)
        value = (1 - fy) * top + fy * bottom
        inside = (xin >= 0) & (xin <= w - 1) & (yin >= 0) & (yin <= h - 1)
        tie = np.zeros_like(inside)
    edge = (np.abs(xin) < TIE) | (np.abs(xin - (w - 1)) < TIE) | (np.abs(yin) < TIE) | (np.abs(yin - (h - 1)) < TIE)
    out = np.where(inside[..., None], np.floor(value), 128).astype(np.uint8)
    return out, tie | edge


def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (4, 3, 34, 31), generator=g, dtype=torch.uint8)  # 1054 px: Contrast level 4
    x[1, 0] = 77  # a flat channel
    x[2] = x[2] // 64 * 60 + 10  # few levels: equalize's step
    x[3, :, :5] = 255
    return x


def accord_op(name, x, m, sign=1.0):
    space = TFRandAugment(2, m).space(x.shape[2], x.shape[3])
    value = space.table[space.names.index(name), 0] * sign
    return TF_OPS[name](x, value.expand(x.shape[0]).clone(), "")


def hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()


COLOUR = ["Brightness", "Color", "Contrast", "Sharpness", "AutoContrast", "Equalize", "Posterize", "Solarize"]
GEOMETRIC = ["Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"]


def test_the_op_list_is_the_references_thirteen():
    assert TFRandAugment(2, 9).space(8, 8).names == [
        "AutoContrast", "Equalize", "Rotate", "Posterize", "Solarize", "Color", "Contrast", "Brightness",
        "Sharpness", "ShearX", "ShearY", "TranslateX", "TranslateY",
    ]  # fmt: skip


@pytest.mark.parametrize("name", COLOUR)
def test_colour_ops_match_the_reference_exactly(name):
    x = images()
    for m in MAGNITUDES:
        out = accord_op(name, x, m)
        for i, img in enumerate(x):
            expected = colour_reference(name, hwc(img), ref_level_to_arg(name, m))
            assert np.array_equal(hwc(out[i]), expected), f"{name} at M={m}, image {i}"


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_ops_match_the_reference_within_the_bound(name):
    x = images()
    for m in MAGNITUDES:
        for sign in (1.0, -1.0):
            out = accord_op(name, x, m, sign)
            for i, img in enumerate(x):
                expected, loose = geometric_reference(name, hwc(img), sign * ref_level_to_arg(name, m))
                diff = np.abs(hwc(out[i]).astype(int) - expected.astype(int)).max(axis=2)
                assert not (diff[~loose] > (0 if name.startswith("Translate") else 1)).any(), f"{name} M={m} {sign}"


def test_magnitudes_above_ten_extrapolate_as_the_reference():
    levels = tf_levels(14)
    assert levels["Rotate"] == (42.0, True) and levels["TranslateX"] == (140.0, True)
    assert levels["Color"][0] == pytest.approx(2.62) and levels["Posterize"][0] == 5.0
    assert levels["Solarize"][0] == 102.0  # int(358.4) = 358 as a uint8 constant
    assert tf_levels(5)["Brightness"][0] == 1.0  # 0.5 * 1.8 + 0.1 is exactly 1: the enhance ops do nothing at M=5


def test_the_policy_applies_n_layers_per_image_and_runs_in_the_loader():
    x = images()
    torch.manual_seed(0)
    assert torch.equal(TFRandAugment(2, 14, probability=0.0)(x), x)
    out = TFRandAugment(2, 14)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert PerImage(TFRandAugment(2, 14))(x[0]).shape == x[0].shape
    with pytest.raises(ValueError, match="RGB"):
        TFRandAugment(2, 14)(x[:, :1])


def test_the_token_is_in_the_loader_and_on_the_device_and_refused_where_it_cannot_run():
    from accord.config import ConfigError, load_config
    from accord.data.datasets import DataInfo
    from accord.views.batched import BatchedViews
    from accord.views.policies import build_policy

    imagenet = DataInfo("imagefolder", 1000, 3, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), False)
    pipeline = build_policy("crop-flip-tfrandaug_2_14", imagenet)
    assert any(isinstance(t, PerImage) for t in pipeline.transforms)
    assert pipeline(torch.randint(0, 256, (3, 240, 300), dtype=torch.uint8)).shape == (3, 224, 224)
    cifar = DataInfo("cifar10", 10, 3, 32, (0.5,) * 3, (0.25,) * 3, True)
    views = BatchedViews(["crop-flip-tfrandaug_2_14_p0.5", "crop-flip"], cifar)
    assert views(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)).shape == (16, 3, 32, 32)
    with pytest.raises(ValueError, match=r"tfrandaug\[_N_M\[_pP\]\]"):
        build_policy("crop-tfrandaug_2_14_bilinear", imagenet)
    with pytest.raises(ConfigError, match="tfrandaug needs colour"):
        load_config("FashionMNIST-ResNet8-standard", {"policy": "crop-flip-tfrandaug_2_14"})


def test_loader_views_repeat_from_the_sample_seed():
    from accord.data.datasets import DataInfo, TensorImageDataset
    from accord.views.multiview import ViewDataset
    from accord.views.policies import build_policy

    cifar = DataInfo("cifar10", 10, 3, 32, (0.5,) * 3, (0.25,) * 3, True)
    data = TensorImageDataset(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.zeros(4).long())
    transform = build_policy("crop-flip-tfrandaug_2_14-autoaug_agmax", cifar)
    first, second = ViewDataset(data, transform, seed=3), ViewDataset(data, transform, seed=3)
    assert all(torch.equal(first[i][0], second[i][0]) for i in range(4))
    assert not torch.equal(first[0][0], ViewDataset(data, transform, seed=4)[0][0])
