"""The augmentation spaces of torchvision's RandAugment, TrivialAugmentWide, AutoAugment and AugMix, and AutoAugment's
learned policies, stated here as accord's own data.

torchvision keeps these tables in private attributes (``_AUGMENTATION_SPACE``, ``AutoAugment._policies``) that a
release may change without notice; accord's batched policies read these copies instead, and
tests/test_augmentation_spaces.py checks that they equal the installed torchvision's, so a change there fails a
test rather than the views. Each space maps an operation name to ``(magnitudes, signed)``: ``magnitudes(bins,
height, width)`` gives the magnitude of every bin (``None``: the operation takes none), ``signed`` whether a
random sign is drawn. The policies (Cubuk et al., *AutoAugment*, CVPR 2019, the ImageNet, CIFAR-10 and SVHN
policies) are 25 sub-policies of two ``(operation, probability, magnitude bin)`` steps each.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Magnitudes = Callable[[int, int, int], Tensor | None]
Space = dict[str, tuple[Magnitudes, bool]]
SubPolicy = tuple[tuple[str, float, int | None], tuple[str, float, int | None]]


def _none(bins: int, height: int, width: int) -> None:
    return None


def _up_to(top: float) -> Magnitudes:
    """``bins`` magnitudes evenly from 0 to ``top``."""
    return lambda bins, height, width: torch.linspace(0.0, top, bins)


def _solarize(bins: int, height: int, width: int) -> Tensor:
    return torch.linspace(1.0, 0.0, bins)  # the threshold, as a fraction of the image's largest value


def _posterize(start: int, span: int) -> Magnitudes:
    """Bits kept: from ``start`` down by ``span`` over the bins, rounded."""
    return lambda bins, height, width: (start - (torch.arange(bins) / ((bins - 1) / span))).round().int()


def _translate(fraction: float) -> tuple[Magnitudes, Magnitudes]:
    """TranslateX/Y up to ``fraction`` of the image's width/height."""
    return (
        lambda bins, height, width: torch.linspace(0.0, fraction * width, bins),
        lambda bins, height, width: torch.linspace(0.0, fraction * height, bins),
    )


_RANDAUG_X, _RANDAUG_Y = _translate(150.0 / 331.0)
_AUGMIX_X, _AUGMIX_Y = _translate(1.0 / 3.0)
_ENHANCE = ("Brightness", "Color", "Contrast", "Sharpness")

RANDAUGMENT_SPACE: Space = {
    "Identity": (_none, False),
    "ShearX": (_up_to(0.3), True),
    "ShearY": (_up_to(0.3), True),
    "TranslateX": (_RANDAUG_X, True),
    "TranslateY": (_RANDAUG_Y, True),
    "Rotate": (_up_to(30.0), True),
    **{name: (_up_to(0.9), True) for name in _ENHANCE},
    "Posterize": (_posterize(8, 4), False),
    "Solarize": (_solarize, False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}

TRIVIALAUGMENT_SPACE: Space = {
    "Identity": (_none, False),
    "ShearX": (_up_to(0.99), True),
    "ShearY": (_up_to(0.99), True),
    "TranslateX": (_up_to(32.0), True),
    "TranslateY": (_up_to(32.0), True),
    "Rotate": (_up_to(135.0), True),
    **{name: (_up_to(0.99), True) for name in _ENHANCE},
    "Posterize": (_posterize(8, 6), False),
    "Solarize": (_solarize, False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
}

AUTOAUGMENT_SPACE: Space = {
    **{name: value for name, value in RANDAUGMENT_SPACE.items() if name != "Identity"},
    "Invert": (_none, False),
}

AUGMIX_SPACE: Space = {
    "ShearX": (_up_to(0.3), True),
    "ShearY": (_up_to(0.3), True),
    "TranslateX": (_AUGMIX_X, True),
    "TranslateY": (_AUGMIX_Y, True),
    "Rotate": (_up_to(30.0), True),
    "Posterize": (_posterize(4, 4), False),
    "Solarize": (_solarize, False),
    "AutoContrast": (_none, False),
    "Equalize": (_none, False),
    **{name: (_up_to(0.9), True) for name in _ENHANCE},  # AugMix(all_ops=True), torchvision's default
}

AUTOAUGMENT_POLICIES: dict[str, tuple[SubPolicy, ...]] = {
    "imagenet": (
        (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
        (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Equalize", 0.4, None), ("Rotate", 0.8, 8)),
        (("Solarize", 0.6, 3), ("Equalize", 0.6, None)),
        (("Posterize", 0.8, 5), ("Equalize", 1.0, None)),
        (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)),
        (("Equalize", 0.6, None), ("Posterize", 0.4, 6)),
        (("Rotate", 0.8, 8), ("Color", 0.4, 0)),
        (("Rotate", 0.4, 9), ("Equalize", 0.6, None)),
        (("Equalize", 0.0, None), ("Equalize", 0.8, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
        (("Color", 0.8, 8), ("Solarize", 0.8, 7)),
        (("Sharpness", 0.4, 7), ("Invert", 0.6, None)),
        (("ShearX", 0.6, 5), ("Equalize", 1.0, None)),
        (("Color", 0.4, 0), ("Equalize", 0.6, None)),
        (("Equalize", 0.4, None), ("Solarize", 0.2, 4)),
        (("Solarize", 0.6, 5), ("AutoContrast", 0.6, None)),
        (("Invert", 0.6, None), ("Equalize", 1.0, None)),
        (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
        (("Equalize", 0.8, None), ("Equalize", 0.6, None)),
    ),
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
}
