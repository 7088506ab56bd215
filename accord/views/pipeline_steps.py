"""The policy tokens around the image operations, each one class: ``crop`` and ``flip`` before them (geometry),
``lighting`` on the float image and ``cutout``/``ccutout`` after normalisation.

Loader forms are torchvision v2's (and accord's :class:`~.lighting.Lighting` and :class:`~.cutout.ClippedCutout`),
device forms draw per image of a batch (:mod:`.batched_geometry`, :mod:`.batched_photometric`, kornia's
``RandomErasing``, imported when a device CutOut is built: kornia is needed by ``augment_on: device`` only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from .augmentation import Augmentation, parse_numbers, register
from .batched_geometry import RandomFlip, RandomPadCrop
from .batched_photometric import BatchedClippedCutout, BatchedLighting
from .cutout import ClippedCutout
from .lighting import Lighting


@register
@dataclass(frozen=True)
class Crop(Augmentation):
    """28-32 px (``train_crop: pad``): ``RandomCrop(size, padding=4)``; larger: ``RandomResizedCrop(size)``. The
    device makes the pad crop (a larger image's crop is made in the loader, :mod:`.loader_crops`)."""

    name = "crop"
    form = "crop"
    stage = "geometry"
    sizes = True

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        if info.train_crop == "pad":
            return v2.RandomCrop(info.image_size, padding=4)
        return v2.RandomResizedCrop(info.image_size)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return RandomPadCrop(4)


@register
@dataclass(frozen=True)
class Flip(Augmentation):
    """A horizontal flip with probability 1/2."""

    name = "flip"
    form = "flip"
    stage = "geometry"

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return v2.RandomHorizontalFlip()

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return RandomFlip()


@register
@dataclass(frozen=True)
class PCALighting(Augmentation):
    """AlexNet PCA lighting, ``alpha ~ N(0, std^2)`` per image, on the float image before normalisation; colour
    images only."""

    name = "lighting"
    form = "lighting[_STD]"
    stage = "float"
    colour_only = True
    slot = "lighting"  # one lighting per view: a second token replaces the first

    std: float = 0.1

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> PCALighting:
        values = parse_numbers(token, args, (0, 1), cls.form)
        return cls(values[0] if values else 0.1)

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return Lighting(self.std)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedLighting(self.std)


@register
@dataclass(frozen=True)
class CutOut(Augmentation):
    """One square of zeros of side ``length`` on the normalised image, always inside the image (torchvision's
    ``RandomErasing``); ``cutout`` alone: half the image side."""

    name = "cutout"
    form = "cutout[_L]"
    stage = "normalised"
    slot = "cutout"  # one CutOut per view, clipped or not: a later token replaces an earlier one

    length: int

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> CutOut:
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise ValueError(f"{token!r}: expected {cls.form} with L a side in pixels")
        length = int(args[0]) if args else image_size // 2
        if not 0 < length < image_size:  # RandomErasing cannot erase the whole image
            raise ValueError(f"{token!r}: cutout side must be in 1..{image_size - 1}, got {length}")
        return cls(length)

    def _area(self, info: DataInfo) -> float:
        return (self.length / info.image_size) ** 2

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        area = self._area(info)
        return v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        import kornia.augmentation as K  # deferred: kornia is needed by augment_on: device only

        area = self._area(info)  # the square the loader erases: side round(sqrt(area * H * W))
        return K.RandomErasing(scale=(area, area), ratio=(1.0, 1.0), value=0.0, p=1.0)


@register
@dataclass(frozen=True)
class ClippedCutOut(CutOut):
    """The authors' CutOut: the centre uniform over the image, the square clipped at the border."""

    name = "ccutout"
    form = "ccutout[_L]"

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return ClippedCutout(self.length)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedClippedCutout(self.length)


def clip_cutouts(policy: str) -> str:
    """``policy`` with every ``cutout[_L]`` made the authors' clipped ``ccutout[_L]``."""
    heads = {CutOut.name: ClippedCutOut.name}
    return "-".join(heads.get(head, head) + rest for head, rest in (_split_head(t) for t in policy.split("-")))


def _split_head(token: str) -> tuple[str, str]:
    head, sep, rest = token.partition("_")
    return head, sep + rest
