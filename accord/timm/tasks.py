"""accord's methods as timm training tasks (``timm.task.TrainingTask``).

timm's training loop runs a task: ``result = task(input, target)``, ``result["loss"].backward()``. A task owns the
trainable module that the optimizer, ``prepare_distributed`` (DDP), EMA and checkpoints see. Here that module,
:class:`ViewTrainable`, holds the timm model *and* the loss, so parameters a loss owns — AgMax's Q head (Atienza,
WACV 2022) — are optimised by ``create_optimizer_v2(task.get_trainable_module())``, averaged by DDP (the loss runs
inside the wrapped forward), kept in the EMA copy and saved in the checkpoint's ``task_state``. The evaluation
model (``task.get_eval_model()``) is the plain timm model, so ``state_dict`` keeps timm's key names (with
``bn_mode="split"`` it also holds timm's auxiliary BatchNorm layers, which ``accord.export`` drops).

A task is built for any registered method (:data:`accord.losses.METHODS`, a method registered at run time included)
from its :class:`~accord.losses.MethodSpec`: the loss with its own defaults, the number of views, the mixing rule.
The input is a view-major batch, timm's ``fast_collate`` layout for augmentation splits: with ``V`` views of ``B``
images, rows ``[j*B, (j+1)*B)`` are view ``j``. Targets are class indices or class probabilities, one row per image
(``B``) or one per row (``V*B``, as ``fast_collate`` repeats them); a batch that is not ``V`` views of the same
images is refused before any row is paired (:func:`~accord.timm.batch.check_view_batch`). A ``(B, V, C, H, W)`` batch
(torch's default collate of :class:`~accord.timm.MultiViewDataset`, timm's ``--no-prefetcher``) is taken as well.
The result is timm's dict: ``loss``, ``output`` (the ``V*B`` view-major logits, as timm's ``ClassificationTask``
returns them under augmentation splits) and every term of accord's loss (e.g. ``ce``, ``entropy``, ``l1`` for AgMax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from timm.task import TrainingTask
from timm.utils import unwrap_model
from torch import Tensor, nn

from ..losses import MethodSpec, method_spec
from ..models.multiview import BnMode, MultiViewModel
from ..views.mixing import MixedBatch
from .batch import check_view_batch, view_major


class ViewTrainable(nn.Module):
    """A timm model and an agreement loss in one module: the forward returns the loss terms and the logits.

    ``self.views.model`` is the unchanged timm model (``self.model`` for short); ``self.criterion`` the loss.
    """

    def __init__(self, model: nn.Module, criterion: nn.Module, num_views: int, bn_mode: BnMode = "concat") -> None:
        super().__init__()
        self.views = MultiViewModel(model, num_views, bn_mode)
        self.criterion = criterion

    @property
    def model(self) -> nn.Module:
        return self.views.model

    def no_weight_decay(self) -> set[str]:
        """timm's optimizer factory: the model's no-decay names (e.g. position embeddings) under this prefix."""
        names = own() if callable(own := getattr(self.model, "no_weight_decay", None)) else set()
        return {f"views.model.{name}" for name in names}

    def forward(
        self, input: Tensor, target: Tensor, feature_mix: Callable[[Tensor], Tensor] | None = None
    ) -> dict[str, Tensor]:
        if not self.training:
            raise RuntimeError("the task computes training losses; evaluate task.get_eval_model() instead")
        out = self.views(input)
        extra = {"feature_mix": feature_mix} if feature_mix is not None else {}
        terms = self.criterion(out.logits, target, out.features, **extra)
        return {**terms, "output": out.logits}


class ViewTask(TrainingTask):
    """A timm training task for a registered accord method on ``num_views`` views per image.

    Args:
        model: a timm model (``forward_features``/``forward_head``; any ``timm.create_model`` name).
        method: a method name of :data:`accord.losses.METHODS` or its :class:`~accord.losses.MethodSpec`.
        num_views: views per image (timm's ``--aug-splits``, whose 0 is one view); ``None``: the method's own (one
            for CE and LS).
            A method with a fixed view count refuses another one here, before the first step.
        smoothing: label smoothing of each view's cross-entropy (timm's ``--smoothing``); ``None`` keeps the
            loss's default (0.1 for ``ls``, 0 for the others).
        num_classes: classes of the loss (AgMax's Q head); ``None`` reads ``model.num_classes``.
        bn_mode: how BatchNorm sees the views (``concat``, ``split`` or ``separate``, see ``MultiViewModel``).
        device, dtype, verbose: as timm's ``TrainingTask``.
        **loss_options: the loss's options by keyword (e.g. ``dl_weight=2.0``, ``similarity="l1"``); an unknown
            one is refused naming the valid ones.

    ``forward(input, target, feature_mix=None)``: a view-aware mixer (:class:`accord.timm.LoopMixer`) hands the
    task Tied-Augment's mixed-feature target itself, so the loop calls ``task(input, target)`` as timm's does.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str | MethodSpec,
        num_views: int | None = None,
        smoothing: float | None = None,
        num_classes: int | None = None,
        bn_mode: BnMode = "concat",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        verbose: bool = True,
        **loss_options: Any,
    ) -> None:
        super().__init__(device=device, dtype=dtype, verbose=verbose)
        self.spec = method if isinstance(method, MethodSpec) else method_spec(method)
        self.num_views = self.spec.default_views() if num_views is None else max(num_views, 1)
        if self.spec.views is not None and self.num_views != self.spec.views:
            raise ValueError(
                f"method {self.spec.name!r} takes {self.spec.views} views per image, got num_views={self.num_views} "
                f"(timm: --aug-splits {self.spec.views})"
            )
        if smoothing is not None:
            loss_options = {**_smoothing_option(self.spec, smoothing), **loss_options}
        classes = num_classes or _num_classes(model)
        criterion = self.spec.build_loss(classes, self.num_views, **loss_options)
        self.num_classes = classes
        self.trainable_module: nn.Module = ViewTrainable(
            model, criterion.to(device=self.device), self.num_views, bn_mode
        )
        self._mixed: MixedBatch | None = None

    @property
    def method(self) -> str:
        return self.spec.name

    def prepare_distributed(self, device_ids: list | None = None, **ddp_kwargs: Any) -> ViewTask:
        """Wrap the model and the loss together in DDP, so the loss's own parameters are averaged too."""
        from torch.nn.parallel import DistributedDataParallel

        self.trainable_module = DistributedDataParallel(self.trainable_module, device_ids=device_ids, **ddp_kwargs)
        return self

    def _trainable(self, module: nn.Module | None) -> ViewTrainable | None:
        """The :class:`ViewTrainable` inside DDP, ``torch.compile`` or EMA wrappers (``None`` without one)."""
        current = module
        while current is not None and not isinstance(current, ViewTrainable):
            current = getattr(current, "module", getattr(current, "_orig_mod", None))
        return current

    def _own_trainable(self) -> ViewTrainable:
        """This task's :class:`ViewTrainable`, inside whatever wrapper :meth:`prepare_distributed` added."""
        trainable = self._trainable(self.trainable_module)
        if trainable is None:
            raise RuntimeError("the task's trainable module holds no ViewTrainable")
        return trainable

    def get_eval_model(self, module: nn.Module | None = None, ema: bool = False) -> nn.Module | None:
        """The plain timm model (of the EMA copy with ``ema``): evaluation needs neither views nor the loss."""
        resolved = super().get_eval_model(module=module, ema=ema)
        trainable = self._trainable(resolved)
        return trainable.model if trainable is not None else resolved

    def get_task_state(self, module: nn.Module | None = None, ema: bool = False) -> dict[str, Any]:
        """The loss's own state (AgMax's Q head), saved beside the timm model's ``state_dict``."""
        trainable = self._trainable(module if module is not None else self.get_trainable_module(ema=ema))
        if trainable is None:
            return {}
        state = trainable.criterion.state_dict()
        return {"criterion": state} if state else {}

    def load_task_state(
        self, state: dict[str, Any] | None, strict: bool = True, module: nn.Module | None = None, ema: bool = False
    ) -> None:
        if not state:
            return
        trainable = self._trainable(module if module is not None else self.get_trainable_module(ema=ema))
        if trainable is None:
            raise RuntimeError("Cannot load EMA task state before setup_ema()." if ema else "No trainable module.")
        trainable.criterion.load_state_dict(state.get("criterion", {}), strict=strict)

    def get_clip_parameters(self, exclude_head: bool = False) -> list[nn.Parameter]:
        """The model's parameters (without its classifier with ``exclude_head``) and the loss's."""
        trainable = self._own_trainable()
        params = list(trainable.model.parameters())
        return (params[:-2] if exclude_head else params) + list(trainable.criterion.parameters())

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] for a loss whose weights follow a schedule (Tied-Augment's ``linear`` and
        ``warmup``); a no-op for a method without one (``MethodSpec.progress``)."""
        self.spec.set_progress(self._own_trainable().criterion, progress)

    def set_mixed_batch(self, mixed: MixedBatch | None) -> None:
        """The batch a view-aware mixer returned for the next step (``None``: it mixed nothing): the next forward
        takes its mixed-feature target and accepts its per-view targets."""
        self._mixed = mixed

    def forward(
        self, input: Tensor, target: Tensor, feature_mix: Callable[[Tensor], Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Loss terms of a view-major batch; see the module docstring for the layout."""
        mixed, self._mixed = self._mixed, None
        input = view_major(self.method, input, self.num_views)
        from_mixer = mixed is not None and _same(target, mixed.target)
        if mixed is not None and not from_mixer:
            raise ValueError(f"{self.method}: the target is not the one LoopMixer returned for this step")
        check_view_batch(self.method, input, target, self.num_views, mixed=from_mixer or feature_mix is not None)
        if feature_mix is None and mixed is not None and from_mixer:
            feature_mix = mixed.feature_mix
        if feature_mix is not None and not self.spec.takes_feature_mix:
            raise ValueError(f"{self.method}'s loss takes no feature_mix (only 'first' mixing, e.g. tied, has one)")
        return self.trainable_module(input, target, feature_mix)


def _same(target: Tensor, mixed: Tensor) -> bool:
    if target is mixed:
        return True
    return target.shape == mixed.shape and torch.equal(target, mixed.to(target.device))


def _smoothing_option(spec: MethodSpec, smoothing: float) -> dict[str, float]:
    """The loss option that takes timm's ``--smoothing`` for ``spec``'s loss."""
    if (name := spec.smoothing_option()) is not None:
        return {name: smoothing}
    if smoothing:
        raise ValueError(f"method {spec.name!r}'s loss takes no label smoothing; use smoothing=None or 0")
    return {}


def _num_classes(model: nn.Module) -> int:
    num_classes = getattr(unwrap_model(model), "num_classes", None)
    if not num_classes:
        raise ValueError("the model has no num_classes attribute (a timm model has): pass num_classes")
    return int(num_classes)


class AgMaxTask(ViewTask):
    """AgMax (Atienza, WACV 2022) on two views: CE on both + marginal entropy + ``dl_weight`` * L1 to a Q head.

    The Q head (``Linear(2C, n) -> ReLU -> Linear(n, C)`` on both views' logits) lives in the trainable module.
    Options as :class:`accord.losses.AgMaxLoss`.
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, "agmax", **options)


class TiedAugmentTask(ViewTask):
    """Tied-Augment (Kurtulus et al., ICML 2023): ``(CE(z1) + CE(z2)) / 2 + w(t) * sim(f1, f2)`` on pooled features.

    Options as :class:`accord.losses.TiedAugmentLoss`; with the ``linear`` or ``warmup`` weight schedule, call
    :meth:`set_progress` (``step / total_steps``).

    ``bn_mode="concat"`` (the default) runs both views in one pass, so BatchNorm normalises them with shared batch
    statistics: that is **not** the authors' step. Their code runs one forward pass per view (each view its own
    statistics): ``bn_mode="separate"`` (``bn: separate`` in a config, as accord's Tied-Augment paper configs set).
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, "tied", **options)


class JsdTask(ViewTask):
    """AugMix's JSD (Hendrycks et al., ICLR 2020): CE on the clean view + ``alpha`` * JSD over the views.

    The batch is timm's ``AugMixDataset`` layout: view 0 clean, views 1.. AugMix'ed. Options as
    :class:`accord.losses.JsdLoss`.
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, "jsd", **options)


class ViewCETask(ViewTask):
    """Cross-entropy over every view (the two-view CE control: as many images as AgMax, no agreement term)."""

    def __init__(self, model: nn.Module, num_views: int = 2, **options: Any) -> None:
        super().__init__(model, "ce", num_views=num_views, **options)


def create_task(method: str | MethodSpec, model: nn.Module, **options: Any) -> ViewTask:
    """The task of any registered method (``accord.losses.METHODS``: ``ce``, ``ls``, ``agmax``, ``tied``, ``jsd``,
    the AgMax ablations, or one registered at run time); ``options`` as :class:`ViewTask`."""
    return ViewTask(model, method, **options)
