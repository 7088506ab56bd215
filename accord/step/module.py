"""A view method's training step as one module: the multi-view model, the method's loss, the feature mixing of
``first`` mixing (Tied-Augment's view 2), mixed precision and the compile rule.

:class:`ViewStep` is what ``accord train``, timm's loop (:class:`accord.timm.ViewTask`) and ``accord bench`` call;
:func:`build_step` is the one place that assembles it (compiled if asked, in DistributedDataParallel under several
processes), so the three paths run the same code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..losses import MethodSpec
from ..models.multiview import MultiViewModel

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``bf16`` (CPU or GPU) or ``fp16`` (GPU, with a grad scaler) autocast of the forward pass."""
    if amp in AMP_DTYPES:
        return torch.autocast(device.type, dtype=AMP_DTYPES[amp])
    return contextlib.nullcontext()


class ViewStep(nn.Module):
    """The model and the method's loss as one module: ``step(x, target, feature_mix=None) -> (terms, logits)``.

    ``x`` is the view-major batch (rows ``[j*B, (j+1)*B)`` are view ``j``), ``target`` the ``B`` labels or mixed
    targets; ``feature_mix`` is the mixed-feature target of ``first`` mixing (only a method whose loss takes it).
    ``self.views`` is the :class:`~accord.models.MultiViewModel`, ``self.model`` the timm model inside it and
    ``self.criterion`` the loss. Wrapping this module (not the model alone) in DistributedDataParallel also keeps the
    loss's own parameters (AgMax's Q head) in sync. The model runs under ``amp`` autocast; the losses upcast.
    """

    def __init__(self, views: MultiViewModel, criterion: nn.Module, spec: MethodSpec, amp: str = "none") -> None:
        super().__init__()
        if amp != "none" and amp not in AMP_DTYPES:
            raise ValueError(f"amp must be one of none, {', '.join(AMP_DTYPES)}, got {amp!r}")
        self.views, self.criterion, self.spec, self.amp = views, criterion, spec, amp
        self._compiled: tuple[Callable[..., Any], Callable[..., Any]] | None = None

    @property
    def model(self) -> nn.Module:
        """The timm model (its state dict has timm's key names)."""
        return self.views.model

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def compile_step(self, backend: str = "inductor", mode: str | None = None, **options: Any) -> ViewStep:
        """``torch.compile`` the model and the loss, used by every later forward; the parameters stay these.

        A loss whose weights follow a schedule (``MethodSpec.progress``) stays eager: its weight is a float that
        changes every step, which would recompile the loss each time.
        """
        model = torch.compile(self.views, backend=backend, mode=mode, **options)
        loss = self.criterion if self.spec.progress else torch.compile(self.criterion, backend=backend, mode=mode)
        self._compiled = (model, loss)
        return self

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] for a loss with a weight schedule; a no-op for a method without one."""
        self.spec.set_progress(self.criterion, progress)

    def no_weight_decay(self) -> set[str]:
        """timm's optimizer factory: the model's no-decay names (e.g. position embeddings) under this prefix."""
        names = own() if callable(own := getattr(self.model, "no_weight_decay", None)) else set()
        return {f"views.model.{name}" for name in names}

    def forward(
        self, x: Tensor, target: Tensor, feature_mix: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[dict[str, Tensor], Tensor]:
        if not self.training:
            raise RuntimeError("the step computes training losses; evaluate its model (step.views) instead")
        if feature_mix is not None and not self.spec.takes_feature_mix:
            raise ValueError(f"{self.spec.name}'s loss takes no feature_mix (its forward has no such keyword)")
        views, loss = self._compiled or (self.views, self.criterion)
        with autocast(self.amp, x.device):
            out = views(x)
        extra = {"feature_mix": feature_mix} if feature_mix is not None else {}
        return loss(out.logits, target, out.features, **extra), out.logits

    def __getstate__(self) -> dict[str, Any]:
        """A copy (timm's EMA deep-copies the step) is eager: compiled callables hold this module's own."""
        state = self.__dict__.copy()
        state["_compiled"] = None
        return state


def build_step(
    views: MultiViewModel,
    criterion: nn.Module,
    spec: MethodSpec,
    *,
    amp: str = "none",
    compile: bool = False,
    distributed: bool = False,
    device: torch.device | None = None,
) -> nn.Module:
    """The module each update calls: a :class:`ViewStep`, compiled with ``compile``, in DistributedDataParallel
    with ``distributed`` (on ``device``)."""
    step = ViewStep(views, criterion, spec, amp)
    if compile:
        step.compile_step()
    return distribute(step, device) if distributed else step


def distribute(step: ViewStep, device: torch.device | None = None, **ddp_options: Any) -> DistributedDataParallel:
    """``step`` in DistributedDataParallel (model and loss together), on ``device``'s GPU if it is one."""
    if "device_ids" not in ddp_options:
        ddp_options["device_ids"] = [device.index] if device is not None and device.type == "cuda" else None
    return DistributedDataParallel(step, **ddp_options)


def find_step(module: nn.Module | None) -> ViewStep | None:
    """The :class:`ViewStep` inside DDP, ``torch.compile`` or EMA wrappers (``None`` without one)."""
    current = module
    while current is not None and not isinstance(current, ViewStep):
        current = getattr(current, "module", getattr(current, "_orig_mod", None))
    return current
