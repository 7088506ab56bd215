"""CutOut as both papers' authors wrote it: a square centred anywhere in the image, clipped at the border.

DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout", 2017, and
their reference code, which the AgMax authors copy (roatienza/agmax ``dataset/auto_augment.py``
``Cutout``) and the Tied-Augment authors too (ekurtulus/tied-augment ``pytorch/supervised/augmentations.py``
``Cutout``): the centre ``(cy, cx)`` is uniform over all pixels, and the rows
``[max(0, cy - L // 2), min(H, cy + L // 2))`` and columns likewise are set to 0 in every channel
(on the normalised image, so 0 is the mean colour). Near the border the square is cut off, so it
erases less than ``L x L`` pixels; torchvision's ``RandomErasing`` with a fixed size keeps the whole
square inside the image instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2


def cutout(image: Tensor, cy: int, cx: int, length: int, value: float = 0.0) -> Tensor:
    """A copy of ``image`` (``(..., H, W)``), the clipped ``length`` square centred at ``(cy, cx)`` set to ``value``."""
    h, w = image.shape[-2:]
    half = length // 2
    out = image.clone()
    out[..., max(0, cy - half) : min(h, cy + half), max(0, cx - half) : min(w, cx + half)] = value
    return out


class ClippedCutout(v2.Transform):
    """One CutOut square of side ``length`` per image, centre uniform over the image, clipped at the border."""

    def __init__(self, length: int, value: float = 0.0) -> None:
        super().__init__()
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"cutout length must be a positive number of pixels, got {length!r}")
        self.length = length
        self.value = value

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        return {"cy": int(torch.randint(h, ()).item()), "cx": int(torch.randint(w, ()).item())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, tv_tensors.Image | tv_tensors.Video):
            return inpt
        out = cutout(inpt.as_subclass(Tensor), params["cy"], params["cx"], self.length, self.value)
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        return f"length={self.length}, value={self.value}"
