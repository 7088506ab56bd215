"""The image operations of RandAugment, AutoAugment, TrivialAugment and AugMix on a whole batch, each image with
its own magnitude.

Every op takes a uint8 batch ``(n, C, H, W)`` (C = 1 or 3) and a float32 vector ``(n,)`` of signed magnitudes, in
the units of torchvision's augmentation spaces, and returns uint8: image ``i`` becomes what torchvision's
``_AutoAugmentBase._apply_image_or_video_transform(x[i], op, magnitude[i], interpolation, fill=None)`` makes of it.
The ops are vectorised over the batch (one sampling pass for every affine op, tensor arithmetic for the colour
ops, one histogram for all planes in equalize), so that a policy can apply each op once to all the images that
drew it.

Fidelity (tests/test_batched_policies.py checks each op at every magnitude bin of every policy, both signs,
against torchvision per image; tests/pixel_bounds.py states the bounds and the tests show that they catch a wrong
op, sign, magnitude bin, fill, centre or interpolation):

- Identity, Invert, Posterize, Solarize, AutoContrast, Equalize, Brightness: bit-exact on any processor, by
  construction (integer arithmetic, or one correctly rounded float32 product). AutoContrast is torchvision's own
  kernel, which already works per image of a batch; Posterize and Solarize take a per-image mask and threshold
  (for integer pixels ``x >= t`` is ``x >= ceil(t)``); Equalize is torchvision's (PIL's) lookup-table scheme
  written for one histogram over all planes, because torchvision's kernel ends in a broadcast ``torch.where``
  that is slow on the CPU.
- Color (saturation), Contrast, Sharpness: within one level. torchvision blends as ``x * r + y * (1 - r)`` with
  ``add_(y, alpha)``, which runs as a fused multiply-add on the AVX2 and AVX-512 paths and as a multiply then an
  add on others; with a per-image ratio there is no ``alpha`` scalar, so here the fused step is taken in float64
  (where the product and, for integer ``y``, the sum are exact) and rounded once to float32: equal to the fused
  result (measured: every bin, AVX2 and AVX-512), one level off the unfused one at a rounding tie (measured with
  ``ATEN_CPU_CAPABILITY=default``: up to 0.6% of pixels). Sharpness's 3x3 blur is an exact integer window sum
  rounded as torchvision's float convolution rounds it (``S / 13`` is never a tie).
- ShearX/Y, TranslateX/Y, Rotate: the inverse affine matrix of torchvision's ``_get_inverse_affine_matrix``, in
  float64 then float32, and the same pixel grid, summed in the order torchvision's one-image ``bmm`` gives on the
  CPU; bilinear sampling is the same ``grid_sample`` call, nearest sampling gathers the uint8 pixels at the
  coordinates grid_sample would round to, and whole-pixel translations just move pixels. Rotations by 0, 90, 180
  and 270 degrees take torchvision's ``rot90`` shortcut (exact). The float32 sampling points differ from
  torchvision's in the last bit on some processors' vector paths (and on CUDA, whose grid comes from cuBLAS), so
  a point on a rounding tie may take the neighbouring pixel: nearest sampling equals torchvision's except at
  pixels whose exact sampling point lies within 1e-3 px of a rounding boundary, where it takes the pixel on the
  other side; bilinear sampling is within one level everywhere. Measured on one AVX-512 processor: at most 0.35%
  of pixels differ (bilinear, one level) and 0.10% (nearest, a neighbouring pixel).

Fill is torchvision's default (``fill=None``): zeros outside the image, as accord's policies use.
Kornia's ``enhance`` functions take per-sample factors but round and clamp differently from torchvision
(float images, no fused blend, no PIL-style equalize), so these ops are written here to match torchvision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

Op = Callable[[Tensor, Tensor, str], Tensor]


def _column(values: Tensor) -> Tensor:
    return values.view(-1, 1, 1, 1)


def _fused_blend(x: Tensor, ratio: Tensor, other: Tensor) -> Tensor:
    """torchvision's ``_blend`` on uint8 ``x``: ``x * r + other * (1 - r)`` with the second product fused into the
    sum, ``r`` and ``1 - r`` taken in float32 from a float64 ``ratio`` (per image), clamped and truncated."""
    r32, a32 = _column(ratio.float()), _column((1.0 - ratio).float())
    scaled = x.float() * r32
    out = (scaled.double() + other.double() * a32.double()).float()
    return out.clamp_(0, 255).to(torch.uint8)


def _factor(magnitude: Tensor) -> Tensor:
    """``1.0 + magnitude`` as torchvision computes it (in Python floats, float64)."""
    return 1.0 + magnitude.double()


# ---------------------------------------------------------------------------------------- colour


def identity(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return x


def brightness(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return (x.float() * _column(_factor(magnitude).float())).clamp_(0, 255).to(torch.uint8)


def color(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    if x.shape[1] == 1:  # torchvision leaves one-channel images alone, as PIL does
        return x
    return _fused_blend(x, _factor(magnitude), TF.rgb_to_grayscale(x).float())


def contrast(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    gray = TF.rgb_to_grayscale(x).float() if x.shape[1] == 3 else x.float()
    return _fused_blend(x, _factor(magnitude), gray.mean(dim=(-3, -2, -1), keepdim=True))


def sharpness(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    height, width = x.shape[-2:]
    if height <= 2 or width <= 2:
        return x
    # torchvision blurs with the float kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 and rounds; the window's sum S
    # is an integer (exact in float32) and S / 13 is never a tie, so rounding S / 13 gives the same levels
    out = x.float()
    rows = out[..., :, :-2] + out[..., :, 1:-1] + out[..., :, 2:]
    total = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :] + 4 * out[..., 1:-1, 1:-1]
    blurred = total.div_(13).round_()
    inner = out[..., 1:-1, 1:-1]
    alpha = _column((1.0 - _factor(magnitude)).float()).double()
    inner.copy_((inner.double() + (blurred - inner).double() * alpha).float())
    return out.clamp_(0, 255).to(torch.uint8)


def posterize(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    bits = magnitude.to(torch.int64).clamp(0, 8)  # torchvision: int(magnitude); 8 bits keep the image
    mask = ((1 << bits) - 1) << (8 - bits)
    return x & _column(mask.to(torch.uint8))


def solarize(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    # torchvision inverts where x >= 255 * magnitude (float32); for integer x that is x >= ceil(threshold)
    threshold = _column((255.0 * magnitude.double()).float().ceil().clamp(0, 256).to(torch.int16))
    return x ^ (x >= threshold).to(torch.uint8).mul_(255)


def autocontrast(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return TF.autocontrast(x)


def equalize(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    """torchvision's (PIL's) equalize per channel of each image; written out because torchvision's kernel ends in a
    broadcast ``torch.where`` that is slow on the CPU: here images whose step is 0 get the identity lookup."""
    n, chans, height, width = x.shape
    planes = n * chans
    # one histogram and one lookup over all planes at once: plane k's levels are offset by 256 k
    offsets = (torch.arange(planes, dtype=torch.int32, device=x.device) * 256).view(n, chans, 1, 1)
    index = (x.int() + offsets).flatten()
    hist = torch.bincount(index, minlength=planes * 256).view(planes, 256)
    cum = hist.cumsum(dim=1)
    last = hist.gather(1, cum.argmax(dim=1, keepdim=True))  # pixels of the plane's largest level
    step = (height * width - last).div(255, rounding_mode="floor")
    lut = (cum[:, :-1] + step // 2).div(step.clamp(min=1), rounding_mode="floor").clamp(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], dim=1)
    lut = torch.where(step == 0, torch.arange(256, device=x.device), lut).to(torch.uint8)
    return lut.view(-1).index_select(0, index).view_as(x)


def invert(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return x.bitwise_not()


# ---------------------------------------------------------------------------------------- geometry


def inverse_affine(
    angle: Tensor, translate: tuple[Tensor, Tensor], shear: tuple[Tensor, Tensor], center: tuple[float, float]
) -> Tensor:
    """torchvision's ``_get_inverse_affine_matrix`` (scale 1) for a batch of angles, translations and shears in
    degrees and pixels, float64 ``(n, 2, 3)``; ``center`` is relative to the image centre."""
    rot, sx, sy = torch.deg2rad(angle), torch.deg2rad(shear[0]), torch.deg2rad(shear[1])
    cx, cy = center
    tx, ty = translate
    cos_sy, tan_sx = torch.cos(sy), torch.tan(sx)
    a = torch.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + torch.sin(rot))
    c = torch.sin(rot - sy) / cos_sy
    d = torch.cos(rot) - c * tan_sx
    m0, m1, m3, m4 = d, -b, -c, a
    m2 = cx - m0 * (cx + tx) - m1 * (cy + ty)
    m5 = cy - m3 * (cx + tx) - m4 * (cy + ty)
    return torch.stack([m0, m1, m2, m3, m4, m5], dim=1).view(-1, 2, 3)


def warp_affine(x: Tensor, matrix: Tensor, interpolation: str) -> Tensor:
    """torchvision's ``_affine_grid`` + ``_apply_grid_transform`` (fill None) with one matrix per image."""
    n, _, height, width = x.shape
    scale = torch.tensor([0.5 * width, 0.5 * height], dtype=torch.float32, device=x.device)
    rescaled = matrix.float().transpose(1, 2).div(scale).view(n, 1, 1, 3, 2)
    xs = torch.linspace((1.0 - width) * 0.5, (width - 1.0) * 0.5, steps=width, device=x.device).view(1, 1, width)
    ys = torch.linspace((1.0 - height) * 0.5, (height - 1.0) * 0.5, steps=height, device=x.device).view(1, height, 1)
    # torchvision: base (1, HW, 3) @ rescaled (1, 3, 2) per image, whose sums on the CPU are x t0 + y t1 + t2 left
    # to right; the same sums here, broadcast over the images (x t0 depends on the column only, y t1 on the row)
    # and per coordinate, as a batched matmul of this shape is slow on the CPU and rounds differently
    gx, gy = ((xs * rescaled[..., 0, k] + ys * rescaled[..., 1, k]).add_(rescaled[..., 2, k]) for k in (0, 1))
    if interpolation == "nearest":
        return _sample_nearest(x, gx, gy)
    grid = torch.stack([gx, gy], dim=-1)
    out = F.grid_sample(x.float(), grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out.round_().to(torch.uint8)


def _sample_nearest(x: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """``grid_sample(x, grid, "nearest", "zeros", align_corners=False)`` on uint8 without going through float: the
    same pixel coordinates (grid_sample's CPU and CUDA kernels unnormalise with these two forms), rounded half to
    even as they are, then gathered from the image in a one-pixel frame of zeros, where every coordinate outside
    the image is clamped to."""
    n, chans, height, width = x.shape

    def pixel(coord: Tensor, size: int) -> Tensor:  # in place: gx, gy are this function's own
        if coord.is_cuda:
            return coord.add_(1).mul_(size).sub_(1).div_(2).round_().clamp_(-1, size).add_(1)
        return coord.add_(1).mul_(size / 2).sub_(0.5).round_().clamp_(-1, size).add_(1)

    index = pixel(gy, height).mul_(width + 2).add_(pixel(gx, width)).long().view(n, 1, height * width)
    framed = F.pad(x, (1, 1, 1, 1)).view(n, chans, (height + 2) * (width + 2))
    return framed.gather(2, index.expand(n, chans, height * width)).view_as(x)


def _zeros(magnitude: Tensor) -> Tensor:
    return torch.zeros_like(magnitude, dtype=torch.float64)


def _shear(x: Tensor, magnitude: Tensor, interpolation: str, axis: int) -> Tensor:
    degrees = torch.rad2deg(torch.atan(magnitude.double()))  # shear of tan(angle) = magnitude, about the corner
    zero = _zeros(magnitude)
    shear = (degrees, zero) if axis == 0 else (zero, degrees)
    corner = (-x.shape[-1] * 0.5, -x.shape[-2] * 0.5)
    return warp_affine(x, inverse_affine(zero, (zero, zero), shear, corner), interpolation)


def shear_x(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return _shear(x, magnitude, interpolation, 0)


def shear_y(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return _shear(x, magnitude, interpolation, 1)


def _translate(x: Tensor, magnitude: Tensor, interpolation: str, axis: int) -> Tensor:
    # torchvision: int(magnitude) pixels through the affine grid; a whole-pixel shift samples pixel centres, so
    # every interpolation reduces to moving pixels: gathered here, zeros where the source falls outside
    pixels = magnitude.double().trunc().long().to(x.device)
    n, chans, height, width = x.shape
    size = width if axis == 0 else height
    source = torch.arange(size, device=x.device) - pixels.view(-1, 1)  # (n, size)
    inside = ((source >= 0) & (source < size)).to(torch.uint8)
    source = source.clamp(0, size - 1)
    if axis == 0:
        index, keep = source.view(n, 1, 1, width).expand(n, chans, height, width), inside.view(n, 1, 1, width)
        return x.gather(3, index) * keep
    index, keep = source.view(n, 1, height, 1).expand(n, chans, height, width), inside.view(n, 1, height, 1)
    return x.gather(2, index) * keep


def translate_x(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return _translate(x, magnitude, interpolation, 0)


def translate_y(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    return _translate(x, magnitude, interpolation, 1)


def rotate(x: Tensor, magnitude: Tensor, interpolation: str = "nearest") -> Tensor:
    angle = torch.remainder(magnitude.double(), 360.0)  # torchvision: angle % 360
    zero = _zeros(magnitude)
    out = warp_affine(x, inverse_affine(-angle, (zero, zero), (zero, zero), (0.0, 0.0)), interpolation)
    quarter = torch.remainder(angle, 90.0) == 0  # torchvision's exact shortcuts for 0, 90, 180 and 270 degrees
    if quarter.any():
        turns = (angle / 90.0).long()
        square = x.shape[-1] == x.shape[-2]
        for k in (0, 1, 2, 3) if square else (0, 2):
            rows = (quarter & (turns == k)).nonzero().flatten()
            if len(rows):
                out[rows] = torch.rot90(x[rows], k=k, dims=(-2, -1))
    return out


OPS: dict[str, Op] = {
    "Identity": identity,
    "ShearX": shear_x,
    "ShearY": shear_y,
    "TranslateX": translate_x,
    "TranslateY": translate_y,
    "Rotate": rotate,
    "Brightness": brightness,
    "Color": color,
    "Contrast": contrast,
    "Sharpness": sharpness,
    "Posterize": posterize,
    "Solarize": solarize,
    "AutoContrast": autocontrast,
    "Equalize": equalize,
    "Invert": invert,
}
