"""accord's methods as timm training tasks (``timm.task.TrainingTask``).

timm's training loop runs a task: ``result = task(input, target)``, ``result["loss"].backward()``. A task owns the
trainable module that the optimizer, ``prepare_distributed`` (DDP), EMA and checkpoints see. Here that module,
:class:`~accord.step.ViewStep` (the step ``accord train`` runs), holds the timm model *and* the loss, so parameters a
loss owns — AgMax's Q head (Atienza, WACV 2022) — are optimised by ``create_optimizer_v2(task.get_trainable_module())``,
averaged by DDP (the loss runs inside the wrapped forward), kept in the EMA copy and saved in the checkpoint's
``task_state`` with the method's name. The evaluation model (``task.get_eval_model()``) is the plain timm model, so
``state_dict`` keeps timm's key names (with ``bn_mode="split"`` it also holds timm's auxiliary BatchNorm layers, which
``accord.export`` drops).

A task is built for any registered method (:data:`accord.losses.METHODS`, a method registered at run time included)
from its :class:`~accord.losses.MethodSpec`: the loss with its own defaults, the number of views, the mixing rule.
The input is a view-major batch, timm's ``fast_collate`` layout for augmentation splits: with ``V`` views of ``B``
images, rows ``[j*B, (j+1)*B)`` are view ``j``. Targets are class indices or class probabilities, one row per image
(``B``) or one per row (``V*B``, as ``fast_collate`` repeats them); a batch that is not ``V`` views of the same
images is refused before any row is paired (:func:`~accord.timm.batch.check_view_batch`). A ``(B, V, C, H, W)`` batch
(torch's default collate of :class:`~accord.timm.MultiViewDataset`, timm's ``--no-prefetcher``) is taken as well.
The result is timm's dict: ``loss``, ``output`` (the ``V*B`` view-major logits, as timm's ``ClassificationTask``
returns them under augmentation splits) and every term of accord's loss (AgMax's cross-entropy, entropy and L1).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from timm.task import TrainingTask
from timm.utils import unwrap_model
from torch import Tensor, nn

from ..losses import AgMaxLoss, JsdLoss, MethodSpec, TiedAugmentLoss, baseline_method, method_of_loss, method_spec
from ..models.multiview import BnMode, MultiViewModel
from ..step import NonFiniteGuard, TermMeans, TorchAgreement, ViewStep, build_step, distribute, find_step
from ..views.mixing import MixedBatch
from .batch import check_view_batch, view_major
from .resume import check_task_state, method_state
from .terms import group_means, log_terms, write_terms

_logger = logging.getLogger(__name__)


class ViewTask(TrainingTask):
    """A timm training task for a registered accord method on ``num_views`` views per image.

    Args:
        model: a timm model (``forward_features``/``forward_head``; any ``timm.create_model`` name).
        method: a method name of :data:`accord.losses.METHODS` or its :class:`~accord.losses.MethodSpec`.
        num_views: views per image (timm's ``--aug-splits``, whose 0 is one view); ``None``: the method's own (one
            for the single-view ones).
            A method with a fixed view count refuses another one here, before the first step.
        smoothing: label smoothing of each view's cross-entropy (timm's ``--smoothing`` when the user set it);
            ``None`` keeps the loss's default (0 for the papers' losses; the label-smoothing control's own).
        num_classes: classes of the loss (AgMax's Q head); ``None`` reads ``model.num_classes``.
        bn_mode: how BatchNorm sees the views (``concat``, ``split`` or ``separate``, see ``MultiViewModel``);
            ``None``: the method's authors' (``MethodSpec.bn``: ``separate`` for Tied-Augment). Another one than
            the authors' is logged as one warning.
        log_interval: log the running mean of every loss term every this many steps (timm's ``--log-interval``);
            ``None``: only :meth:`write_terms` reports them.
        device, dtype, verbose: as timm's ``TrainingTask``.
        **loss_options: the loss's options by keyword (e.g. ``dl_weight=2.0``, ``similarity="l1"``); an unknown
            one is refused naming the valid ones.

    ``forward(input, target, feature_mix=None)``: a view-aware mixer (:class:`accord.timm.LoopMixer`) hands the
    task Tied-Augment's mixed-feature target itself, so the loop calls ``task(input, target)`` as timm's does.
    Every step's loss terms are checked: the first NaN or infinite one raises
    :class:`~accord.step.NonFiniteLossError` (on every process) before its backward pass.
    """

    def __init__(
        self,
        model: nn.Module,
        method: str | MethodSpec,
        num_views: int | None = None,
        smoothing: float | None = None,
        num_classes: int | None = None,
        bn_mode: BnMode | None = None,
        log_interval: int | None = None,
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
        self.smoothing = smoothing
        bn = self.spec.bn if bn_mode is None or self.num_views < 2 else bn_mode
        if bn != self.spec.bn and verbose:
            _logger.warning(f"{self.spec.name} with bn_mode={bn} is not its authors' step (theirs: {self.spec.bn})")
        views = MultiViewModel(model, self.num_views, bn if self.num_views > 1 else "concat")
        self.trainable_module: nn.Module = build_step(views, criterion.to(device=self.device), self.spec)
        self.log_interval = log_interval
        self._mixed: MixedBatch | None = None
        self._guard, self._terms, self._steps = NonFiniteGuard(), TermMeans(), 0
        self._schedule: tuple[int, int] | None = None  # (total steps, steps done before this task's first)

    @property
    def method(self) -> str:
        return self.spec.name

    def prepare_distributed(self, device_ids: list | None = None, **ddp_kwargs: Any) -> ViewTask:
        """Wrap the model and the loss together in DDP, so the loss's own parameters are averaged too."""
        self.trainable_module = distribute(self._own_step(), device_ids=device_ids, **ddp_kwargs)
        return self

    def compile(  # type: ignore[override]  # timm's TrainingTask.compile, not nn.Module's
        self, backend: str = "inductor", mode: str | None = None, **compile_kwargs: Any
    ) -> nn.Module:
        """``torch.compile`` the step (model and loss; a loss with a weight schedule stays eager), as ``accord
        train``'s ``compile: true``; before :meth:`prepare_distributed`. Returns the (eager) evaluation model."""
        self._own_step().compile_step(backend=backend, mode=mode, **compile_kwargs)
        return self._own_step().model

    def _own_step(self) -> ViewStep:
        """This task's :class:`~accord.step.ViewStep`, inside whatever wrapper :meth:`prepare_distributed` added."""
        step = find_step(self.trainable_module)
        if step is None:
            raise RuntimeError("the task's trainable module holds no ViewStep")
        return step

    def get_eval_model(self, module: nn.Module | None = None, ema: bool = False) -> nn.Module | None:
        """The plain timm model (of the EMA copy with ``ema``): evaluation needs neither views nor the loss."""
        resolved = super().get_eval_model(module=module, ema=ema)
        step = find_step(resolved)
        return step.model if step is not None else resolved

    def get_task_state(self, module: nn.Module | None = None, ema: bool = False) -> dict[str, Any]:
        """The method's name and its loss's own state (AgMax's Q head), saved beside the model's ``state_dict``."""
        step = find_step(module if module is not None else self.get_trainable_module(ema=ema))
        return {} if step is None else method_state(self.method, step.criterion)

    def load_checkpoint_state(
        self,
        state_dict: dict[str, Any],
        task_state: dict[str, Any] | None = None,
        ema: bool = False,
        strict: bool = True,
    ) -> None:
        """Refuse, in one line, a checkpoint of another method (or one without this loss's state) before any load."""
        step = find_step(self.get_trainable_module(ema=ema))
        if step is not None:
            check_task_state(self.method, step.criterion, task_state)
        super().load_checkpoint_state(state_dict, task_state, ema=ema, strict=strict)

    def load_task_state(
        self, state: dict[str, Any] | None, strict: bool = True, module: nn.Module | None = None, ema: bool = False
    ) -> None:
        if not state:
            return
        step = find_step(module if module is not None else self.get_trainable_module(ema=ema))
        if step is None:
            raise RuntimeError("Cannot load EMA task state before setup_ema()." if ema else "No trainable module.")
        step.criterion.load_state_dict(state.get("criterion", {}), strict=strict)

    def get_clip_parameters(self, exclude_head: bool = False) -> list[nn.Parameter]:
        """The model's parameters (without its classifier with ``exclude_head``) and the loss's."""
        step = self._own_step()
        params = list(step.model.parameters())
        return (params[:-2] if exclude_head else params) + list(step.criterion.parameters())

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] for a loss whose weights follow a schedule (Tied-Augment's ``linear`` and
        ``warmup``); a no-op for a method without one (``MethodSpec.progress``)."""
        self._own_step().set_progress(progress)

    def set_schedule(self, total_steps: int, start_step: int = 0) -> None:
        """The training length in steps (batches: timm's ``num_epochs * len(loader_train)``) and the steps already
        done (``start_epoch * len(loader_train)`` on resume): before each step the task sets the progress
        ``(start_step + steps taken) / total_steps``, as ``accord train`` does, for a loss with a weight schedule."""
        if not (isinstance(total_steps, int) and total_steps > 0 and isinstance(start_step, int) and start_step >= 0):
            raise ValueError(f"set_schedule: total_steps > 0 and start_step >= 0, got {total_steps}, {start_step}")
        self._schedule = (total_steps, start_step - self._steps)

    def set_mixed_batch(self, mixed: MixedBatch | None) -> None:
        """The batch a view-aware mixer returned for the next step (``None``: it mixed nothing): the next forward
        takes its mixed-feature target and accepts its per-view targets."""
        self._mixed = mixed

    def forward(
        self, input: Tensor, target: Tensor, feature_mix: Callable[[Tensor], Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Loss terms of a view-major batch; see the module docstring for the layout."""
        if not self.trainable_module.training:
            raise RuntimeError("the task computes training losses; evaluate task.get_eval_model() instead")
        mixed, self._mixed = self._mixed, None
        input = view_major(self.method, input, self.num_views)
        from_mixer = mixed is not None and _same(target, mixed.target)
        if mixed is not None and not from_mixer:
            raise ValueError(f"{self.method}: the target is not the one LoopMixer returned for this step")
        check_view_batch(self.method, input, target, self.num_views, mixed=from_mixer or feature_mix is not None)
        if feature_mix is None and mixed is not None and from_mixer:
            feature_mix = mixed.feature_mix
        self._set_step_progress()
        terms, logits = self.trainable_module(input, target, feature_mix)
        self._after_step(terms)
        return {**terms, "output": logits}

    def _set_step_progress(self) -> None:
        """The progress of this step for a loss with a weight schedule; refused without :meth:`set_schedule`."""
        if self._schedule is not None:
            total, start = self._schedule
            self.set_progress((start + self._steps) / total)
        elif getattr(self._own_step().criterion, "scheduled", False):
            raise ValueError(
                f"{self.method}: the loss's weight follows a schedule, which needs the training length: call "
                "task.set_schedule(num_epochs * len(loader_train), start_epoch * len(loader_train)) before training "
                "(or keep the constant schedule)"
            )

    def _after_step(self, terms: dict[str, Tensor]) -> None:
        """The non-finite stop (agreed by every process) and the running means of the terms."""
        self._steps += 1
        self._guard.update(terms, self._steps)
        self._guard.check(dist=TorchAgreement())
        self._terms.add(terms)
        if self.verbose and self.log_interval and self._steps % self.log_interval == 0:
            _logger.info(log_terms(self._terms.means(), self._steps))

    def write_terms(self, epoch: int, output_dir: str | None) -> dict[str, float]:
        """The epoch's mean loss terms (averaged over every process: each calls this) to timm's log and ``terms.csv``
        in ``output_dir`` (beside timm's ``summary.csv``; ``None``, as on timm's other processes: the log only);
        the means restart for the next epoch."""
        means = group_means(self._terms.means(), self.device)
        self._terms.reset()
        if self.verbose:
            _logger.info(log_terms(means, epoch=epoch))
        if output_dir is not None:
            write_terms(means, epoch, output_dir)
        return means


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
        super().__init__(model, method_of_loss(AgMaxLoss), **options)


class TiedAugmentTask(ViewTask):
    """Tied-Augment (Kurtulus et al., ICML 2023): ``(CE(z1) + CE(z2)) / 2 + w(t) * sim(f1, f2)`` on pooled features.

    Options as :class:`accord.losses.TiedAugmentLoss`; with the ``linear`` or ``warmup`` weight schedule, call
    :meth:`set_progress` (``step / total_steps``).

    The default BatchNorm mode is the authors' step, ``bn_mode="separate"``: one forward pass per view, each view with
    its own batch statistics (``bn: separate`` in a config, as accord's Tied-Augment paper configs set).
    ``bn_mode="concat"`` runs both views in one pass with shared statistics, which is not their step (logged once).
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, method_of_loss(TiedAugmentLoss), **options)


class JsdTask(ViewTask):
    """AugMix's JSD (Hendrycks et al., ICLR 2020): CE on the clean view + ``alpha`` * JSD over the views.

    The batch is timm's ``AugMixDataset`` layout: view 0 clean, views 1.. AugMix'ed. Options as
    :class:`accord.losses.JsdLoss`.
    """

    def __init__(self, model: nn.Module, **options: Any) -> None:
        super().__init__(model, method_of_loss(JsdLoss), **options)


class ViewCETask(ViewTask):
    """Cross-entropy over every view (the two-view CE control: as many images as AgMax, no agreement term)."""

    def __init__(self, model: nn.Module, num_views: int = 2, **options: Any) -> None:
        super().__init__(model, baseline_method(), num_views=num_views, **options)


def create_task(method: str | MethodSpec, model: nn.Module, **options: Any) -> ViewTask:
    """The task of any registered method (``accord.losses.METHODS``, the built-in ones or one registered at run
    time); ``options`` as :class:`ViewTask`."""
    return ViewTask(model, method, **options)
