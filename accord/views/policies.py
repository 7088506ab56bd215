"""Augmentation policies named by short strings, built from torchvision v2 transforms.

A policy is a ``-``-separated list of tokens applied by stage (:mod:`.augmentation`): geometry (``crop``, ``flip``),
then one or more image operations, then conversion to float, ``lighting``, normalisation, then ``cutout``. Each
token is one registered class (:mod:`.image_operations`, :mod:`.pipeline_steps`) whose ``loader`` form this module
puts in that order::

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
from .augmentation import Stage
from .eval_crop import eval_geometry
from .tokens import Policy, parse_policy


def stage_transforms(parsed: Policy, stage: Stage, info: DataInfo) -> list[Callable]:
    """The loader transforms of the parsed policy's augmentations of ``stage``, in the order written."""
    return [augmentation.loader(info) for augmentation in parsed.at(stage)]


def geometry_transforms(parsed: Policy, info: DataInfo) -> list[Callable]:
    """The geometry's loader transforms of a parsed policy; images of any size without a sizing one (``crop``)
    first get the evaluation resize and centre crop."""
    ops = stage_transforms(parsed, "geometry", info)
    if not info.fixed_size and not any(a.sizes for a in parsed.at("geometry")):
        ops[:0] = eval_geometry(info)
    return ops


class TensorImagesOnly:
    """The first step of accord's pipelines, which take uint8 ``(C, H, W)`` tensors: a PIL image (what
    torchvision's and timm's datasets give) is a TypeError that says what to do, instead of one from
    ``Normalize`` at the end of the pipeline. Tensors pass untouched."""

    def __call__(self, image: object) -> object:
        if isinstance(image, Image.Image):
            raise TypeError(
                "accord's view pipelines take uint8 (C, H, W) tensors, not PIL images: build the views with "
                "accord.timm_loop.policy_views(...), which converts them, or give the dataset a PILToTensor()"
            )
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def build_policy(policy: str, info: DataInfo, geometry: bool = True) -> v2.Compose:
    """The full training pipeline of ``policy`` (without its geometric part when ``geometry`` is off): the
    geometry, the image operations, conversion to float, the float stage, normalisation, the normalised stage."""
    parsed = parse_policy(policy, info.image_size, info.in_chans)
    return v2.Compose(
        [
            TensorImagesOnly(),
            *(geometry_transforms(parsed, info) if geometry else []),
            *stage_transforms(parsed, "uint8", info),
            v2.ToDtype(torch.float32, scale=True),
            *stage_transforms(parsed, "float", info),
            v2.Normalize(info.mean, info.std),
            *stage_transforms(parsed, "normalised", info),
        ]
    )


def build_eval_transform(info: DataInfo) -> v2.Compose:
    finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std)]
    return v2.Compose([TensorImagesOnly(), *eval_geometry(info), *finish])
