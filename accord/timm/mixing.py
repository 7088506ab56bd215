"""View-aware MixUp/CutMix for timm's training loop, where timm's own ``Mixup`` refuses augmentation splits.

accord's :class:`~accord.views.ViewMixer` mixes a view-major batch by each method's rule (AgMax: every view its
own ``lam``, partner and box; Tied-Augment: view 1 only, with view 2's mixed features as the target). timm's
``fast_collate`` repeats the labels over the views (``V*B`` rows); :class:`LoopMixer` takes either layout.
"""

from __future__ import annotations

from torch import Tensor

from ..views.mixing import MixedBatch, ViewMixer


class LoopMixer(ViewMixer):
    """:class:`~accord.views.ViewMixer` on ``(input, target)`` as timm's loader yields them.

    ``target``: ``B`` class indices, or ``V*B`` (the ``B`` labels repeated per view, ``fast_collate``'s layout).
    Returns a :class:`~accord.views.MixedBatch`; pass it on as
    ``task(batch.images, batch.target, batch.feature_mix)``.
    """

    def __call__(self, images: Tensor, labels: Tensor) -> MixedBatch:
        batch = images.shape[0] // self.num_views
        if labels.shape[0] == images.shape[0] and self.num_views > 1:
            if not bool((labels.view(self.num_views, batch) == labels[:batch]).all()):
                raise ValueError("per-row labels must repeat the first view's labels (timm's fast_collate layout)")
            labels = labels[:batch]
        return super().__call__(images, labels)
