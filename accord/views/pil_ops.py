"""PIL's colour operations on a whole uint8 batch, each image with its own factor: the ops of AgMax's AutoAugment.

The AgMax authors' AutoAugment (roatienza/agmax ``dataset/auto_augment.py``) calls PIL on each image:
``ImageEnhance.{Brightness, Color, Contrast, Sharpness}(img).enhance(factor)``, ``ImageOps.autocontrast`` and
``ImageOps.solarize(img, threshold)``. torchvision's tensor versions of these round differently from PIL (a float
grey instead of PIL's integer one, a float mean instead of PIL's rounded one, another blend formula), so they are
written here as PIL computes them (Pillow's ``Image.blend``: ``in1 + alpha * (in2 - in1)`` in float32, truncated
and clipped; grey ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``; Contrast blends towards the rounded mean grey;
Sharpness towards PIL's ``SMOOTH`` filter, whose 3x3 window sum ``S`` gives ``round(S / 13)`` inside and the
original pixel on the border). ``tests/test_agmax_autoaugment.py`` compares each with PIL itself.

Every op takes ``(x, magnitude, interpolation)`` as :data:`accord.views.batched_ops.OPS` does; here the magnitude
is PIL's own argument: the enhance factor, or the solarize threshold.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _column(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def pil_blend(degenerate: Tensor, x: Tensor, factor: Tensor) -> Tensor:
    """``Image.blend(degenerate, x, factor)``: ``degenerate + factor * (x - degenerate)`` in float32 (PIL passes
    ``alpha`` as a C float), clipped to 0..255 and truncated."""
    low = degenerate.float()
    temp = low + _column(factor.float()) * (x.float() - low)
    return temp.clamp_(0, 255).to(torch.uint8)


def pil_grey(x: Tensor) -> Tensor:
    """``image.convert("L")`` of RGB: ``(19595 R + 38470 G + 7471 B + 0x8000) >> 16``; one channel as it is."""
    if x.shape[1] == 1:
        return x
    r, g, b = x.int().unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).unsqueeze(1).to(torch.uint8)


def brightness(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return pil_blend(torch.zeros_like(x), x, magnitude)


def color(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    if x.shape[1] == 1:  # "L" converted to "L" is the image itself: the blend returns it
        return pil_blend(x, x, magnitude)
    return pil_blend(pil_grey(x).expand_as(x), x, magnitude)


def contrast(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """Blend towards ``int(mean(grey) + 0.5)`` (``ImageStat.Stat(image.convert("L")).mean``, a float64 mean)."""
    grey = pil_grey(x).double()
    mean = (grey.mean(dim=(1, 2, 3)) + 0.5).floor()
    return pil_blend(_column(mean).expand_as(x), x, magnitude)


def sharpness(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """Blend towards ``image.filter(SMOOTH)``: ``round(S / 13)`` of the window sum with centre weight 5 inside
    (``S / 13`` is never a tie, so PIL's fixed-point rounding gives the same level), the border pixels as they are."""
    smooth = x.clone()
    if x.shape[-2] > 2 and x.shape[-1] > 2:
        v = x.int()
        rows = v[..., :, :-2] + v[..., :, 1:-1] + v[..., :, 2:]
        total = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :] + 4 * v[..., 1:-1, 1:-1]
        smooth[..., 1:-1, 1:-1] = (total * 2 + 13).div(26, rounding_mode="floor").to(torch.uint8)  # round(S / 13)
    return pil_blend(smooth, x, magnitude)


def autocontrast(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """``ImageOps.autocontrast`` per channel: ``int(v * scale + offset)`` in float64 with ``scale = 255 / (hi -
    lo)`` and ``offset = -lo * scale``, clipped; a channel with one level stays as it is."""
    lo = x.amin(dim=(2, 3), keepdim=True).double()
    hi = x.amax(dim=(2, 3), keepdim=True).double()
    flat = hi <= lo
    scale = torch.full_like(hi, 255.0).div(torch.where(flat, torch.ones_like(hi), hi - lo))  # not 255 * (1 / d)
    offset = -lo * scale
    out = (x.double() * scale + offset).trunc_().clamp_(0, 255).to(torch.uint8)
    return torch.where(flat, x, out)


def solarize(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """``ImageOps.solarize(img, threshold)``: levels ``>= threshold`` inverted (``i < t`` kept, ``i >= ceil(t)``
    not); the magnitude is the threshold in levels."""
    threshold = _column(magnitude.double().ceil().clamp(0, 256).to(torch.int16).to(x.device))
    return x ^ (x >= threshold).to(torch.uint8).mul_(255)
