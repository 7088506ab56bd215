"""Common corruptions (Hendrycks & Dietterich, *Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations*, ICLR 2019) with the CIFAR-10-C parameters of their ``make_cifar_c.py``
at severities 1..5 (see :data:`SEVERITY_PARAMS`), applied to uint8 images.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import UserError

SEVERITIES = (1, 2, 3, 4, 5)
#: Per corruption, its parameter at severities 1..5: Hendrycks & Dietterich's CIFAR-10-C values
#: (``make_cifar_c.py``): noise std, blur sigma (px), contrast factor, JPEG quality.
SEVERITY_PARAMS: dict[str, tuple[float, ...]] = {
    "noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "jpeg": (80, 65, 58, 50, 40),
}
CORRUPTION_NAMES = tuple(SEVERITY_PARAMS)


def _severity_param(name: str, severity: int) -> float:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    return SEVERITY_PARAMS[name][severity - 1]


def _to_unit(images: Tensor) -> Tensor:
    """uint8 images to float in [0, 1]; float images are checked to lie in [0, 1] (not normalised)."""
    if images.dtype == torch.uint8:
        return images.float() / 255
    if not images.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("float images must lie in [0, 1]: corrupt them before normalisation")
    return images


def _from_unit(x: Tensor, dtype: torch.dtype) -> Tensor:
    """Clip to [0, 1] and return in ``dtype``; uint8 is rounded (make_cifar_c.py truncates with
    ``np.uint8``; rounding keeps an unchanged pixel unchanged)."""
    x = x.clamp(0, 1)
    return (x * 255).round_().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)


def gaussian_noise(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``x' = clip(x + N(0, c^2), 0, 1)``, i.i.d. per pixel and channel, ``c`` the noise std at ``severity``.

    Hendrycks & Dietterich, ICLR 2019 (CIFAR-10-C: c = 0.04, 0.06, 0.08, 0.09, 0.10). Written here because
    torchvision's ``v2.GaussianNoise`` draws from the global RNG (no generator) and refuses uint8. The
    noise is drawn from ``generator`` (on its device), so a seeded generator repeats it.
    """
    c = _severity_param("noise", severity)
    x = _to_unit(images)
    device = generator.device if generator is not None else x.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    return _from_unit(x + c * noise, images.dtype)


def blur_kernel_size(sigma: float) -> int:
    """Odd kernel side reaching ``4 sigma`` each way: scipy/skimage's ``truncate=4.0``, radius ``int(4 sigma + .5)``."""
    return 2 * int(4 * sigma + 0.5) + 1


def gaussian_blur(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Gaussian blur of std ``sigma`` px (CIFAR-10-C: 0.4, 0.6, 0.7, 0.8, 1), torchvision's ``gaussian_blur``.

    Hendrycks & Dietterich, ICLR 2019, use skimage's ``gaussian(x, sigma)``: kernel truncated at 4 sigma,
    edge pixels repeated beyond the border. torchvision reflects at the border, so the image is first
    padded by repeating its edge (``replicate``) and the blurred result cropped: the same values as skimage.
    """
    sigma = _severity_param("blur", severity)
    k = blur_kernel_size(sigma)
    r = k // 2
    x = _to_unit(images)
    flat = x.reshape(-1, *x.shape[-3:])
    padded = torch.nn.functional.pad(flat, [r, r, r, r], mode="replicate")
    blurred = F.gaussian_blur(padded, [k, k], [sigma, sigma])[..., r:-r, r:-r]
    return _from_unit(blurred.reshape(x.shape), images.dtype)


def contrast(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """``x' = (x - mean) * c + mean``, ``mean`` per image and channel over the pixels (CIFAR-10-C:
    c = 0.75, 0.5, 0.4, 0.3, 0.15).

    Hendrycks & Dietterich, ICLR 2019. Written here because torchvision's ``adjust_contrast`` blends
    towards one grayscale mean for all channels, not each channel's own mean (same for 1 channel).
    """
    c = _severity_param("contrast", severity)
    x = _to_unit(images)
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return _from_unit((x - mean) * c + mean, images.dtype)


def jpeg_compression(images: Tensor, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Encode as JPEG at ``quality`` (CIFAR-10-C: 80, 65, 58, 50, 40) and decode again.

    Hendrycks & Dietterich, ICLR 2019, with their codec: PIL's ``save(format="JPEG", quality=q)`` (libjpeg,
    4:2:0 chroma subsampling); 1-channel images are coded as grayscale JPEGs. PIL rather than torchvision's
    ``encode_jpeg``/``v2.JPEG``, which torchvision 0.29 deprecates in favour of TorchCodec (not a dependency).
    Float input is quantised to uint8 first.
    """
    quality = int(_severity_param("jpeg", severity))
    x = (_to_unit(images) * 255).round().to(torch.uint8)
    flat = x.reshape(-1, *x.shape[-3:]).cpu()
    coded = torch.stack([_jpeg_round_trip(image, quality) for image in flat]).reshape(x.shape).to(images.device)
    return coded if images.dtype == torch.uint8 else (coded.float() / 255).to(images.dtype)


def _jpeg_round_trip(image: Tensor, quality: int) -> Tensor:
    """One uint8 (C, H, W) image (C = 1 or 3) through a JPEG file in memory."""
    array = image.permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as decoded:
        return pil_to_tensor(decoded).reshape(image.shape)


Corruption = Callable[[Tensor, int, torch.Generator | None], Tensor]
CORRUPTIONS: dict[str, Corruption] = {
    "noise": gaussian_noise,
    "blur": gaussian_blur,
    "contrast": contrast,
    "jpeg": jpeg_compression,
}


def corrupt(images: Tensor, name: str, severity: int, generator: torch.Generator | None = None) -> Tensor:
    """Apply corruption ``name`` at ``severity`` (1..5) to ``images`` ((C, H, W) or (N, C, H, W), uint8 or
    float in [0, 1]); the result has the input's shape and dtype."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTION_NAMES)}")
    return CORRUPTIONS[name](images, severity, generator)


def check_names(corruptions: Sequence[str], severities: Sequence[int]) -> None:
    """Unknown corruptions or severities fail before any work."""
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise UserError(f"unknown corruption {', '.join(unknown)}; valid: {', '.join(CORRUPTION_NAMES)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise UserError(f"severities must be in {SEVERITIES}, got {bad}")


def parse_corruptions(text: str) -> list[str]:
    """``"noise,blur"`` -> ``["noise", "blur"]``; ``"all"`` -> every corruption; unknown names raise."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(CORRUPTION_NAMES)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise UserError(f"unknown corruption {', '.join(unknown) or repr(text)}; valid: {','.join(CORRUPTION_NAMES)}")
    return list(dict.fromkeys(names))
