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

import torch
from PIL import Image
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from .author_policies import PerImage, build_author_operation, is_author_operation
from .cutout import ClippedCutout
from .eval_crop import eval_geometry
from .lighting import Lighting
from .tokens import (
    AugMix,
    AutoAugment,
    ColorJitter,
    Policy,
    RandAugment,
    TrivialAugment,
    parse_policy,
)

AUTOAUGMENT_POLICIES = {
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
}


def geometry_transforms(policy: Policy, info: DataInfo) -> list[Callable]:
    ops: list[Callable] = []
    for token in policy.geometry:
        if token == "crop":
            ops.append(
                v2.RandomCrop(info.image_size, padding=4)
                if info.train_crop == "pad"
                else v2.RandomResizedCrop(info.image_size)
            )
        else:
            ops.append(v2.RandomHorizontalFlip())
    if not info.fixed_size and "crop" not in policy.geometry:
        ops[:0] = eval_geometry(info)
    return ops


def operation_transforms(policy: Policy, info: DataInfo) -> list[Callable]:
    ops: list[Callable] = []
    for op in policy.operations:
        if is_author_operation(op):
            ops.append(PerImage(build_author_operation(op, str(info.autoaugment))))
        elif isinstance(op, RandAugment):
            mode = v2.InterpolationMode.BILINEAR if op.bilinear else v2.InterpolationMode.NEAREST
            randaug = v2.RandAugment(num_ops=op.num_ops, magnitude=op.magnitude, interpolation=mode)
            ops.append(randaug if op.p == 1.0 else v2.RandomApply([randaug], p=op.p))
        elif isinstance(op, ColorJitter):
            ops.append(v2.ColorJitter(brightness=op.brightness, contrast=op.contrast, saturation=op.saturation))
        elif isinstance(op, AutoAugment):
            ops.append(v2.AutoAugment(AUTOAUGMENT_POLICIES[op.policy_for(str(info.autoaugment))]))
        elif isinstance(op, TrivialAugment):
            ops.append(v2.TrivialAugmentWide())
        elif isinstance(op, AugMix):
            ops.append(v2.AugMix(severity=op.severity))
        else:
            raise ValueError(f"no loader transform for {op}")
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
