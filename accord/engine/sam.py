"""Sharpness-aware minimisation (SAM; Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
Generalization", ICLR 2021), the optimizer of Tied-Augment's Tied-SAM setting.

One update: the gradient g at the weights w, a step up to ``w + e`` with ``e = rho * g / ||g||`` (adaptive SAM,
Kwon et al. 2021: ``e = rho * w^2 * g / ||w * g||``), the gradient there, back to w, and the base optimizer's
step with that gradient. It follows the Tied-Augment authors' ``SAM`` (ekurtulus/tied-augment
``pytorch/supervised/optimization.py#L9-L63``, after davda54/sam): one norm over every parameter with a
gradient, ``1e-12`` added to it. torch has no SAM; the base optimizer is accord's (SGD, or timm's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


class SAM(torch.optim.Optimizer):
    """``base`` made sharpness-aware; its param groups, state and checkpoints are the base optimizer's own.

    Use :meth:`sharpness_pass` after the first backward and before gradient clipping and :meth:`step`.
    """

    def __init__(self, base: torch.optim.Optimizer, rho: float, adaptive: bool = False) -> None:
        if rho < 0:
            raise ValueError(f"SAM's rho must not be negative, got {rho}")
        self.base, self.rho, self.adaptive = base, rho, adaptive
        super().__init__(base.param_groups, {})
        self.param_groups = base.param_groups  # the scheduler's lr changes reach the base
        self.state = base.state

    def _scaled(self, p: Tensor) -> Tensor:
        return p.grad * p.abs() if self.adaptive else p.grad  # type: ignore[operator, return-value]

    @torch.no_grad()
    def sharpness_pass(self, loss_again: Callable[[], Tensor]) -> None:
        """Move to ``w + e`` (from the current gradients), replace the gradients by those of
        ``loss_again()`` there, and move back to ``w``."""
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            return
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(self._scaled(p)) for p in params]))
        scale = self.rho / (norm + 1e-12)
        saved = [p.detach().clone() for p in params]
        for p in params:
            p.add_(self._scaled(p) * (p.abs() if self.adaptive else 1.0) * scale.to(p))
        self.base.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss_again().backward()
        for p, w in zip(params, saved, strict=True):
            p.copy_(w)  # back to w exactly, as the authors' old_p

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """The base optimizer's step (with the gradients :meth:`sharpness_pass` left)."""
        return self.base.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups, self.state = self.base.param_groups, self.base.state
