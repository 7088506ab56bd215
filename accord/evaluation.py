"""Evaluation beyond top-1: expected calibration error and accuracy under common corruptions.

Calibration follows Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017: the top-1
confidences are split into ``n_bins`` equal-width bins ``B_b = ((b-1)/M, b/M]`` and

    ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|

(torchmetrics' ``multiclass_calibration_error(norm="l1")`` bins and weighs the same way).

Corruptions follow Hendrycks & Dietterich, *Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations*, ICLR 2019, with the CIFAR-10-C parameters of their ``make_cifar_c.py`` at severities
1..5 (see :data:`SEVERITY_PARAMS`). They are generated on the fly from the test images, before the
normalisation of :func:`~accord.views.build_eval_transform`: the eval geometry (none for 28-32 px data;
resize and centre crop otherwise, as ImageNet-C corrupts the 224 px crops), then the corruption on the
uint8 image, then conversion to float and normalisation.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional import pil_to_tensor

from .data import DataInfo

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
N_BINS = 15


# ---------------------------------------------------------------- calibration


def calibration_error_from_confidences(confidences: Tensor, correct: Tensor, n_bins: int = N_BINS) -> float:
    """ECE (a fraction in [0, 1]) of top-1 ``confidences`` (N,) and their 0/1 ``correct`` flags (N,).

    Guo et al., ICML 2017, eq. 3: ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` over ``n_bins``
    equal-width bins ``((b-1)/M, b/M]`` (a confidence of exactly 0 counts in the first bin).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    if confidences.shape != correct.shape or confidences.dim() != 1:
        raise ValueError(f"expected two (N,) tensors, got {tuple(confidences.shape)} and {tuple(correct.shape)}")
    n = confidences.numel()
    if n == 0:
        return float("nan")
    conf = confidences.detach().double().cpu()
    hits = correct.detach().double().cpu()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = (torch.bucketize(conf, edges) - 1).clamp(0, n_bins - 1)  # bucketize: edges[i-1] < x <= edges[i]
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, conf)
    hit_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, hits)
    return float((conf_sum - hit_sum).abs().sum() / n)  # |B|/n * |acc - conf| = |sum hits - sum conf| / n


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = N_BINS) -> float:
    """Expected calibration error of class probabilities ``probs`` (N, K) against ``labels`` (N,),
    as a fraction in [0, 1] (multiply by 100 for percent).

    Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017: with ``conf_i = max_k p_ik`` and
    equal-width confidence bins ``B_b``, ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``.
    """
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (N, K) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}")
    confidences, predictions = probs.max(dim=1)
    return calibration_error_from_confidences(confidences, predictions == labels, n_bins)


# ---------------------------------------------------------------- corruptions


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


def _check_names(corruptions: Sequence[str], severities: Sequence[int]) -> None:
    """Unknown corruptions or severities fail before any work."""
    unknown = [c for c in corruptions if c not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption {', '.join(unknown)}; valid: {', '.join(CORRUPTION_NAMES)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise ValueError(f"severities must be in {SEVERITIES}, got {bad}")


def parse_corruptions(text: str) -> list[str]:
    """``"noise,blur"`` -> ``["noise", "blur"]``; ``"all"`` -> every corruption; unknown names raise."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(CORRUPTION_NAMES)
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown or not names:
        raise ValueError(f"unknown corruption {', '.join(unknown) or repr(text)}; valid: {','.join(CORRUPTION_NAMES)}")
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------- evaluation


def split_eval_transform(info: DataInfo) -> tuple[v2.Transform, v2.Compose]:
    """:func:`~accord.views.build_eval_transform` cut in two: its geometry (uint8 in, uint8 out) and the
    rest (conversion to float and normalisation), so a corruption can run between them."""
    from .views import build_eval_transform
    from .views.policies import eval_geometry

    ops = list(build_eval_transform(info).transforms)
    n_geometry = len(eval_geometry(info))
    geometry = v2.Compose(ops[:n_geometry]) if n_geometry else v2.Identity()
    return geometry, v2.Compose(ops[n_geometry:])


class _Transformed(Dataset):
    """``(transform(image), label)`` of an ``(image, label)`` dataset."""

    def __init__(self, dataset: Dataset, transform: Callable[[Tensor], Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image, label = self.dataset[index]
        return self.transform(image), int(label)


@dataclass
class _Tally:
    """Top-1 confidences and hits of one test condition, gathered batch by batch."""

    confidences: list[Tensor] = field(default_factory=list)
    correct: list[Tensor] = field(default_factory=list)
    top5: list[Tensor] = field(default_factory=list)

    def add(self, logits: Tensor, labels: Tensor) -> None:
        probs = logits.float().softmax(dim=1)
        top = probs.topk(min(5, probs.shape[1]), dim=1)
        hits = top.indices == labels[:, None]
        self.confidences.append(top.values[:, 0].cpu())
        self.correct.append(hits[:, 0].cpu())
        self.top5.append(hits.any(dim=1).cpu())

    def summary(self, n_bins: int) -> dict[str, float]:
        """top-1, top-5 and ECE, all in percent."""
        if not self.correct:
            return {"top1": float("nan"), "top5": float("nan"), "ece": float("nan")}
        correct = torch.cat(self.correct)
        return {
            "top1": 100.0 * correct.double().mean().item(),
            "top5": 100.0 * torch.cat(self.top5).double().mean().item(),
            "ece": 100.0 * calibration_error_from_confidences(torch.cat(self.confidences), correct, n_bins),
        }


def noise_generator(seed: int, name: str, severity: int) -> torch.Generator:
    """The generator of one (corruption, severity): a pure function of ``seed``, so results repeat."""
    return torch.Generator().manual_seed(seed * 1000 + 10 * CORRUPTION_NAMES.index(name) + severity)


@torch.no_grad()
def evaluate_robustness(
    model: nn.Module,
    dataset: Dataset,
    info: DataInfo,
    device: torch.device,
    batch_size: int = 500,
    corruptions: Sequence[str] = CORRUPTION_NAMES,
    severities: Sequence[int] = SEVERITIES,
    *,
    limit: int | None = None,
    seed: int = 0,
    n_bins: int = N_BINS,
    amp: str = "none",
    channels_last: bool = False,
    workers: int = 0,
) -> dict[str, Any]:
    """Clean top-1/top-5/ECE and, per (corruption, severity), top-1 and ECE of ``model`` (all in percent).

    ``dataset`` is accord's raw test split (uint8 CHW images and labels, as ``build_splits`` returns);
    ``limit`` keeps its first ``limit`` images. Each batch is read once; the eval geometry, each corruption
    (on the whole uint8 batch), then the normalisation of :func:`split_eval_transform` are applied to it.
    Gaussian noise is seeded by ``seed`` (:func:`noise_generator`), so a rerun with the same batch size gives
    the same numbers. ``mean_corruption_top1`` is the mean over every corruption and severity (Hendrycks &
    Dietterich's unnormalised mean corruption accuracy, mCA).
    """
    from .engine.loop import autocast

    _check_names(corruptions, severities)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        dataset = Subset(dataset, range(min(limit, len(dataset))))  # type: ignore[arg-type]
    geometry, finish = split_eval_transform(info)
    loader = DataLoader(_Transformed(dataset, geometry), batch_size=batch_size, num_workers=workers)
    generators = {(c, s): noise_generator(seed, c, s) for c in corruptions for s in severities}
    tallies = {key: _Tally() for key in [None, *generators]}
    model.eval()

    def predict(images: Tensor) -> Tensor:
        x = finish(images.to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(amp, device):
            return model(x)

    for images, labels in loader:
        labels = labels.to(device)
        tallies[None].add(predict(images), labels)
        for (name, s), generator in generators.items():
            tallies[name, s].add(predict(corrupt(images, name, s, generator)), labels)
    return _robustness_result(tallies, corruptions, severities, n_bins, seed, len(dataset))  # type: ignore[arg-type]


def _robustness_result(
    tallies: dict[Any, _Tally], corruptions: Sequence[str], severities: Sequence[int], n_bins: int, seed: int, n: int
) -> dict[str, Any]:
    per_corruption: dict[str, Any] = {}
    for name in corruptions:
        cells = [tallies[name, s].summary(n_bins) for s in severities]
        top1 = [c["top1"] for c in cells]
        ece = [c["ece"] for c in cells]
        per_corruption[name] = {
            "params": [SEVERITY_PARAMS[name][s - 1] for s in severities],
            "top1": top1,
            "ece": ece,
            "mean_top1": _mean(top1),
            "mean_ece": _mean(ece),
        }
    every = [v for c in per_corruption.values() for v in c["top1"]]
    return {
        "n": n,
        "n_bins": n_bins,
        "seed": seed,
        "severities": list(severities),
        "clean": tallies[None].summary(n_bins),
        "corruptions": per_corruption,
        "mean_corruption_top1": _mean(every),
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def evaluate_checkpoint_robustness(
    path: str | Path,
    dataset: str | None = None,
    data_dir: str | None = None,
    corruptions: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    *,
    limit: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_robustness` of a checkpoint's model on the test set of its dataset (or of ``dataset``).

    With no ``corruptions`` this is the clean top-1/top-5 of :func:`~accord.engine.evaluate_checkpoint`
    (same data, model and eval transform) plus the ECE.
    """
    from .engine import load_eval_model
    from .engine.run import loader_workers

    model, cfg, splits, device = load_eval_model(path, dataset, data_dir, device)
    result = evaluate_robustness(
        model,
        splits.test,
        splits.info,
        device,
        cfg.get("eval_batch_size", 500),
        corruptions,
        severities,
        limit=limit,
        seed=seed,
        amp=cfg.get("amp", "none"),
        channels_last=cfg.get("channels_last", False),
        workers=loader_workers(cfg.get("workers", 0)),
    )
    return {"checkpoint": str(path), "dataset": splits.info.name, "model": cfg["model"], **result}


def format_robustness(result: dict[str, Any]) -> str:
    """A markdown table of top-1 (%): one row per corruption, one column per severity, and the mean."""
    severities = result["severities"]
    head = "| top-1 (%) | " + " | ".join(f"s{s}" for s in severities) + " | mean |"
    rule = "|---|" + "---:|" * (len(severities) + 1)
    rows = [head, rule]
    for name, cell in result["corruptions"].items():
        values = " | ".join(_fmt(v) for v in cell["top1"])
        rows.append(f"| {name} | {values} | {_fmt(cell['mean_top1'])} |")
    blank = " | ".join("" for _ in severities)
    rows.append(f"| **mean** | {blank} | **{_fmt(result['mean_corruption_top1'])}** |")
    clean = result["clean"]
    rows.append(
        f"\nclean top-1 {_fmt(clean['top1'])}, mean corruption top-1 {_fmt(result['mean_corruption_top1'])} "
        f"({result['n']} images; ECE clean {_fmt(clean['ece'])}%)"
    )
    return "\n".join(rows)


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.2f}"
