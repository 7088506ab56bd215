"""accord's methods as timm training tasks (``timm.task.TrainingTask``).

timm's training loop runs a task: ``result = task(input, target)``, ``result["loss"].backward()``. A task owns the
trainable module that the optimizer, ``prepare_distributed`` (DDP), EMA and checkpoints see. Here that module,
:class:`ViewTrainable`, holds the timm model *and* the loss, so parameters a loss owns — AgMax's Q head (Atienza,
WACV 2022) — are optimised by ``create_optimizer_v2(task.get_trainable_module())``, averaged by DDP (the loss runs
inside the wrapped forward), kept in the EMA copy and saved in the checkpoint's ``task_state``. The evaluation
model (``task.get_eval_model()``) is the plain timm model, so ``state_dict`` keeps timm's key names (with
``bn_mode="split"`` it also holds timm's auxiliary BatchNorm layers, which ``accord.export`` drops).

The input is a view-major batch, timm's ``fast_collate`` layout for augmentation splits: with ``V`` views of ``B``
images, rows ``[j*B, (j+1)*B)`` are view ``j``. Targets are class indices or class probabilities, one row per image
(``B``) or one per row (``V*B``, as ``fast_collate`` repeats them). The result is timm's dict: ``loss``, ``output``
(the ``V*B`` view-major logits, as timm's ``ClassificationTask`` returns them under augmentation splits) and every
term of accord's loss (e.g. ``ce``, ``entropy``, ``l1`` for AgMax).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from timm.task import TrainingTask
from timm.utils import unwrap_model
from torch import Tensor, nn

from ..losses import AgMaxLoss, JsdLoss, TiedAugmentLoss, ViewCrossEntropy
from ..models.multiview import BnMode, MultiViewModel


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
        names = self.model.no_weight_decay() if hasattr(self.model, "no_weight_decay") else set()
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
    """A timm training task for any accord loss on ``num_views`` views per image.

    Args:
        model: a timm model (``forward_features``/``forward_head``; any ``timm.create_model`` name).
        criterion: an accord loss (``accord.losses``), called as ``criterion(logits, target, features)``.
        num_views: views per image in each batch.
        bn_mode: how BatchNorm sees the views (``concat``, ``split`` or ``separate``, see ``MultiViewModel``).
        device, dtype, verbose: as timm's ``TrainingTask``.

    ``forward(input, target, feature_mix=None)``: ``feature_mix`` is Tied-Augment's mixed-feature target from a
    view-aware mixer (:class:`accord.timm.LoopMixer`); the other losses take none.
    """

    def __init__(
        self,
        model: nn.Module,
        criterion: nn.Module,
        num_views: int,
        bn_mode: BnMode = "concat",
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        verbose: bool = True,
    ) -> None:
        super().__init__(device=device, dtype=dtype, verbose=verbose)
        self.num_views = num_views
        self.trainable_module = ViewTrainable(model, criterion.to(device=self.device), num_views, bn_mode)

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
        trainable = self._trainable(self.trainable_module)
        params = list(trainable.model.parameters())
        return (params[:-2] if exclude_head else params) + list(trainable.criterion.parameters())

    def forward(
        self, input: Tensor, target: Tensor, feature_mix: Callable[[Tensor], Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Loss terms of a view-major batch; see the module docstring for the layout."""
        return self.trainable_module(input, target, feature_mix)


def _num_classes(model: nn.Module) -> int:
    num_classes = getattr(unwrap_model(model), "num_classes", None)
    if not num_classes:
        raise ValueError("the model has no num_classes attribute (a timm model has): pass num_classes")
    return int(num_classes)


class AgMaxTask(ViewTask):
    """AgMax (Atienza, WACV 2022) on two views: CE on both + marginal entropy + ``dl_weight`` * L1 to a Q head.

    The Q head (``Linear(2C, n) -> ReLU -> Linear(n, C)`` on both views' logits) lives in the trainable module.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int | None = None,
        hidden_units: int | None = None,
        dl_weight: float = 4.0,
        bn_mode: BnMode = "concat",
        **task_kwargs: Any,
    ) -> None:
        loss = AgMaxLoss(num_classes or _num_classes(model), hidden_units=hidden_units, dl_weight=dl_weight)
        super().__init__(model, loss, num_views=2, bn_mode=bn_mode, **task_kwargs)


class TiedAugmentTask(ViewTask):
    """Tied-Augment (Kurtulus et al., ICML 2023): ``(CE(z1) + CE(z2)) / 2 + w(t) * sim(f1, f2)`` on pooled features
    (``similarity``: ``mse``, the paper's, ``l1`` or ``cosine``).

    With the ``linear`` or ``warmup`` weight schedule, call :meth:`set_progress` (``step / total_steps``).

    ``bn_mode="concat"`` (the default) runs both views in one pass, so BatchNorm normalises them with shared batch
    statistics: that is **not** the authors' step. Their code runs one forward pass per view (each view its own
    statistics): ``bn_mode="separate"`` (``bn: separate`` in a config, as accord's Tied-Augment paper configs set).
    """

    def __init__(
        self,
        model: nn.Module,
        weight: float = 1.0,
        both_views_ce: bool = True,
        schedule: str = "constant",
        warmup: float = 0.1,
        similarity: str = "mse",
        bn_mode: BnMode = "concat",
        **task_kwargs: Any,
    ) -> None:
        loss = TiedAugmentLoss(weight, both_views_ce, schedule, warmup, similarity)
        super().__init__(model, loss, num_views=2, bn_mode=bn_mode, **task_kwargs)

    def set_progress(self, progress: float) -> None:
        self._trainable(self.trainable_module).criterion.set_progress(progress)


class JsdTask(ViewTask):
    """AugMix's JSD (Hendrycks et al., ICLR 2020): CE on the clean view + ``alpha`` * JSD over ``num_splits`` views.

    The batch is timm's ``AugMixDataset`` layout: view 0 clean, views 1.. AugMix'ed.
    """

    def __init__(
        self,
        model: nn.Module,
        num_splits: int = 3,
        alpha: float = 12.0,
        smoothing: float = 0.0,
        bn_mode: BnMode = "concat",
        **task_kwargs: Any,
    ) -> None:
        loss = JsdLoss(num_splits=num_splits, alpha=alpha, smoothing=smoothing)
        super().__init__(model, loss, num_views=num_splits, bn_mode=bn_mode, **task_kwargs)


class ViewCETask(ViewTask):
    """Cross-entropy over every view (the two-view CE control: as many images as AgMax, no agreement term)."""

    def __init__(
        self,
        model: nn.Module,
        num_views: int = 2,
        label_smoothing: float = 0.0,
        bn_mode: BnMode = "concat",
        **task_kwargs: Any,
    ) -> None:
        super().__init__(model, ViewCrossEntropy(label_smoothing), num_views=num_views, bn_mode=bn_mode, **task_kwargs)


TASKS: dict[str, type[ViewTask]] = {"agmax": AgMaxTask, "tied": TiedAugmentTask, "jsd": JsdTask, "ce": ViewCETask}


def create_task(method: str, model: nn.Module, **options: Any) -> ViewTask:
    """The task of ``method`` (``agmax``, ``tied``, ``jsd`` or ``ce``); ``options`` go to its constructor."""
    if method not in TASKS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(TASKS)}")
    return TASKS[method](model, **options)
