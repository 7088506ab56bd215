"""The loader's half of ``augment_on: device`` for ImageNet-size image folders: each view's crop and flip.

Images of a folder come in different sizes, and RandomResizedCrop needs each whole image, so the loader decodes
each image once and makes every view's geometry (RandomResizedCrop to ``image_size`` and the flip, or the
evaluation resize and centre crop for a view without ``crop``) exactly as the per-image pipeline does
(:func:`~accord.views.policies.geometry_transforms`), as uint8. The views leave the worker stacked ``(V, C, S, S)``;
:func:`~accord.views.multiview.collate_views` lays a batch of them out view-major and
:class:`~accord.views.batched.BatchedViews` makes the rest of every view on the device.

The crops are drawn inside :class:`~accord.views.multiview.ViewDataset`'s per-sample seed, a function of
``(seed, epoch, index)``, so a resumed run repeats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchvision.transforms import v2

from ..data.datasets import DataInfo
from .policies import geometry_transforms
from .tokens import parse_policy


class ViewCrops:
    """One uint8 crop per view of an image, stacked ``(V, C, S, S)``; with ``same_crop`` every view shares one."""

    def __init__(self, policies: Sequence[str], info: DataInfo, same_crop: bool = False) -> None:
        parsed = [parse_policy(policy, info.image_size, info.in_chans) for policy in policies]
        if same_crop and any(p.geometry != parsed[0].geometry for p in parsed):
            raise ValueError(f"same_crop needs every view to use the same crop/flip tokens, got {list(policies)}")
        self.to_uint8 = v2.Compose([v2.ToImage(), v2.ToDtype(torch.uint8, scale=True), v2.ToPureTensor()])
        self.crops = [v2.Compose(geometry_transforms(p, info)) for p in parsed]
        self.same_crop = same_crop

    def __call__(self, image: Any) -> Tensor:
        image = self.to_uint8(image)
        if self.same_crop:
            return self.crops[0](image).unsqueeze(0).expand(len(self.crops), -1, -1, -1).contiguous()
        return torch.stack([crop(image) for crop in self.crops])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(views={len(self.crops)}, same_crop={self.same_crop}, crops={self.crops})"
