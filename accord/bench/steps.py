"""Measure what agreement between views costs: step overhead, loss share, loader throughput, memory.

Every timing is taken in one process, interleaved (``A, B, C, A, B, C, ...``), after warm-up; a ratio is
the median over repeats of the per-repeat ratio, so slow drift of a busy machine cancels out. See
``docs/performance.md`` for the method and measured numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from ..data.datasets import DataInfo, TensorImageDataset
from ..data.loading import data_loader
from ..losses import METHODS, baseline_method, create_loss, method_spec
from ..models import MultiViewModel
from ..models.factory import create_model
from ..step import ViewStep, apply_update, backward, build_step

MEASURED_METHODS = tuple(name for name, spec in METHODS.items() if spec.bench)  # MethodSpec.bench
LOADER_POLICIES = ("crop-flip", "crop-flip-randaug_2_14")
LOADER_WORKERS = (0, 2)


@dataclass(frozen=True)
class BenchConfig:
    """What to measure: the model, batch ``B`` (images per step), views ``V`` of a two-view method."""

    model: str = "ResNet8"
    batch: int = 64
    views: int = 2
    image_size: int = 32
    channels: int = 3
    num_classes: int = 10
    repeats: int = 10
    warmup: int = 2
    loader_batches: int = 6
    augment_images: int = 256
    device: str = "cpu"
    e2e_steps: int = 20  # timed steps per end-to-end epoch (Fashion-MNIST, 28 px, 1 channel)
    e2e_workers: int = 2
    compile: bool = False  # the trainer's compile: true (accord.step's rule: a loss with a weight schedule stays eager)
    amp: str = "none"  # "bf16": the trainer's amp: bf16 autocast (fp16 needs a grad scaler and is not timed here)
    e2e_data: str | None = None  # an image folder: the end-to-end runs read its images at image_size


@dataclass
class Step:
    """One measurable unit: ``run()`` does the work, ``images`` is how many images it consumes."""

    run: Callable[[], Any]
    images: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def views_of(method: str, views: int) -> int:
    """The views a step of ``method`` makes: its registry's number (JSD: 3), else ``views``."""
    return method_spec(method).views or views


def build_training(
    cfg: BenchConfig, method: str, num_views: int, bn_mode: str, device: torch.device
) -> tuple[ViewStep, torch.optim.Optimizer]:
    """The training step (as ``accord train`` builds it, compiled with ``cfg.compile``) and an SGD optimizer (model
    and loss parameters, like the trainer) of one method."""
    net = create_model(cfg.model, cfg.num_classes, in_chans=cfg.channels)
    model = MultiViewModel(net, num_views=num_views, bn_mode=bn_mode).to(device)  # type: ignore[arg-type]
    criterion = create_loss(method, cfg.num_classes, num_views).to(device)
    step = build_step(model, criterion, method_spec(method), amp=cfg.amp, compile=cfg.compile)
    if not isinstance(step, ViewStep):  # build_step gives a ViewStep unless it is asked for several processes
        raise TypeError(f"expected a ViewStep, got {type(step).__name__}")
    optimizer = torch.optim.SGD(step.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    return step.train(), optimizer


def bench_update(step: ViewStep, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """One update as the bench times it: the step's forward, then its backward and the optimizer step."""
    terms, _ = step(x, y)
    optimizer.zero_grad(set_to_none=True)
    backward(terms["loss"])
    apply_update(optimizer)
    return terms


def make_train_step(cfg: BenchConfig, method: str, num_views: int, batch: int, bn_mode: str = "concat") -> Step:
    """A full training step (forward, loss, backward, SGD step) on fixed random ``num_views * batch`` images."""
    device = torch.device(cfg.device)
    step, optimizer = build_training(cfg, method, num_views, bn_mode, device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_views * batch, cfg.channels, cfg.image_size, cfg.image_size, generator=gen).to(device)
    y = torch.randint(0, cfg.num_classes, (batch,), generator=gen).to(device)

    def run() -> None:
        bench_update(step, optimizer, x, y)
        _sync(device)

    return Step(run, num_views * batch)


def make_loss_step(cfg: BenchConfig, method: str, num_views: int) -> Step:
    """The loss terms alone: criterion forward + backward on fixed logits and features (AgMax's Q head too)."""
    device = torch.device(cfg.device)
    step, _ = build_training(cfg, method, num_views, "concat", device)
    model, criterion = step.views, step.criterion
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(num_views * cfg.batch, cfg.channels, cfg.image_size, cfg.image_size, generator=gen).to(device)
    y = torch.randint(0, cfg.num_classes, (cfg.batch,), generator=gen).to(device)
    with torch.no_grad():
        out = model(x)
    logits = out.logits.detach().requires_grad_(True)
    features = out.features.detach().requires_grad_(True)

    def run() -> None:
        logits.grad = features.grad = None
        criterion.zero_grad(set_to_none=True)
        criterion(logits, y, features)["loss"].backward()
        _sync(device)

    return Step(run, num_views * cfg.batch)


def time_interleaved(steps: dict[str, Step], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each step per repeat, run round-robin (one of each per round) after ``warmup`` rounds."""
    for _ in range(warmup):
        for step in steps.values():
            step.run()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step.run()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of ``num[r] / den[r]`` (both timed in the same round)."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def baseline_step(views: int) -> str:
    """The name of the baseline's step on ``views * B`` images (``ce_2v``), what a ``views``-view method is timed
    against: as many images through the network, no agreement term."""
    return f"{baseline_method()}_{views}v"


def baseline_steps(cfg: BenchConfig) -> dict[str, int]:
    """Each baseline step to time and its view count: one per view count of ``cfg.views`` and the measured
    methods (``cfg.views`` first)."""
    counts = dict.fromkeys([cfg.views, *sorted({views_of(m, cfg.views) for m in MEASURED_METHODS})])
    return {baseline_step(views): views for views in counts}


def own_bn_step(method: str) -> str:
    """The name of ``method``'s step with its authors' BatchNorm mode (``MethodSpec.bn``) in place of concat."""
    return f"{method}_bn_{method_spec(method).bn}"


def own_bn_methods() -> tuple[str, ...]:
    """The measured methods whose authors' BatchNorm mode is not one pass over all views: each is timed both ways."""
    return tuple(m for m in MEASURED_METHODS if method_spec(m).bn != "concat")


def step_steps(cfg: BenchConfig) -> dict[str, Step]:
    """Every step to time: the baseline on as many images as each method, each method, each method with its
    authors' BatchNorm mode where that is not concat, and the losses alone."""
    base = baseline_method()
    steps = {name: make_train_step(cfg, base, 1, views * cfg.batch) for name, views in baseline_steps(cfg).items()}
    for method in MEASURED_METHODS:
        steps[method] = make_train_step(cfg, method, views_of(method, cfg.views), cfg.batch)
    for method in own_bn_methods():
        bn = method_spec(method).bn
        steps[own_bn_step(method)] = make_train_step(cfg, method, views_of(method, cfg.views), cfg.batch, bn_mode=bn)
    for method in MEASURED_METHODS:
        steps[f"loss_{method}"] = make_loss_step(cfg, method, views_of(method, cfg.views))
    return steps


def baseline_name(method: str, cfg: BenchConfig) -> str:
    """The baseline step ``method`` is compared with: as many images as its views."""
    return baseline_step(views_of(method, cfg.views))


def summarize_steps(cfg: BenchConfig, times: dict[str, list[float]]) -> dict[str, Any]:
    """Median step times, overhead ratios, own-BatchNorm/concat ratios, loss shares and the model's views/s."""
    step_ms = {name: 1000 * statistics.median(t) for name, t in times.items() if not name.startswith("loss_")}
    base = times[baseline_step(cfg.views)]
    return {
        "step_ms": step_ms,
        "loss_ms": {m: 1000 * statistics.median(times[f"loss_{m}"]) for m in MEASURED_METHODS},
        "overhead_ratio": {m: paired_ratio(times[m], times[baseline_name(m, cfg)]) for m in MEASURED_METHODS},
        "own_bn_vs_concat": {m: paired_ratio(times[own_bn_step(m)], times[m]) for m in own_bn_methods()},
        "loss_share_pct": {m: 100 * paired_ratio(times[f"loss_{m}"], times[m]) for m in MEASURED_METHODS},
        "model_views_per_s": cfg.views * cfg.batch / statistics.median(base),
    }


def random_info(cfg: BenchConfig) -> DataInfo:
    """A stand-in dataset description; ``small`` (pad-crop) for images of at most 32 px."""
    mean, std = (0.5,) * cfg.channels, (0.25,) * cfg.channels
    return DataInfo("random", cfg.num_classes, cfg.channels, cfg.image_size, mean, std, cfg.image_size <= 32)


def random_images(cfg: BenchConfig, n: int) -> TensorImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, cfg.channels, cfg.image_size, cfg.image_size), generator=gen, dtype=torch.uint8)
    return TensorImageDataset(images, torch.randint(0, cfg.num_classes, (n,), generator=gen))


def make_loader(cfg: BenchConfig, policy: str, workers: int) -> DataLoader:
    """The training input path: ViewDataset over in-memory uint8 images, ``cfg.views`` views, collate_views."""
    from ..views import ViewDataset, build_multiview_transform, collate_views

    data = random_images(cfg, cfg.batch * (cfg.loader_batches + 1))
    views = ViewDataset(data, build_multiview_transform([policy] * cfg.views, random_info(cfg)))
    return data_loader(views, workers=workers, batch_size=cfg.batch, shuffle=True, collate_fn=collate_views)


def loader_views_per_s(loader: DataLoader) -> float:
    """Views/s delivered after the first batch (worker start-up and the first batch are not counted)."""
    it = iter(loader)
    next(it)
    start, views = time.perf_counter(), 0
    for x, _ in it:
        views += x.shape[0]
    return views / (time.perf_counter() - start)


def measure_loaders(cfg: BenchConfig) -> dict[str, dict[str, float]]:
    """Median views/s per policy and worker count, interleaved across the configurations."""
    runs: dict[tuple[str, int], list[float]] = {(p, w): [] for p in LOADER_POLICIES for w in LOADER_WORKERS}
    for _ in range(max(1, min(cfg.repeats, 3))):
        for policy, workers in runs:
            runs[(policy, workers)].append(loader_views_per_s(make_loader(cfg, policy, workers)))
    out: dict[str, dict[str, float]] = {p: {} for p in LOADER_POLICIES}
    for (policy, workers), values in runs.items():
        out[policy][str(workers)] = statistics.median(values)
    return out


def measure_augment(cfg: BenchConfig) -> dict[str, float]:
    """Images/s on one core: per-image RandAugment and crop+flip (torchvision v2, the loader's path) vs the
    batched per-sample crop+flip of ``augment_on: device`` (:class:`~accord.views.batched.BatchedViews`,
    normalisation included; measured when kornia is installed and the images are at most 32 px)."""
    images = random_images(cfg, cfg.augment_images).images
    crop_flip = v2.Compose([v2.RandomCrop(cfg.image_size, padding=4), v2.RandomHorizontalFlip()])
    randaug = v2.RandAugment(num_ops=2, magnitude=14)
    runs = {
        "randaug_per_image": Step(lambda: [randaug(img) for img in images], len(images)),
        "crop_flip_per_image": Step(lambda: [crop_flip(img) for img in images], len(images)),
    }
    info = random_info(cfg)
    if info.fixed_size and find_spec("kornia") is not None:
        from ..views.batched import BatchedViews

        batched = BatchedViews(["crop-flip"], info)
        runs["crop_flip_batched_device"] = Step(lambda: batched(images), len(images))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = time_interleaved(runs, max(1, min(cfg.repeats, 5)), 1)
    finally:
        torch.set_num_threads(threads)
    return {name: runs[name].images / statistics.median(t) for name, t in times.items()}


def saved_activation_bytes(step_inputs: tuple[MultiViewModel, nn.Module, Tensor, Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward in one forward + loss (the activations)."""
    model, criterion, x, y = step_inputs
    seen: dict[tuple[int, int], int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), t.device.index or 0)] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        criterion(out.logits, y, out.features)
    return sum(seen.values())


def peak_memory_mb(cfg: BenchConfig, method: str, views: int, batch: int) -> float:
    """Peak memory of a training step, MiB.

    CUDA: ``torch.cuda.max_memory_allocated`` over two steps, less what was allocated before (weights,
    gradients, SGD momentum, input and activations). CPU: an account of the same parts: weights, gradients
    and momentum of every parameter (model and loss), the input batch, and the distinct storages autograd
    saves for backward (found with ``torch.autograd.graph.saved_tensors_hooks``); allocator overhead and
    short-lived temporaries are not counted.
    """
    device = torch.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step = make_train_step(cfg, method, views, batch)
        step.run()
        step.run()
        peak = torch.cuda.max_memory_allocated(device) - base
        del step
        return peak / 2**20
    built, _ = build_training(cfg, method, views, "concat", device)
    model, criterion = built.views, built.criterion
    x = torch.randn(views * batch, cfg.channels, cfg.image_size, cfg.image_size, device=device)
    y = torch.randint(0, cfg.num_classes, (batch,), device=device)
    params = sum(p.numel() * p.element_size() for p in [*model.parameters(), *criterion.parameters()])
    activations = saved_activation_bytes((model, criterion, x, y))
    return (3 * params + x.numel() * x.element_size() + activations) / 2**20


def measure_memory(cfg: BenchConfig) -> dict[str, float]:
    """Peak step memory of the baselines and each method (see :func:`peak_memory_mb` for what is counted)."""
    base = baseline_method()
    out = {name: peak_memory_mb(cfg, base, 1, views * cfg.batch) for name, views in baseline_steps(cfg).items()}
    for method in MEASURED_METHODS:
        out[method] = peak_memory_mb(cfg, method, views_of(method, cfg.views), cfg.batch)
    return out
