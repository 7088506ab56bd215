"""Per-image crop and flip of a batch in one gather each, the geometry of :class:`~accord.views.batched.BatchedViews`.

They do what the loader's ``RandomCrop(size, padding=4)`` (zero fill) and ``RandomHorizontalFlip()`` do to each
image (:mod:`accord.views.policies`), with every image of the batch drawing its own offset and flip from torch's
global generator of the batch's device. kornia's exact ("slice") crop loops over the batch in Python and builds
a crop matrix per image; here the offsets index one padded batch directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomPadCrop(nn.Module):
    """Pad ``padding`` px of zeros on every side, then crop each image back to its size at a uniform offset."""

    def __init__(self, padding: int = 4) -> None:
        super().__init__()
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        n, chans, height, width = x.shape
        pad = self.padding
        offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device)  # rows, columns: 0 .. 2 * pad
        rows = (offsets[0] + torch.arange(height, device=x.device)).view(n, height, 1)
        cols = (offsets[1] + torch.arange(width, device=x.device)).view(n, 1, width)
        index = (rows * (width + 2 * pad) + cols).view(n, 1, height * width).expand(n, chans, height * width)
        padded = F.pad(x, (pad, pad, pad, pad)).view(n, chans, -1)
        return padded.gather(2, index).view_as(x)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


class RandomFlip(nn.Module):
    """Mirror each image left-right with probability 1/2."""

    def forward(self, x: Tensor) -> Tensor:
        flip = torch.rand(x.shape[0], device=x.device) < 0.5
        return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
