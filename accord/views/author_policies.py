"""The two papers' own augmentation policies, per image of a uint8 batch: AgMax's AutoAugment and the
TensorFlow-scale RandAugment of the Tied-Augment ImageNet views.

Both are :class:`~accord.views.batched_policies.BatchedPolicy` subclasses, so they run on the training device
(:class:`~accord.views.batched.BatchedViews`) and, one image at a time through
:class:`~accord.views.augmentation.PerImage`, in the loader
(:mod:`accord.views.policies`): one implementation, the same draws.

``autoaug_agmax[_imagenet|_cifar10|_svhn]`` is roatienza/agmax ``dataset/auto_augment.py``: torchvision's
AutoAugment sub-policies (the same tables but one magnitude: the CIFAR-10 policy's 14th sub-policy has Color at 6,
torchvision's at 8), each operation applied when a uniform draw is below its probability,
with the authors' magnitude mapping ``level(low, high, m) = m / 10 * (high - low) + low``:

    ShearX/Y     tan 0.3 m/10, random sign            Rotate       30 m/10 degrees, random sign (PIL nearest)
    TranslateX/Y 0.45 m/10 of the width/height, random sign; PIL's nearest affine moves by round(|v|) pixels
    Color, Contrast, Brightness, Sharpness: PIL enhance factor 0.1 + 1.8 m/10 (0.1 at m = 0; no sign)
    Posterize    int(4 + 4 m/10) bits                 Solarize     threshold 256 m/10 (levels >= it inverted)
    AutoContrast, Equalize, Invert: PIL's, no magnitude

(torchvision's: shear 0.3 m/9, rotate 30 m/9, translate 150/331 m/9 of the size, enhance 1 +- 0.9 m/9, posterize
8 - round(4 m/9) bits, solarize threshold 255 (1 - m/9).) The colour ops are PIL's (:mod:`accord.views.pil_ops`),
the geometric ones torchvision's nearest affine (:mod:`accord.views.batched_ops`), which samples PIL's pixel except
where a sampling point lies on a rounding tie; fill zeros as PIL's.

``tfrandaug[_N_M[_pP]]`` is ``distort_image_with_randaugment(image, N, M, P)`` of ekurtulus/tied-augment
``flax/supervised/augmentations.py`` (TensorFlow's reference RandAugment): N layers, each a uniform choice of 13
operations (no Identity, no Invert) applied with probability P, at level M of a 0-10 scale (M above 10 is
extrapolated by the same formulas, as the reference does):

    Rotate       30 M/10 degrees, random sign         ShearX/Y     0.3 M/10, random sign
    TranslateX/Y 100 M/10 pixels, random sign         Color, Contrast, Brightness, Sharpness: factor 0.1 + 1.8 M/10
    Posterize    int(4 M/10) bits kept                Solarize     threshold int(256 M/10) as a uint8 constant
    AutoContrast, Equalize: no magnitude

The Solarize threshold is a Python int that TensorFlow turns into a uint8 constant when it builds the graph, which
wraps it modulo 256 (M = 10 gives 0: every pixel inverted; M = 14 gives 358 - 256 = 102; the wrap is reported in
google-research/big_vision issue 110 for the same code). Below M = 3 Posterize keeps 0 bits, a shift by 8, which
TensorFlow's shift kernels clamp to 7 (no paper config goes that low). Fill is 128.
The ops are :mod:`accord.views.tf_ops`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import pil_ops
from .augmentation import PerImage as PerImage  # the loader form of both, one image at a time
from .batched_ops import OPS
from .batched_policies import BatchedAutoAugment, BatchedPolicy, Plan, Step
from .tf_ops import TF_OPS


def _agmax_levels(low: float, high: float) -> list[float]:
    """The authors' ``level(low, high, m)`` for m = 0..9, in Python floats as they compute it."""
    return [(m / 10.0) * (high - low) + low for m in range(10)]


def _table(values: list[float]):
    return lambda num_bins, height, width: torch.tensor(values, dtype=torch.float64)


def _translate(fraction_of: str):
    def pixels(num_bins: int, height: int, width: int) -> Tensor:
        size = width if fraction_of == "width" else height
        # PIL's nearest affine samples floor(x + 0.5 + v): a shift by v rounded half up
        return torch.tensor([math.floor(v * size + 0.5) for v in _agmax_levels(0.0, 0.45)], dtype=torch.float64)

    return pixels


AGMAX_SPACE = {
    "ShearX": (_table(_agmax_levels(0.0, 0.3)), True),
    "ShearY": (_table(_agmax_levels(0.0, 0.3)), True),
    "TranslateX": (_translate("width"), True),
    "TranslateY": (_translate("height"), True),
    "Rotate": (_table(_agmax_levels(0.0, 30.0)), True),
    "Brightness": (_table(_agmax_levels(0.1, 1.9)), False),
    "Color": (_table(_agmax_levels(0.1, 1.9)), False),
    "Contrast": (_table(_agmax_levels(0.1, 1.9)), False),
    "Sharpness": (_table(_agmax_levels(0.1, 1.9)), False),
    "Posterize": (_table([float(int(v)) for v in _agmax_levels(4.0, 8.0)]), False),
    "Solarize": (_table(_agmax_levels(0.0, 256.0)), False),
    "AutoContrast": (lambda num_bins, height, width: None, False),
    "Equalize": (lambda num_bins, height, width: None, False),
    "Invert": (lambda num_bins, height, width: None, False),
}
AGMAX_OPS = {
    **OPS,
    "Brightness": pil_ops.brightness,
    "Color": pil_ops.color,
    "Contrast": pil_ops.contrast,
    "Sharpness": pil_ops.sharpness,
    "AutoContrast": pil_ops.autocontrast,
    "Solarize": pil_ops.solarize,
}


# where the authors' sub-policies differ from torchvision's: (policy, sub-policy, op) -> their magnitude
AGMAX_POLICY_CHANGES = {("cifar10", 13, 1): 6}  # ('Color', 0.2, 6), dataset/auto_augment.py#L24; torchvision's 8


class AgMaxAutoAugment(BatchedAutoAugment):
    """AutoAugment(policy) as the AgMax authors wrote it (their tables and magnitudes above), per image."""

    augmentation_space = AGMAX_SPACE
    ops = AGMAX_OPS

    def __init__(self, policy: str = "imagenet") -> None:
        super().__init__(policy)
        for (name, sub, op), magnitude in AGMAX_POLICY_CHANGES.items():
            if name == self.policy:
                self.sub_bins[sub, op] = magnitude

    def __repr__(self) -> str:
        return f"AgMaxAutoAugment(policy={self.policy!r})"


def tf_levels(magnitude: int) -> dict[str, tuple[float, bool]]:
    """Each operation's argument at level ``magnitude`` and whether it takes a random sign, computed as
    ``level_to_arg`` of the reference does (Python floats; ``int()`` where it truncates)."""
    level = float(magnitude) / 10.0
    enhance = level * 1.8 + 0.1
    return {
        "AutoContrast": (0.0, False),
        "Equalize": (0.0, False),
        "Rotate": (level * 30.0, True),
        "Posterize": (float(int(level * 4)), False),
        "Solarize": (float(int(level * 256) % 256), False),
        "Color": (enhance, False),
        "Contrast": (enhance, False),
        "Brightness": (enhance, False),
        "Sharpness": (enhance, False),
        "ShearX": (level * 0.3, True),
        "ShearY": (level * 0.3, True),
        "TranslateX": (level * 100.0, True),
        "TranslateY": (level * 100.0, True),
    }


class TFRandAugment(BatchedPolicy):
    """TensorFlow's reference RandAugment(N, M, P) as the Tied-Augment ImageNet views run it, per image."""

    ops = TF_OPS
    bins = 1

    def __init__(self, num_ops: int = 2, magnitude: int = 9, probability: float = 1.0) -> None:
        super().__init__()
        if num_ops < 0 or magnitude < 0 or not 0.0 <= probability <= 1.0:
            raise ValueError("TensorFlow RandAugment needs num_ops >= 0, magnitude >= 0 and probability in [0, 1]")
        self.num_ops, self.magnitude, self.probability = num_ops, magnitude, probability
        levels = tf_levels(magnitude)
        self.augmentation_space = {name: (_table([value]), signed) for name, (value, signed) in levels.items()}

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        space, plan = self.space(height, width), Plan()
        for _ in range(self.num_ops):
            ops = torch.randint(len(space.names), (n,), generator=generator)
            magnitudes = space.magnitudes(ops, torch.zeros(n, dtype=torch.int64), generator)
            applied = torch.rand(n, generator=generator) < self.probability
            plan.steps.append(Step(torch.where(applied, ops, -1), magnitudes))
        return plan

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() == 4 and x.shape[1] != 3:
            raise ValueError(f"TensorFlow's RandAugment works on RGB images, got {x.shape[1]} channel(s)")
        return super().__call__(x, generator)

    def __repr__(self) -> str:
        return f"TFRandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, probability={self.probability})"
