"""What "equal to torchvision" can promise for a geometric op on any processor, stated as a bound and checked.

A geometric op (ShearX/Y, TranslateX/Y, Rotate) samples the source image at points that torchvision computes in
float32 with a ``bmm`` whose last bit depends on the processor's vector path (and on CUDA, on cuBLAS). Where the
exact sampling point lies on a rounding boundary, two correct implementations may round it to neighbouring
pixels. So, against torchvision's own output ``ref`` for the same image and magnitude:

- nearest: every pixel equals the reference, except a pixel whose exact sampling point (computed here in float64
  from torchvision's own inverse affine matrix) lies within ``TIE_PX`` of a rounding boundary; such a pixel must
  equal the source at one of the pixels on either side of that boundary (the zero fill outside the image).
- bilinear: every pixel within ``BILINEAR_LEVELS`` (1) of the reference.

The blends (Color, Contrast, Sharpness) compute ``x * r + y * (1 - r)`` in float32, which torchvision's
``add_(y, alpha)`` runs as a fused multiply-add on the AVX2/AVX-512 paths and as a multiply then an add on
others (``ATEN_CPU_CAPABILITY=default``): accord's per-image version reproduces the fused one, so against the
other a pixel on a rounding tie moves by one level. Bound: every pixel within ``BLEND_LEVELS`` (1).

The bounds are tight enough to catch a wrong op, sign, magnitude bin, fill, centre or interpolation
(tests/test_batched_policies.py perturbs each and sees the check fail). Every other op (Identity, Brightness,
Posterize, Solarize, AutoContrast, Equalize, Invert) is bit-exact by construction: integer arithmetic, one
correctly rounded float32 product, or torchvision's own kernel.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision.transforms.functional import _get_inverse_affine_matrix

TIE_PX = 1e-3  # float32 sampling points of a <= 224 px image are within ~1e-5 px of the exact ones
BILINEAR_LEVELS = 1
BLEND_LEVELS = 1
BLENDS = ("Color", "Contrast", "Sharpness")


def affine_arguments(name: str, magnitude: float, height: int, width: int) -> tuple[float, list[float], list[float]]:
    """(angle, translate, shear) and the centre torchvision's ``_apply_image_or_video_transform`` gives ``F.affine``
    (``F.rotate``) for op ``name``; returned as torchvision's inverse-matrix arguments with the centre folded in."""
    if name == "ShearX":
        return 0.0, [0.0, 0.0], [math.degrees(math.atan(magnitude)), 0.0]
    if name == "ShearY":
        return 0.0, [0.0, 0.0], [0.0, math.degrees(math.atan(magnitude))]
    if name == "TranslateX":
        return 0.0, [float(int(magnitude)), 0.0], [0.0, 0.0]
    if name == "TranslateY":
        return 0.0, [0.0, float(int(magnitude))], [0.0, 0.0]
    if name == "Rotate":
        return -(magnitude % 360.0), [0.0, 0.0], [0.0, 0.0]
    raise ValueError(f"{name} is not a geometric op")


def sampling_points(name: str, magnitude: float, height: int, width: int) -> tuple[Tensor, Tensor]:
    """The exact (float64) source pixel coordinates (x, y), each ``(H, W)``, that torchvision samples for every output
    pixel: its inverse affine matrix applied to the pixel centres, in grid_sample's pixel units."""
    angle, translate, shear = affine_arguments(name, magnitude, height, width)
    # shears turn about the top-left corner (torchvision passes center=[0, 0]); the others about the image centre
    center = [-width * 0.5, -height * 0.5] if name.startswith("Shear") else [0.0, 0.0]
    m = _get_inverse_affine_matrix(center, angle, translate, 1.0, shear)
    xs = torch.arange(width, dtype=torch.float64) - (width - 1) * 0.5
    ys = (torch.arange(height, dtype=torch.float64) - (height - 1) * 0.5).view(-1, 1)
    px = m[0] * xs + m[1] * ys + m[2] + (width - 1) * 0.5
    py = m[3] * xs + m[4] * ys + m[5] + (height - 1) * 0.5
    return px, py


def _candidates(coord: Tensor) -> tuple[Tensor, Tensor]:
    """The pixel indices a nearest sample at ``coord`` may take: the rounded one, and across a boundary within
    ``TIE_PX`` the other side too (both equal the rounded one away from a boundary)."""
    low = torch.floor(coord + 0.5 - TIE_PX)
    high = torch.floor(coord + 0.5 + TIE_PX)
    return low.long(), high.long()


def _source_at(src: Tensor, ix: Tensor, iy: Tensor) -> Tensor:
    """``src`` (C, H, W) at integer pixel indices (H, W) each, zeros outside the image: ``(C, H, W)``."""
    chans, height, width = src.shape
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    values = src[:, iy.clamp(0, height - 1), ix.clamp(0, width - 1)]
    return values * inside.to(src.dtype)


def geometric_mismatch(src: Tensor, out: Tensor, ref: Tensor, name: str, magnitude: float, interpolation: str) -> str:
    """Why ``out`` is not within the stated bound of torchvision's ``ref`` for ``name`` at ``magnitude`` on the
    uint8 image ``src`` (C, H, W); the empty string when it is."""
    if interpolation == "bilinear":
        worst = int((out.int() - ref.int()).abs().max())
        return "" if worst <= BILINEAR_LEVELS else f"{name}({magnitude:g}) bilinear: a pixel differs by {worst} levels"
    differ = (out != ref).any(dim=0)
    if not differ.any():
        return ""
    if name == "Rotate" and magnitude % 90.0 == 0:
        return f"Rotate({magnitude:g}) takes torchvision's exact rot90 shortcut, yet {int(differ.sum())} pixels differ"
    px, py = sampling_points(name, magnitude, *src.shape[-2:])
    (x0, x1), (y0, y1) = _candidates(px), _candidates(py)
    allowed = torch.zeros_like(differ)
    for ix in (x0, x1):
        for iy in (y0, y1):
            allowed |= (out == _source_at(src, ix, iy)).all(dim=0)
    near_tie = (x0 != x1) | (y0 != y1)
    bad = differ & ~(allowed & near_tie)
    if bad.any():
        y, x = (int(i) for i in bad.nonzero()[0])
        return (
            f"{name}({magnitude:g}) nearest: {int(bad.sum())} of {bad.numel()} pixels differ away from a rounding "
            f"tie, e.g. ({y}, {x}) sampling ({float(px[y, x]):.4f}, {float(py[y, x]):.4f})"
        )
    return ""


def blend_mismatch(out: Tensor, ref: Tensor, name: str, magnitude: float) -> str:
    """Why the blend op's ``out`` is not within ``BLEND_LEVELS`` of torchvision's ``ref``; empty when it is."""
    worst = int((out.int() - ref.int()).abs().max())
    return "" if worst <= BLEND_LEVELS else f"{name}({magnitude:g}): a pixel differs by {worst} levels"
