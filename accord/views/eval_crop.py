"""The evaluation crop with timm's meaning: resize the short side to ``floor(image_size / crop_pct)`` with
``interpolation``, then centre-crop ``image_size`` (timm's ``transforms_imagenet_eval``, ``crop_mode="center"``).
timm resizes PIL images; accord resizes uint8 tensors with torchvision's antialiased bilinear, which agrees with
PIL's to within 2 grey levels (and keeps the numbers accord gave before these keys existed), and with PIL itself
for bicubic and nearest.

``crop_pct`` 0.875 at 224 px resizes to 256, ImageNet's usual evaluation; at 32 px it resizes to 36. Data sets
of fixed-size images (28-32 px: Fashion-MNIST, CIFAR) are used whole at ``crop_pct`` 1.0, as their authors
evaluate them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from torch import Tensor
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..data.bounds import DEFAULT_CROP_PCT, eval_resize_side
from ..data.datasets import DataInfo

#: Resize interpolation at evaluation, as timm names it in a model's ``pretrained_cfg``.
Interpolation = Literal["bilinear", "bicubic", "nearest"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)


class PilResize:
    """Resize the short side of a uint8 ``(C, H, W)`` tensor to ``size`` with PIL, as timm's eval transform
    does: for bicubic (PIL's kernel is not torch's) and nearest (torch's nearest modes pick other pixels)."""

    def __init__(self, size: int, interpolation: str) -> None:
        self.size, self.interpolation = size, interpolation

    def __call__(self, image: Tensor) -> Tensor:
        mode = v2.InterpolationMode(self.interpolation)
        return F.pil_to_tensor(F.resize(F.to_pil_image(image), [self.size], interpolation=mode))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation})"


def crop_pct_of(info: DataInfo) -> float:
    """``info``'s evaluation crop: its own, else 1.0 for fixed-size small images and timm's default otherwise."""
    if info.crop_pct is not None:
        return info.crop_pct
    return 1.0 if info.fixed_size else DEFAULT_CROP_PCT


def eval_geometry(info: DataInfo) -> list[Callable]:
    """Resize the short side to ``floor(image_size / crop_pct)`` and centre-crop ``image_size``; nothing for
    fixed-size images that this would leave as they are (28-32 px data sets at ``crop_pct`` 1.0)."""
    resize = eval_resize_side(info.image_size, crop_pct_of(info))
    if info.fixed_size and resize == info.image_size:
        return []
    if info.interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {info.interpolation!r}; valid: {', '.join(INTERPOLATIONS)}")
    if info.interpolation == "bilinear":  # torchvision's antialiased uint8 kernel: PIL's to within 2 grey levels
        return [v2.Resize(resize, interpolation=v2.InterpolationMode.BILINEAR), v2.CenterCrop(info.image_size)]
    return [PilResize(resize, info.interpolation), v2.CenterCrop(info.image_size)]
