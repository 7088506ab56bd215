"""Augmentation policies named by short specs, built from torchvision v2 transforms.

A spec is a ``-``-separated list of tokens applied in this order: geometry (``crop``, ``flip``),
then one or more image operations, then conversion to float and normalisation, then ``cutout``::

    crop-flip                     standard: pad-4 random crop (28-32 px) or RandomResizedCrop, flip
    crop-flip-randaug_2_14-cutout RandAugment(num_ops=2, magnitude=14) and a half-side CutOut
    crop-flip-autoaug             AutoAugment (CIFAR-10 policy for small images, ImageNet otherwise;
                                  autoaug_imagenet / autoaug_cifar10 / autoaug_svhn pick one)
    crop-flip-autoaug_agmax       the AgMax authors' own AutoAugment: the same sub-policies, their magnitude mapping
                                  and PIL's colour ops (:mod:`~.author_policies`); autoaug_agmax_imagenet etc.
    flip-tfrandaug_2_14           TensorFlow's reference RandAugment(N=2, M=14) on TF's 0-10 level scale, the
                                  Tied-Augment ImageNet views (tfrandaug_N_M_pP: each layer with probability P)
    crop-flip-trivialaug          TrivialAugmentWide
    crop-flip-augmix              AugMix (augmix_S sets the severity, default 3)
    crop-flip-randaug_2_14_p0.5_bilinear RandAugment applied as a whole with probability 0.5, bilinear
                                  (the Tied-Augment authors' ``RandomApply(RandAugment(N, M, bicubic), p)``;
                                  bicubic rotation and shear need PIL images, the closest on tensors is bilinear)
    crop-flip-jitter-lighting     ColorJitter(0.4, 0.4, 0.4) (jitter_B_C_S) and AlexNet PCA lighting, std 0.1
                                  (lighting_STD) on the float image before normalisation: the AgMax ImageNet pipeline
    standard                      alias of crop-flip
    none                          no augmentation (evaluation geometry for large images)

CutOut (DeVries & Taylor, 2017) is torchvision's RandomErasing of one square of zeros on the
normalised image, side ``cutout_L`` or half the image side by default (16 px at 32, 112 at 224), the
square always inside the image. ``ccutout[_L]`` is the authors' CutOut (both AgMax's and Tied-Augment's):
the centre uniform over the image and the square clipped at the border (:class:`~.cutout.ClippedCutout`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from .author_policies import PerImage, autoaug_args, build_author_operation, is_author_token, tfrandaug_args
from .cutout import ClippedCutout
from .lighting import Lighting

GEOMETRY = ("crop", "flip")
AUTOAUGMENT_POLICIES = {
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
}
TOKENS = (
    "crop, flip, standard, none, randaug[_N_M[_pP][_bilinear]], tfrandaug[_N_M[_pP]], "
    "autoaug[_agmax][_imagenet|_cifar10|_svhn], trivialaug, augmix[_S], jitter[_B_C_S], lighting[_STD], cutout[_L], "
    "ccutout[_L]"
)


@dataclass(frozen=True)
class Policy:
    """A parsed spec: its geometric part and the rest, kept apart so views can share a crop."""

    geometry: tuple[str, ...]
    operations: tuple[str, ...]
    cutout: int | None  # side in px, or None
    clip_cutout: bool = False  # the authors' CutOut, clipped at the border
    lighting: float | None = None  # PCA lighting std, on the float image before normalisation


def parse_policy(spec: str, image_size: int) -> Policy:
    tokens = [t for t in spec.replace("standard", "crop-flip").split("-") if t and t != "none"]
    geometry, operations, cutout, clip, lighting = [], [], None, False, None
    for token in tokens:
        head, *args = token.split("_")
        if token in GEOMETRY:
            geometry.append(token)
        elif head in ("randaug", "tfrandaug", "autoaug", "trivialaug", "augmix", "jitter"):
            _check_args(token, head, args)
            operations.append(token)
        elif head == "lighting":
            values = _numbers(token, args, (0, 1))
            lighting = values[0] if values else 0.1
        elif head in ("cutout", "ccutout"):
            if len(args) > 1 or (args and not args[0].isdigit()):
                raise ValueError(f"policy {spec!r}: expected {head} or {head}_L with L a side in pixels, got {token!r}")
            clip = head == "ccutout"
            cutout = int(args[0]) if args else image_size // 2
            if not 0 < cutout < image_size:  # RandomErasing cannot erase the whole image
                raise ValueError(f"policy {spec!r}: cutout side must be in 1..{image_size - 1}, got {cutout}")
        else:
            raise ValueError(f"policy {spec!r}: unknown token {token!r}; valid tokens: {TOKENS}")
    return Policy(tuple(geometry), tuple(operations), cutout, clip, lighting)


def _numbers(token: str, args: list[str], counts: tuple[int, ...]) -> list[float]:
    """The non-negative numbers of ``jitter_B_C_S`` / ``lighting_STD``; ValueError naming the token's form."""
    form = {"jitter": "jitter[_B_C_S]", "lighting": "lighting[_STD]"}[token.split("_")[0]]
    try:
        values = [float(a) for a in args]
    except ValueError:
        values = [-1.0]
    if len(args) not in counts or not all(0.0 <= v < float("inf") for v in values):
        raise ValueError(f"{token!r}: expected {form} with non-negative numbers")
    return values


def randaug_args(token: str) -> tuple[int, int, float, bool]:
    """``randaug[_N_M[_pP][_bilinear]]`` -> (N, M, P, bilinear); (2, 9, 1.0, False) by default."""
    _, *args = token.split("_")
    bilinear = bool(args) and args[-1] == "bilinear"
    args = args[:-1] if bilinear else args
    p = 1.0
    if len(args) == 3 and args[2].startswith("p"):
        try:
            p = float(args[2][1:])
        except ValueError:
            p = -1.0
        args = args[:2]
    if len(args) not in (0, 2) or not all(a.isdigit() for a in args) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{token!r}: expected randaug[_N_M[_pP][_bilinear]] with P in [0, 1]")
    n, m = (int(a) for a in args) if args else (2, 9)
    return n, m, p, bilinear


def _check_args(token: str, head: str, args: list[str]) -> None:
    if head == "randaug":
        randaug_args(token)
        return
    if head == "jitter":
        _numbers(token, args, (0, 3))
        return
    if head == "autoaug":
        autoaug_args(token)
        return
    if head == "tfrandaug":
        tfrandaug_args(token)
        return
    allowed = {"trivialaug": (0,), "augmix": (0, 1)}[head]
    if len(args) not in allowed or not all(a.isdigit() for a in args):
        raise ValueError(f"{token!r}: expected {head}" + {"trivialaug": "", "augmix": "[_S]"}[head])


def geometry_transforms(policy: Policy, info: DataInfo) -> list[Callable]:
    ops: list[Callable] = []
    for token in policy.geometry:
        if token == "crop":
            ops.append(
                v2.RandomCrop(info.image_size, padding=4) if info.small else v2.RandomResizedCrop(info.image_size)
            )
        else:
            ops.append(v2.RandomHorizontalFlip())
    if not info.small and "crop" not in policy.geometry:
        ops[:0] = eval_geometry(info)
    return ops


def operation_transforms(policy: Policy, info: DataInfo) -> list[Callable]:
    ops: list[Callable] = []
    for token in policy.operations:
        head, *args = token.split("_")
        if is_author_token(token):
            ops.append(PerImage(build_author_operation(token, info.small)))
        elif head == "randaug":
            n, m, p, bilinear = randaug_args(token)
            mode = v2.InterpolationMode.BILINEAR if bilinear else v2.InterpolationMode.NEAREST
            randaug = v2.RandAugment(num_ops=n, magnitude=m, interpolation=mode)
            ops.append(randaug if p == 1.0 else v2.RandomApply([randaug], p=p))
        elif head == "jitter":
            b, c, s = (float(a) for a in args) if args else (0.4, 0.4, 0.4)
            ops.append(v2.ColorJitter(brightness=b, contrast=c, saturation=s))
        elif head == "autoaug":
            name = args[0] if args else ("cifar10" if info.small else "imagenet")
            ops.append(v2.AutoAugment(AUTOAUGMENT_POLICIES[name]))
        elif head == "trivialaug":
            ops.append(v2.TrivialAugmentWide())
        else:
            ops.append(v2.AugMix(severity=int(args[0]) if args else 3))
    return ops


def finishing_transforms(policy: Policy, info: DataInfo) -> list[Callable]:
    ops: list[Callable] = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]
    if policy.lighting is not None:
        ops.insert(1, Lighting(policy.lighting))
    if policy.cutout and policy.clip_cutout:
        ops.append(ClippedCutout(policy.cutout))
    elif policy.cutout:
        area = (policy.cutout / info.image_size) ** 2
        ops.append(v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0))
    return ops


def eval_geometry(info: DataInfo) -> list[Callable]:
    """ImageNet evaluation: resize the short side to ``size + 32``, then centre crop ``size``."""
    return [] if info.small else [v2.Resize(info.image_size + 32), v2.CenterCrop(info.image_size)]


class TensorImagesOnly:
    """The first step of accord's pipelines, which take uint8 ``(C, H, W)`` tensors: a PIL image (what
    torchvision's and timm's datasets give) is a TypeError that says what to do, instead of one from
    ``Normalize`` at the end of the pipeline. Tensors pass untouched."""

    def __call__(self, image: object) -> object:
        if isinstance(image, Image.Image):
            raise TypeError(
                "accord's view pipelines take uint8 (C, H, W) tensors, not PIL images: build the views with "
                "accord.timm.policy_views(...), which converts them, or give the dataset a PILToTensor()"
            )
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def build_policy(spec: str, info: DataInfo, geometry: bool = True) -> v2.Compose:
    """The full training pipeline of ``spec`` (without its geometric part when ``geometry`` is off)."""
    policy = parse_policy(spec, info.image_size)
    ops = (geometry_transforms(policy, info) if geometry else []) + operation_transforms(policy, info)
    return v2.Compose([TensorImagesOnly(), *ops, *finishing_transforms(policy, info)])


def build_eval_transform(info: DataInfo) -> v2.Compose:
    finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]
    return v2.Compose([TensorImagesOnly(), *eval_geometry(info), *finish])
