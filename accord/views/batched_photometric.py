"""Colour jitter, PCA lighting and the authors' clipped CutOut on a whole batch, every image drawing its own.

torchvision's ``ColorJitter``, accord's :class:`~.lighting.Lighting` and :class:`~.cutout.ClippedCutout` draw one
parameter set per call, so on a batched tensor every image would get the same; kornia's ColorJitter draws per
image but applies the operations in one order for the batch and rounds differently from torchvision. These follow
the loader's per-image transforms (:mod:`accord.views.policies`) image by image:

- :class:`BatchedColorJitter`: each image a uniform factor in ``[max(0, 1 - x), 1 + x]`` for brightness, contrast
  and saturation and its own random order of the three (torchvision draws a permutation of four, hue being off),
  carried out by the same per-image brightness/contrast/colour operations as RandAugment's
  (:data:`~accord.views.batched_ops.OPS`, whose arithmetic is torchvision's);
- :class:`BatchedLighting`: ``alpha ~ N(0, std^2)`` per image, on the float image in [0, 1], unclamped;
- :class:`BatchedClippedCutout`: one square per image, centre uniform over the pixels, clipped at the border.

Plans are drawn on the CPU from torch's global CPU generator (as the image operations' are), so checkpoints that
save ``torch.get_rng_state()`` resume with the same views.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from .batched_policies import BatchedPolicy, Plan, Step
from .lighting import IMAGENET_EIGVAL, IMAGENET_EIGVEC


class BatchedColorJitter(BatchedPolicy):
    """``ColorJitter(brightness, contrast, saturation)`` per image on a uint8 batch (see the module docstring)."""

    NAMES = ("Brightness", "Contrast", "Color")  # torchvision's fn_idx 0, 1, 2 (3, hue, is off)

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4) -> None:
        super().__init__()
        self.strengths = (float(brightness), float(contrast), float(saturation))

    def space(self, height: int, width: int):  # noqa: ANN201 - the names apply_steps indexes
        return _Names(list(self.NAMES))

    def sample(self, n: int, height: int, width: int, generator: torch.Generator | None = None) -> Plan:
        order = torch.rand(n, 4, generator=generator).argsort(dim=1)  # a uniform permutation of 0..3 per image
        factors = torch.empty(n, 3)
        for k, x in enumerate(self.strengths):
            factors[:, k] = torch.rand(n, generator=generator) * (2 * x - max(0.0, x - 1.0)) + max(0.0, 1.0 - x)
        plan = Plan()
        for slot in range(4):
            ops = order[:, slot].clone()
            ops[ops == 3] = -1  # hue: nothing
            off = torch.tensor([x == 0.0 for x in self.strengths])
            ops[(ops >= 0) & off[ops.clamp_min(0)]] = -1  # a zero strength: torchvision skips the operation
            magnitude = factors.gather(1, ops.clamp_min(0).view(-1, 1)).view(-1) - 1.0  # OPS take factor - 1
            plan.steps.append(Step(ops, magnitude))
        return plan

    def __repr__(self) -> str:
        b, c, s = self.strengths
        return f"{type(self).__name__}(brightness={b}, contrast={c}, saturation={s})"


class _Names:
    """The operation names of a fixed space (what :func:`~.batched_policies.apply_steps` indexes)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names


class BatchedLighting(nn.Module):
    """AlexNet PCA lighting on a float ``(B, 3, H, W)`` batch in [0, 1], ``alpha ~ N(0, std^2)`` per image."""

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if not std >= 0:
            raise ValueError(f"lighting std must be >= 0, got {std}")
        self.std = float(std)
        basis = torch.tensor(IMAGENET_EIGVEC, dtype=torch.float64) * torch.tensor(IMAGENET_EIGVAL, dtype=torch.float64)
        self.register_buffer("basis", basis, persistent=False)  # delta = basis @ alpha

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != 3:
            raise ValueError(f"lighting needs RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
        alpha = torch.randn(x.shape[0], 3, dtype=torch.float64) * self.std  # drawn on the CPU, as the loader's
        basis = cast(Tensor, self.basis)  # a buffer
        delta = alpha.to(basis.device) @ basis.T
        return x + delta.to(x.dtype).view(-1, 3, 1, 1)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class BatchedClippedCutout(nn.Module):
    """One ``length`` square of ``value`` per image, centre uniform over the pixels, clipped at the border."""

    def __init__(self, length: int, value: float = 0.0) -> None:
        super().__init__()
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"cutout length must be a positive number of pixels, got {length!r}")
        self.length, self.value = length, value

    def forward(self, x: Tensor) -> Tensor:
        n, _, height, width = x.shape
        half = self.length // 2
        cy = torch.randint(height, (n,)).to(x.device).view(n, 1, 1)
        cx = torch.randint(width, (n,)).to(x.device).view(n, 1, 1)
        rows = torch.arange(height, device=x.device).view(1, height, 1)
        cols = torch.arange(width, device=x.device).view(1, 1, width)
        inside = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
        return x.masked_fill(inside.unsqueeze(1), self.value)

    def extra_repr(self) -> str:
        return f"length={self.length}, value={self.value}"
