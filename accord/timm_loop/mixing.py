"""View-aware MixUp/CutMix in timm's training loop, where timm's ``mixup_fn(input, target)`` sits.

timm's ``Mixup`` pairs each row with the row at the other end of the batch, which for augmentation splits mixes
one view's image with another view's; its prefetcher path (``FastCollateMixup``) refuses splits altogether.
:class:`LoopMixer` takes timm's ``Mixup`` arguments (``mixup_args`` in timm's ``train.py``) and the task, mixes the
view-major batch by the method's rule (accord's :class:`~accord.views.ViewMixer`: AgMax every view with its own
``lam``, partner and box; Tied-Augment view 1 only) and returns ``(input, target)`` as ``Mixup`` does. Tied-Augment's
mixed-feature target goes to the task directly (``task.set_mixed_batch``), so the loop's ``task(input, target)``
stays as it is.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..losses.mixing_rule import check_mixing
from ..views.mixing import ViewMixer
from .batch import check_view_batch, view_major
from .tasks import ViewTask


def _kind(mixup_alpha: float, cutmix_alpha: float) -> str:
    if mixup_alpha > 0 and cutmix_alpha > 0:
        return "mixup-cutmix"
    if mixup_alpha > 0 or cutmix_alpha > 0:
        return "mixup" if mixup_alpha > 0 else "cutmix"
    raise ValueError("LoopMixer: mixup_alpha or cutmix_alpha must be positive (timm: --mixup or --cutmix)")


class LoopMixer:
    """timm's ``Mixup(**mixup_args)`` for a view task: ``input, target = mixer(input, target)``.

    Args:
        task: the :class:`~accord.timm_loop.ViewTask` the batches go to (its views, classes and mixing rule).
        mixup_alpha, cutmix_alpha, prob, switch_prob: as timm's ``Mixup`` (``--mixup``, ``--cutmix``,
            ``--mixup-prob``, ``--mixup-switch-prob``); every view of a batch draws its own ``lam``.
        label_smoothing, num_classes: timm passes them to ``Mixup``; here they must agree with the task, which
            smooths each view's cross-entropy itself (the same targets: smoothing is linear). A task built with no
            smoothing of its own (``smoothing=None``: the method's) takes ``label_smoothing`` as timm's default, unused.
        cutmix_minmax, mode, correct_lam: only timm's defaults (``None``, ``batch``, ``True``) are supported.
        seed: seeds the draws; ``None`` takes torch's initial seed (timm's ``--seed`` plus the rank).

    ``input``: view-major ``(V*B, C, H, W)`` or ``(B, V, C, H, W)`` (returned view-major). ``target``: ``B`` class
    indices, or ``V*B`` (the labels repeated per view, ``fast_collate``'s layout), which must repeat the first view's
    labels. Set ``mixup_enabled = False`` to stop mixing (timm's
    ``--mixup-off-epoch``). A method that refuses mixing (JSD) is refused here, at construction.
    """

    def __init__(
        self,
        task: ViewTask,
        mixup_alpha: float = 1.0,
        cutmix_alpha: float = 0.0,
        cutmix_minmax: tuple[float, float] | None = None,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        mode: str = "batch",
        correct_lam: bool = True,
        label_smoothing: float | None = None,
        num_classes: int | None = None,
        seed: int | None = None,
    ) -> None:
        spec = task.spec
        mixing = check_mixing(spec.name, "drop --mixup/--cutmix")
        if cutmix_minmax is not None or mode != "batch" or not correct_lam:
            raise ValueError("LoopMixer supports timm's default cutmix_minmax=None, mode='batch', correct_lam=True")
        if num_classes is not None and num_classes != task.num_classes:
            raise ValueError(f"LoopMixer: num_classes={num_classes}, but the task has {task.num_classes} classes")
        smoothing = _task_smoothing(task)
        if task.smoothing is not None and label_smoothing is not None and label_smoothing != smoothing:
            raise ValueError(
                f"label smoothing is the task's: build it with smoothing={label_smoothing} "
                f"(LoopMixer got label_smoothing={label_smoothing}, the task has {smoothing})"
            )
        self.task = task
        self.mixer = ViewMixer(
            task.num_classes,
            task.num_views,
            _kind(mixup_alpha, cutmix_alpha),
            mixing,
            mixup_alpha=mixup_alpha if mixup_alpha > 0 else 1.0,
            cutmix_alpha=cutmix_alpha if cutmix_alpha > 0 else 1.0,
            prob=prob,
            switch_prob=switch_prob,
        )
        self.mixer.rng = np.random.default_rng(torch.initial_seed() if seed is None else seed)
        self.mixup_enabled = True

    def __call__(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        self.task.set_mixed_batch(None)
        if not self.mixup_enabled:
            return input, target
        if target.dim() != 1:
            raise ValueError("LoopMixer takes class-index targets, as timm's Mixup does")
        input = view_major(self.task.method, input, self.task.num_views)
        check_view_batch(self.task.method, input, target, self.task.num_views)
        labels = target[: input.shape[0] // self.task.num_views]
        mixed = self.mixer(input, labels)
        if mixed.images is input:  # this batch was not mixed (prob < 1)
            return input, target
        self.task.set_mixed_batch(mixed)
        return mixed.images, mixed.target


def _task_smoothing(task: ViewTask) -> float:
    """The label smoothing of the task's loss (0 when it has none)."""
    criterion = task._own_step().criterion
    name = task.spec.smoothing_option()
    value = getattr(criterion, name, None) if name else None
    return float(value or 0.0)
