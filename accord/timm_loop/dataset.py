"""A dataset wrapper that turns any ``(image, label)`` dataset into ``(views, label)`` items, as timm's
``AugMixDataset`` does for AugMix, with one transform per view.

The wrapped dataset may yield PIL images (torchvision's datasets, ``ImageFolder``, timm's ``create_dataset``) or
uint8 tensors (``accord.data``). Each view's transform is a timm or torchvision pipeline (e.g. timm's
``create_transform``) or accord's policies made PIL-ready by :func:`policy_views`. Batched by accord's
``collate_views`` or by timm's ``fast_collate`` (``create_loader`` with the prefetcher), the views come out
view-major: rows ``[j*B, (j+1)*B)`` are view ``j``. Views that are float tensors of one shape (timm's pipelines without
the prefetcher, accord's policies) are one ``(V, C, H, W)`` tensor, so torch's default collate (timm's
``--no-prefetcher``) gives a ``(B, V, C, H, W)`` batch, which the tasks and ``LoopMixer`` take as it is; uint8 views
(the prefetcher's) stay a tuple, as ``fast_collate`` needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from ..losses import method_spec
from ..views.multiview import MultiViewTransform, ViewDataset, build_multiview_transform


class MultiViewDataset(ViewDataset):
    """``(image, label)`` -> ``((view_1, ..., view_V), label)``, one transform per view.

    Args:
        dataset: any map-style ``(image, label)`` dataset (PIL images or tensors).
        views: one transform per view, or a :class:`~accord.views.MultiViewTransform` (e.g. from
            :func:`policy_views`). ``None`` or a number of views (timm's ``num_aug_splits``): the views are set
            from the pipeline timm's ``create_loader`` assigns.
        num_views: number of views when ``views`` is ``None``.
        seed: torch's generator is seeded by ``(seed, epoch, index)`` before each sample (call ``set_epoch``, as
            timm's ``train.py`` does each epoch), so torch-drawn augmentations repeat whatever the number of workers;
            timm's PIL transforms draw from Python's ``random``, which timm's loader seeds per worker. ``None``:
            torch's initial seed (timm's ``--seed`` plus the rank, once train.py has seeded), so the loop's seed
            reaches the views; pass timm's ``args.seed`` to make them the same on every rank.
        method: a registered method (timm's ``--view-loss``): its view count is checked against the views here,
            before any batch, and a method whose first view is the clean image (``MethodSpec.clean_first``, JSD)
            gets timm's ``AugMixDataset`` layout.
        pipelines: how the views share timm's pipeline when ``create_loader`` assigns it (``VIEW_PIPELINES``):
            ``same``, every view an independent draw of the whole pipeline (AgMax's views); ``weak-first``, view 1
            timm's crop and flip alone, the others the whole pipeline (Tied-Augment's crop-flip / RandAugment pair:
            ``--aa rand-m14-n2``), each view with its own crop.

    ``create_loader(dataset, ..., num_aug_splits=V)`` assigns ``dataset.transform``: a single pipeline, or timm's
    ``(primary, secondary, final)`` triple, becomes ``V`` independent draws of that pipeline (AgMax's views); with
    a ``clean_first`` method, one ``primary`` crop shared by the views, view 1 only ``final`` (normalised), the others
    ``secondary`` then ``final``, as ``AugMixDataset`` does.
    """

    def __init__(
        self,
        dataset: Dataset,
        views: Sequence[Callable] | MultiViewTransform | int | None = None,
        num_views: int = 2,
        seed: int | None = None,
        method: str | None = None,
        pipelines: str = "same",
    ) -> None:
        if isinstance(views, int):
            num_views, views = views, None
        if views is not None and not isinstance(views, MultiViewTransform):
            views = MultiViewTransform(list(views))
        self.num_views = len(views.transforms) if views is not None else num_views
        spec = method_spec(method) if method is not None else None
        if spec is not None and spec.views is not None and spec.views != self.num_views:
            raise ValueError(
                f"method {spec.name!r} takes {spec.views} views per image, got {self.num_views} "
                f"(timm: --aug-splits {spec.views})"
            )
        self.clean_first = spec is not None and spec.clean_first
        if (problem := pipelines_problem(pipelines, spec.name if spec else None, self.clean_first)) is not None:
            raise ValueError(problem)
        self.weak_first = pipelines == "weak-first"
        super().__init__(dataset, views, torch.initial_seed() if seed is None else seed)

    @property
    def transform(self) -> MultiViewTransform | None:
        return self._transform

    @transform.setter
    def transform(self, transform: Callable | Sequence[Callable] | None) -> None:
        if transform is None or isinstance(transform, MultiViewTransform):
            self._transform = transform
            return
        if isinstance(transform, Sequence):  # timm's create_transform(separate=True)
            if len(transform) != 3:
                raise ValueError(f"expected one transform or timm's (primary, secondary, final), got {len(transform)}")
            if self.clean_first:
                primary, secondary, final = transform
                augmented = v2.Compose([t for t in (secondary, final) if t is not None])
                self._transform = MultiViewTransform([final] + [augmented] * (self.num_views - 1), shared=primary)
                return
            if self.weak_first:
                primary, _, final = transform
                weak = v2.Compose([t for t in (primary, final) if t is not None])
                strong = v2.Compose([t for t in transform if t is not None])
                self._transform = MultiViewTransform([weak] + [strong] * (self.num_views - 1))
                return
            pipeline: Callable = v2.Compose([t for t in transform if t is not None])
        elif self.clean_first or self.weak_first:
            layout = "a clean first view" if self.clean_first else "pipelines='weak-first'"
            raise ValueError(f"{layout} needs timm's (primary, secondary, final) transforms (create_loader's)")
        else:
            pipeline = transform
        self._transform = MultiViewTransform([pipeline] * self.num_views)

    def __getitem__(self, index: int):
        if self._transform is None:
            raise RuntimeError("MultiViewDataset has no view transforms: pass views= or use timm's create_loader")
        views, label = super().__getitem__(index)
        return _stacked(tuple(views)), label  # a MultiViewTransform's tuple


#: How the views share timm's pipeline (:class:`MultiViewDataset`'s ``pipelines``, train.py's ``--view-pipelines``).
VIEW_PIPELINES = ("same", "weak-first")


def pipelines_problem(pipelines: str, method: str | None, clean_first: bool) -> str | None:
    """What is wrong with ``pipelines`` for ``method``, in one line (``None``: nothing)."""
    if pipelines not in VIEW_PIPELINES:
        return f"view pipelines {pipelines!r}: expected one of {', '.join(VIEW_PIPELINES)}"
    if clean_first and pipelines != "same":
        return f"{method}'s views have their own layout (the clean image first): drop --view-pipelines {pipelines}"
    return None


def _stacked(views: tuple) -> tuple | Tensor:
    """Float tensor views of one shape as one ``(V, C, H, W)`` tensor; anything else as it is."""
    first = views[0]
    if all(isinstance(v, Tensor) and v.is_floating_point() and v.shape == first.shape for v in views):
        return torch.stack(views)
    return views


def policy_views(policies: Sequence[str], info: DataInfo, same_crop: bool = False) -> MultiViewTransform:
    """accord's augmentation policies (``accord.views.policies``), one per view, taking PIL images or tensors.

    The policies work on uint8 tensors; a leading ``PILToTensor`` converts PIL images (tensors pass through).
    With ``same_crop`` the views share one crop and flip (AugMix's clean and augmented splits do).
    """
    views = build_multiview_transform(policies, info, same_crop=same_crop)
    to_tensor = v2.PILToTensor()
    shared = v2.Compose([to_tensor, views.shared]) if views.shared is not None else to_tensor
    return MultiViewTransform(views.transforms, shared=shared)
