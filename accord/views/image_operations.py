"""The image operations among the policy tokens (uint8 in, uint8 out), each one class: its grammar, its loader
transform and its device transform.

The loader runs torchvision v2's own transforms where torchvision has the operation (RandAugment, AutoAugment,
TrivialAugmentWide, AugMix, ColorJitter); the device runs accord's batched versions of them, which draw every
image's operations on their own (:mod:`.batched_policies`, :mod:`.batched_photometric`). The papers' own
policies (``tfrandaug``, ``autoaug_agmax``) are one implementation (:mod:`.author_policies`) in both places.
Registered in this order, which is also the order reports list augmentations in (:data:`accord.results.AUG_ORDER`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from . import author_policies
from .augmentation import Augmentation, PerImage, parse_numbers, register
from .augmentation_spaces import AUTOAUGMENT_POLICIES
from .batched_photometric import BatchedColorJitter
from .batched_policies import BatchedAugMix, BatchedAutoAugment, BatchedRandAugment, BatchedTrivialAugment

MAX_MAGNITUDE = 30  # RandAugment's magnitude bins are 0..30 (torchvision's 31); the TF scale extrapolates to 30
MAX_OPS = 30  # operations per image: more only multiplies the loader's time
AUGMIX_SEVERITIES = range(1, 11)  # torchvision's AugMix


@register
@dataclass(frozen=True)
class AutoAugment(Augmentation):
    """AutoAugment with a learned policy (``None``: the data set's, ``DatasetFacts.autoaugment``: CIFAR-10's for
    28-32 px images, ImageNet's otherwise); ``agmax``: the AgMax authors' own version (:mod:`.author_policies`)."""

    name = "autoaug"
    form = "autoaug[_agmax][" + "|".join(f"_{p}" for p in AUTOAUGMENT_POLICIES) + "]"

    policy: str | None = None
    agmax: bool = False

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> AutoAugment:
        agmax = bool(args) and args[0] == "agmax"
        args = args[1:] if agmax else args
        if len(args) > 1 or (args and args[0] not in AUTOAUGMENT_POLICIES):
            raise ValueError(
                f"{token!r}: expected {cls.form} (AutoAugment policy one of {', '.join(AUTOAUGMENT_POLICIES)})"
            )
        return cls(args[0] if args else None, agmax)

    def policy_for(self, default: str) -> str:
        """The token's own policy, else ``default`` (the data set's)."""
        return self.policy or default

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        if self.agmax:
            return PerImage(self.device(info))
        return v2.AutoAugment(v2.AutoAugmentPolicy(self.policy_for(str(info.autoaugment))))

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        policy = self.policy_for(str(info.autoaugment))
        return author_policies.AgMaxAutoAugment(policy) if self.agmax else BatchedAutoAugment(policy)


def _with_probability(token: str, args: list[str], form: str) -> tuple[int, int, float]:
    """``N_M[_pP]`` -> (N, M, P); (2, 9, 1.0) without arguments."""
    p = 1.0
    if len(args) == 3 and args[2].startswith("p"):
        try:
            p = float(args[2][1:])
        except ValueError:
            p = -1.0
        args = args[:2]
    n, m = (int(a) for a in args) if len(args) == 2 and all(a.isdigit() for a in args) else (-1, -1)
    if args and not (0 <= n <= MAX_OPS and 0 <= m <= MAX_MAGNITUDE) or len(args) not in (0, 2) or not 0 <= p <= 1:
        raise ValueError(f"{token!r}: expected {form} with N in 0..{MAX_OPS}, M in 0..{MAX_MAGNITUDE} and P in [0, 1]")
    return (n, m, p) if args else (2, 9, p)


@register
@dataclass(frozen=True)
class RandAugment(Augmentation):
    """torchvision's RandAugment(num_ops, magnitude of 31 bins), applied as a whole with probability ``p``."""

    name = "randaug"
    form = "randaug[_N_M[_pP][_bilinear]]"

    num_ops: int = 2
    magnitude: int = 9
    p: float = 1.0
    bilinear: bool = False  # nearest (torchvision's default) or bilinear interpolation

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> RandAugment:
        bilinear = bool(args) and args[-1] == "bilinear"
        return cls(*_with_probability(token, args[:-1] if bilinear else args, cls.form), bilinear)

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        mode = v2.InterpolationMode.BILINEAR if self.bilinear else v2.InterpolationMode.NEAREST
        randaug = v2.RandAugment(num_ops=self.num_ops, magnitude=self.magnitude, interpolation=mode)
        return randaug if self.p == 1.0 else v2.RandomApply([randaug], p=self.p)

    def device_refusal(self) -> str:
        if self.p != 1.0 or self.bilinear:
            return "randaug's _pP and _bilinear forms are made in the loader only"
        return ""

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedRandAugment(self.num_ops, self.magnitude)


@register
@dataclass(frozen=True)
class TFRandAugment(Augmentation):
    """TensorFlow's reference RandAugment(N, M) on its 0-10 level scale (:mod:`.author_policies`), each layer with
    probability ``p``; colour images only."""

    name = "tfrandaug"
    form = "tfrandaug[_N_M[_pP]]"
    colour_only = True

    num_ops: int = 2
    magnitude: int = 9
    p: float = 1.0

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> TFRandAugment:
        return cls(*_with_probability(token, args, cls.form))

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return author_policies.TFRandAugment(self.num_ops, self.magnitude, self.p)


@register
@dataclass(frozen=True)
class TrivialAugment(Augmentation):
    """torchvision's TrivialAugmentWide."""

    name = "trivialaug"
    form = "trivialaug"

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return v2.TrivialAugmentWide()

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedTrivialAugment()


@register
@dataclass(frozen=True)
class AugMix(Augmentation):
    """torchvision's AugMix at ``severity`` (1-10)."""

    name = "augmix"
    form = "augmix[_S]"

    severity: int = 3

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> AugMix:
        if len(args) > 1 or not all(a.isdigit() and int(a) in AUGMIX_SEVERITIES for a in args):
            raise ValueError(f"{token!r}: expected {cls.form} with S in 1..10")
        return cls(int(args[0]) if args else 3)

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return v2.AugMix(severity=self.severity)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedAugMix(self.severity)


@register
@dataclass(frozen=True)
class ColorJitter(Augmentation):
    """torchvision's ColorJitter(brightness, contrast, saturation)."""

    name = "jitter"
    form = "jitter[_B_C_S]"

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4

    @classmethod
    def parse(cls, token: str, args: list[str], image_size: int) -> ColorJitter:
        return cls(*parse_numbers(token, args, (0, 3), cls.form))

    def loader(self, info: DataInfo) -> Callable[[Any], Any]:
        return v2.ColorJitter(brightness=self.brightness, contrast=self.contrast, saturation=self.saturation)

    def device(self, info: DataInfo) -> Callable[[Tensor], Tensor]:
        return BatchedColorJitter(self.brightness, self.contrast, self.saturation)
