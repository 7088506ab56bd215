"""The image operations of TensorFlow's reference RandAugment on a whole uint8 batch, each image with its own
argument: the ops the Tied-Augment authors' ImageNet views run.

The Tied-Augment ImageNet views (ekurtulus/tied-augment ``flax/supervised/augmentations.py``, the TPU reference
``distort_image_with_randaugment``) work on one uint8 RGB image in TensorFlow and TensorFlow Addons. Written here
from those definitions, vectorised over the batch (no TensorFlow library does this in torch):

- Brightness, Color, Contrast, Sharpness: ``blend(degenerate, image, factor) = degenerate + factor * (image -
  degenerate)`` in float32, clipped to 0..255, truncated. Color's degenerate is ``tf.image.rgb_to_grayscale``:
  ``x * f32(1/255)`` weighted by (0.2989, 0.5870, 0.1140), times 255.5, truncated. Contrast's is the constant
  ``H * W / 256`` (the reference divides the histogram's *count* by 256, not the levels' sum), truncated and
  clipped. Sharpness's is the 3x3 ``[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13`` filter in float32, truncated, the
  border as it was (window sums are taken row by row; TensorFlow's convolution may sum in another order, which
  can move a blur that lands on a whole level by one).
- AutoContrast: per channel ``x * scale + offset`` in float32 with ``scale = 255 / (hi - lo)``, ``offset = -lo *
  scale``, clipped, truncated; a channel with one level stays. Equalize: PIL's rule (as in
  :mod:`accord.views.batched_ops`). Posterize: ``(x >> s) << s`` with ``s = 8 - bits`` clamped to 0..7, as
  TensorFlow's shift kernels clamp it. Solarize: ``x < t ? x : 255 - x`` with the threshold already as a uint8.
- Rotate (bilinear), ShearX/Y (bilinear), TranslateX/Y (nearest): TensorFlow Addons' projective transform, which
  maps output pixel ``(x, y)`` (whole pixel indices) to input ``(t0 x + t1 y + t2, t3 x + t4 y + t5)`` in float32,
  reads zeros outside the image and truncates; the reference's ``wrap``/``unwrap`` then fills with 128 every
  pixel whose transformed all-ones channel truncated to 0 (any pixel with an outside neighbour of non-zero weight).
  Rotation is about ``((W - 1) / 2, (H - 1) / 2)``; nearest rounds half away from zero.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .batched_ops import Op, equalize
from .pil_ops import pil_blend

FILL = 128  # the reference's replace value


def _column(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def brightness(x: Tensor, factor: Tensor, interpolation: str = "") -> Tensor:
    return pil_blend(torch.zeros_like(x), x, factor)


def tf_grey(x: Tensor) -> Tensor:
    """``tf.image.rgb_to_grayscale`` of uint8 RGB, one channel."""
    scaled = x.float() * torch.tensor(1.0 / 255.0, dtype=torch.float32)
    r, g, b = scaled.unbind(1)
    grey = (r * 0.2989 + g * 0.5870) + b * 0.1140
    return (grey * 255.5).to(torch.uint8).unsqueeze(1)


def color(x: Tensor, factor: Tensor, interpolation: str = "") -> Tensor:
    return pil_blend(tf_grey(x).expand_as(x), x, factor)


def contrast(x: Tensor, factor: Tensor, interpolation: str = "") -> Tensor:
    level = min(x.shape[-2] * x.shape[-1] // 256, 255)  # the reference's "mean": pixel count / 256
    return pil_blend(torch.full_like(x, level), x, factor)


def sharpness(x: Tensor, factor: Tensor, interpolation: str = "") -> Tensor:
    blurred = x.clone()
    if x.shape[-2] > 2 and x.shape[-1] > 2:
        v = x.float()
        one, five = torch.tensor(1.0 / 13.0), torch.tensor(5.0 / 13.0)  # float32 of the double: f32(1) / f32(13)
        height, width = x.shape[-2:]
        total = None
        for dy in range(3):
            for dx in range(3):
                term = v[..., dy : height - 2 + dy, dx : width - 2 + dx] * (five if (dy, dx) == (1, 1) else one)
                total = term if total is None else total + term
        assert total is not None  # the loops above ran nine times
        blurred[..., 1:-1, 1:-1] = total.clamp_(0, 255).to(torch.uint8)
    return pil_blend(blurred, x, factor)


def autocontrast(x: Tensor, magnitude: Tensor, interpolation: str = "") -> Tensor:
    lo = x.amin(dim=(2, 3), keepdim=True).float()
    hi = x.amax(dim=(2, 3), keepdim=True).float()
    flat = hi <= lo
    scale = torch.full_like(hi, 255.0).div(torch.where(flat, torch.ones_like(hi), hi - lo))  # not 255 * (1 / d)
    offset = -lo * scale
    out = (x.float() * scale + offset).clamp_(0, 255).to(torch.uint8)
    return torch.where(flat, x, out)


def posterize(x: Tensor, bits: Tensor, interpolation: str = "") -> Tensor:
    shift = _column((8 - bits.to(torch.int64)).clamp(0, 7).to(torch.uint8).to(x.device))
    return (x >> shift) << shift


def solarize(x: Tensor, threshold: Tensor, interpolation: str = "") -> Tensor:
    t = _column(threshold.to(torch.int16).to(x.device))
    return torch.where(x < t, x, 255 - x)


def warp(x: Tensor, transform: Tensor, interpolation: str) -> Tensor:
    """TensorFlow Addons' ``transform(wrap(x), transform)`` then ``unwrap(.., 128)``: ``transform`` is float32
    ``(n, 6)``, the affine part of the projective transform from output to input pixel indices."""
    n, chans, height, width = x.shape
    t = transform.float().to(x.device).view(n, 6, 1, 1).unbind(1)
    xs = torch.arange(width, dtype=torch.float32, device=x.device).view(1, 1, width)
    ys = torch.arange(height, dtype=torch.float32, device=x.device).view(1, height, 1)
    in_x = (t[0] * xs + t[1] * ys) + t[2]
    in_y = (t[3] * xs + t[4] * ys) + t[5]
    framed = F.pad(x, (1, 1, 1, 1)).float().view(n, chans, -1)
    ones = F.pad(torch.ones(n, 1, height, width, device=x.device), (1, 1, 1, 1)).view(n, 1, -1)

    def read(image: Tensor, row: Tensor, col: Tensor) -> Tensor:  # zeros outside: indices clamped into the frame
        index = (row.clamp(-1, height) + 1) * (width + 2) + col.clamp(-1, width) + 1
        flat = index.long().view(n, 1, -1).expand(n, image.shape[1], -1)
        return image.gather(2, flat).view(n, image.shape[1], height, width)

    if interpolation == "nearest":
        row, col = in_y.sign() * (in_y.abs() + 0.5).floor(), in_x.sign() * (in_x.abs() + 0.5).floor()
        values, alpha = read(framed, row, col), read(ones, row, col)
    else:
        x0, y0 = in_x.floor(), in_y.floor()
        x1, y1 = x0 + 1, y0 + 1
        wx0, wx1, wy0, wy1 = (
            (x1 - in_x).unsqueeze(1),
            (in_x - x0).unsqueeze(1),
            (y1 - in_y).unsqueeze(1),
            (in_y - y0).unsqueeze(1),
        )

        def bilinear(image: Tensor) -> Tensor:
            top = wx0 * read(image, y0, x0) + wx1 * read(image, y0, x1)
            bottom = wx0 * read(image, y1, x0) + wx1 * read(image, y1, x1)
            return wy0 * top + wy1 * bottom

        values, alpha = bilinear(framed), bilinear(ones)
    out = values.to(torch.uint8)  # truncation, as the kernel's cast to uint8
    return torch.where(alpha.to(torch.uint8) == 0, torch.full_like(out, FILL), out)


def rotate(x: Tensor, degrees: Tensor, interpolation: str = "bilinear") -> Tensor:
    """``tfa.image.rotate`` by ``degrees`` (float32 radians ``degrees * f32(pi / 180)``), bilinear."""
    height, width = x.shape[-2:]
    radians = degrees.float() * torch.tensor(math.pi / 180.0, dtype=torch.float32)
    cos, sin = torch.cos(radians), torch.sin(radians)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    return warp(x, torch.stack([cos, -sin, x_offset, sin, cos, y_offset], dim=1), "bilinear")


def shear_x(x: Tensor, level: Tensor, interpolation: str = "bilinear") -> Tensor:
    one, zero = torch.ones_like(level), torch.zeros_like(level)
    return warp(x, torch.stack([one, level, zero, zero, one, zero], dim=1), "bilinear")


def shear_y(x: Tensor, level: Tensor, interpolation: str = "bilinear") -> Tensor:
    one, zero = torch.ones_like(level), torch.zeros_like(level)
    return warp(x, torch.stack([one, zero, zero, level, one, zero], dim=1), "bilinear")


def translate_x(x: Tensor, pixels: Tensor, interpolation: str = "nearest") -> Tensor:
    """``tfa.image.translate(image, [-pixels, 0])``: input column ``x + pixels``, nearest."""
    one, zero = torch.ones_like(pixels), torch.zeros_like(pixels)
    return warp(x, torch.stack([one, zero, pixels, zero, one, zero], dim=1), "nearest")


def translate_y(x: Tensor, pixels: Tensor, interpolation: str = "nearest") -> Tensor:
    one, zero = torch.ones_like(pixels), torch.zeros_like(pixels)
    return warp(x, torch.stack([one, zero, zero, zero, one, pixels], dim=1), "nearest")


def _equalize(x: Tensor, magnitude: Tensor, interpolation: str = "") -> Tensor:
    return equalize(x, magnitude)


TF_OPS: dict[str, Op] = {
    "AutoContrast": autocontrast,
    "Equalize": _equalize,
    "Rotate": rotate,
    "Posterize": posterize,
    "Solarize": solarize,
    "Color": color,
    "Contrast": contrast,
    "Brightness": brightness,
    "Sharpness": sharpness,
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
}
