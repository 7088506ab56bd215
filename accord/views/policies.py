"""Augmentation policies named by short specs, built from torchvision v2 transforms.

A spec is a ``-``-separated list of tokens applied in this order: geometry (``crop``, ``flip``),
then one or more image operations, then conversion to float and normalisation, then ``cutout``::

    crop-flip                     standard: pad-4 random crop (28-32 px) or RandomResizedCrop, flip
    crop-flip-randaug_2_14-cutout RandAugment(num_ops=2, magnitude=14) and a half-side CutOut
    crop-flip-autoaug             AutoAugment (CIFAR-10 policy for small images, ImageNet otherwise;
                                  autoaug_imagenet / autoaug_cifar10 / autoaug_svhn pick one)
    crop-flip-trivialaug          TrivialAugmentWide
    crop-flip-augmix              AugMix (augmix_S sets the severity, default 3)
    standard                      alias of crop-flip
    none                          no augmentation (evaluation geometry for large images)

CutOut (DeVries & Taylor, 2017) is torchvision's RandomErasing of one square of zeros on the
normalised image, side ``cutout_L`` or half the image side by default (16 px at 32, 112 at 224).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from ..data.datasets import DataInfo

GEOMETRY = ("crop", "flip")
AUTOAUGMENT_POLICIES = {
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
}
TOKENS = (
    "crop, flip, standard, none, randaug[_N_M], autoaug[_imagenet|_cifar10|_svhn], trivialaug, augmix[_S], cutout[_L]"
)


@dataclass(frozen=True)
class Policy:
    """A parsed spec: its geometric part and the rest, kept apart so views can share a crop."""

    geometry: tuple[str, ...]
    operations: tuple[str, ...]
    cutout: int | None  # side in px, or None


def parse_policy(spec: str, image_size: int) -> Policy:
    tokens = [t for t in spec.replace("standard", "crop-flip").split("-") if t and t != "none"]
    geometry, operations, cutout = [], [], None
    for token in tokens:
        head, *args = token.split("_")
        if token in GEOMETRY:
            geometry.append(token)
        elif head in ("randaug", "autoaug", "trivialaug", "augmix"):
            _check_args(token, head, args)
            operations.append(token)
        elif head == "cutout":
            if len(args) > 1 or (args and not args[0].isdigit()):
                raise ValueError(f"policy {spec!r}: expected cutout or cutout_L with L a side in pixels, got {token!r}")
            cutout = int(args[0]) if args else image_size // 2
            if not 0 < cutout < image_size:  # RandomErasing cannot erase the whole image
                raise ValueError(f"policy {spec!r}: cutout side must be in 1..{image_size - 1}, got {cutout}")
        else:
            raise ValueError(f"policy {spec!r}: unknown token {token!r}; valid tokens: {TOKENS}")
    return Policy(tuple(geometry), tuple(operations), cutout)


def _check_args(token: str, head: str, args: list[str]) -> None:
    if head == "autoaug":
        if len(args) > 1 or (args and args[0] not in AUTOAUGMENT_POLICIES):
            raise ValueError(f"{token!r}: AutoAugment policy must be one of {', '.join(AUTOAUGMENT_POLICIES)}")
        return
    allowed = {"randaug": (0, 2), "trivialaug": (0,), "augmix": (0, 1)}[head]
    if len(args) not in allowed or not all(a.isdigit() for a in args):
        raise ValueError(
            f"{token!r}: expected {head}" + {"randaug": "[_N_M]", "trivialaug": "", "augmix": "[_S]"}[head]
        )


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
        if head == "randaug":
            n, m = (int(a) for a in args) if args else (2, 9)
            ops.append(v2.RandAugment(num_ops=n, magnitude=m))
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
    if policy.cutout:
        area = (policy.cutout / info.image_size) ** 2
        ops.append(v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0))
    return ops


def eval_geometry(info: DataInfo) -> list[Callable]:
    """ImageNet evaluation: resize the short side to ``size + 32``, then centre crop ``size``."""
    return [] if info.small else [v2.Resize(info.image_size + 32), v2.CenterCrop(info.image_size)]


def build_policy(spec: str, info: DataInfo, geometry: bool = True) -> v2.Compose:
    """The full training pipeline of ``spec`` (without its geometric part when ``geometry`` is off)."""
    policy = parse_policy(spec, info.image_size)
    ops = (geometry_transforms(policy, info) if geometry else []) + operation_transforms(policy, info)
    return v2.Compose(ops + finishing_transforms(policy, info))


def build_eval_transform(info: DataInfo) -> v2.Compose:
    return v2.Compose(eval_geometry(info) + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)])
