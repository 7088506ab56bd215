"""AlexNet-style PCA lighting noise as a torchvision v2 transform.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012, section 4.1; the AgMax authors apply it to every ImageNet training image after colour
jitter, on the float image in [0, 1] and before normalisation, with std 0.1 (roatienza/agmax,
``dataset/transform.py`` ``_IMAGENET_PCA`` and ``dataset/auto_augment.py`` ``Lighting``). With
``alpha ~ N(0, std^2)`` drawn once per image (3 numbers), eigenvalues ``lambda_j`` and eigenvectors
``v_j`` (column ``j`` of ``eigvec``) of the RGB covariance of ImageNet pixels::

    delta_c = sum_j eigvec[c][j] * alpha_j * lambda_j        out[c, y, x] = img[c, y, x] + delta_c

Float images get ``delta`` as is and are not clamped (as the authors). uint8 images are in [0, 255], so
they get ``255 * delta``, rounded to the nearest integer and clamped to [0, 255].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

#: AlexNet's ImageNet RGB eigenvalues and eigenvectors (columns), as in the AgMax authors' ``_IMAGENET_PCA``.
IMAGENET_EIGVAL: tuple[float, float, float] = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC: tuple[tuple[float, float, float], ...] = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def lighting_delta(alpha: Tensor, eigval=IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC) -> Tensor:
    """The per-channel offset ``delta_c = sum_j eigvec[c][j] * alpha_j * eigval_j`` (on the [0, 1] scale)."""
    vec = torch.as_tensor(eigvec, dtype=torch.float64)
    val = torch.as_tensor(eigval, dtype=torch.float64)
    return (vec * (alpha.to(torch.float64) * val).unsqueeze(0)).sum(dim=1)


def adjust_lighting(image: Tensor, alpha: Tensor, eigval=IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC) -> Tensor:
    """Add the lighting offset of ``alpha`` (3 numbers) to a ``(..., 3, H, W)`` uint8 or float image."""
    if image.ndim < 3 or image.shape[-3] != 3:
        raise ValueError(f"lighting needs RGB images (..., 3, H, W), got shape {tuple(image.shape)}")
    delta = lighting_delta(alpha, eigval, eigvec).view(3, 1, 1)
    if image.dtype == torch.uint8:
        out = (image.to(torch.float64) + 255.0 * delta).round_().clamp_(0, 255)
        return out.to(torch.uint8)
    if not image.is_floating_point():
        raise TypeError(f"lighting supports uint8 and float images, got {image.dtype}")
    return image + delta.to(image.dtype)


class Lighting(v2.Transform):
    """PCA lighting noise with ``alpha ~ N(0, std^2)`` per image (see the module docstring).

    Args:
        std: standard deviation of ``alpha`` (0.1 in AlexNet and the AgMax ImageNet pipeline); 0 is
            the identity.
    """

    def __init__(self, std: float = 0.1) -> None:
        super().__init__()
        if not std >= 0:
            raise ValueError(f"lighting std must be >= 0, got {std}")
        self.std = float(std)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"alpha": torch.empty(3).normal_(0.0, self.std) if self.std > 0 else torch.zeros(3)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, tv_tensors.Image | tv_tensors.Video):
            return inpt  # boxes, masks and the like are not colours
        if not isinstance(inpt, Tensor):
            raise TypeError(f"Lighting works on image tensors, got {type(inpt).__name__}; convert PIL images first")
        out = adjust_lighting(inpt.as_subclass(Tensor), params["alpha"])
        return tv_tensors.wrap(out, like=inpt) if isinstance(inpt, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        return f"std={self.std}"
