"""``augment_on: device`` at ImageNet size: crops and flips in the loader (ViewCrops), the rest of every view made
batch-wise per image (BatchedViews), against the loader's per-image pipeline at 224 px; and an image-folder run
with ResNet-50's recipe views that trains and resumes exactly."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pixel_bounds import BLEND_LEVELS
from scipy import stats
from torchvision.transforms import v2

from accord.data import DataInfo
from accord.views import build_multiview_transform
from accord.views.batched import BatchedViews, loader_transform
from accord.views.batched_photometric import BatchedClippedCutout, BatchedColorJitter, BatchedLighting
from accord.views.cutout import ClippedCutout
from accord.views.lighting import Lighting
from accord.views.loader_crops import ViewCrops

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGENET = DataInfo("imagefolder", 3, 3, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), fixed_size=False)
P_MIN = 1e-3  # a two-sample test's p-value below this fails: a wrong distribution, not chance


def _photo(seed: int = 0, height: int = 260, width: int = 300) -> torch.Tensor:
    """A uint8 (3, H, W) image with structure (gradients, stripes) and noise, larger than 224 px."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    base = torch.stack([xs * 200 // width, ys * 200 // height, ((xs // 7 + ys // 11) % 2) * 120])
    return (base + torch.randint(0, 50, (3, height, width), generator=g)).clamp(0, 255).to(torch.uint8)


def _two_sample(a: torch.Tensor, b: torch.Tensor) -> float:
    return stats.ks_2samp(a.double().numpy(), b.double().numpy()).pvalue


# ---------------------------------------------------------------------------------------- jitter


def _torchvision_jitter_of_plan(image: torch.Tensor, plan, i: int, jitter: v2.ColorJitter) -> torch.Tensor:
    """torchvision's ColorJitter on one image with the order and factors that ``plan`` drew for image ``i``."""
    order, factors = [], {}
    for step in plan.steps:
        k = int(step.ops[i])
        order.append(3 if k < 0 else k)
        if k >= 0:
            factors[k] = 1.0 + float(step.magnitudes[i])
    params = {
        "fn_idx": [k for k in order if k != 3] + [3],
        "brightness_factor": factors.get(0),
        "contrast_factor": factors.get(1),
        "saturation_factor": factors.get(2),
        "hue_factor": None,
    }
    return jitter.transform(image, params)


@pytest.mark.numerics
def test_jitter_of_each_image_is_torchvisions_with_its_draws_at_224_px():
    """Each image's order and factors, replayed through torchvision's ColorJitter: within the blends' bound, carried
    through the chain (a blend with factor f moves an earlier difference e to at most (f + |1 - f|) e, brightness to
    f e, and a blend adds its own BLEND_LEVELS on a processor where torchvision's blend is not fused)."""
    images = torch.stack([_photo(s, 224, 224) for s in range(12)])
    policy = BatchedColorJitter(0.4, 0.4, 0.4)
    plan = policy.sample(len(images), 224, 224, torch.Generator().manual_seed(0))
    out = policy.apply(images, plan)
    jitter = v2.ColorJitter(0.4, 0.4, 0.4)
    for i, image in enumerate(images):
        worst = int((out[i].int() - _torchvision_jitter_of_plan(image, plan, i, jitter).int()).abs().max())
        assert worst <= _chain_bound(plan, i), f"image {i}: {worst} levels from torchvision"


def _chain_bound(plan, i: int) -> int:
    bound = 0
    for step in plan.steps:
        k, factor = int(step.ops[i]), 1.0 + float(step.magnitudes[i])
        if k == 0:  # brightness: one correctly rounded product, exact on every processor
            bound = math.ceil(factor * bound)
        elif k > 0:
            bound = math.ceil((factor + abs(1 - factor)) * bound) + BLEND_LEVELS
    return bound


def test_jitter_draws_uniform_factors_and_orders():
    plan = BatchedColorJitter(0.4, 0.2, 0.3).sample(20000, 8, 8, torch.Generator().manual_seed(1))
    ops = torch.stack([s.ops for s in plan.steps], dim=1)  # (n, 4 slots)
    assert all(((ops == k).sum(dim=1) == 1).all() for k in range(3))  # each operation once per image
    assert all(stats.chisquare(torch.bincount(ops[:, slot] + 1).numpy()).pvalue > P_MIN for slot in range(4))
    off = BatchedColorJitter(0.4, 0.2, 0.0).sample(100, 8, 8, torch.Generator().manual_seed(1))
    assert all((s.ops != 2).all() for s in off.steps)  # saturation 0: torchvision skips it
    bright = torch.cat([s.magnitudes[s.ops == 0] for s in plan.steps]) + 1
    assert stats.kstest(bright.numpy(), stats.uniform(0.6, 0.8).cdf).pvalue > P_MIN


# ---------------------------------------------------------------------------------------- lighting, cutout


def test_lighting_offsets_follow_the_loader_transforms():
    torch.manual_seed(0)
    flat = torch.full((3000, 3, 2, 2), 0.5)
    batched = BatchedLighting(0.1)(flat)[:, :, 0, 0] - 0.5
    loader = torch.stack([Lighting(0.1)(image) for image in flat[:3000]])[:, :, 0, 0] - 0.5
    for c in range(3):
        assert _two_sample(batched[:, c], loader[:, c]) > P_MIN, c


def test_clipped_cutout_erases_as_the_loader_transform_at_224_px():
    torch.manual_seed(0)
    ones = torch.ones(600, 3, 224, 224)
    batched = BatchedClippedCutout(112)(ones)
    loader = torch.stack([ClippedCutout(112)(image) for image in ones])
    assert torch.equal(batched[:, 0], batched[:, 1])  # every channel alike
    erased = [(x[:, 0] == 0).flatten(1) for x in (batched, loader)]
    assert _two_sample(erased[0].sum(1), erased[1].sum(1)) > P_MIN  # the clipped area
    rows = [(x[:, 0] == 0).any(dim=2).float().argmax(dim=1) for x in (batched, loader)]  # the first erased row
    assert _two_sample(rows[0], rows[1]) > P_MIN
    ys = (batched[:, 0] == 0).any(dim=2)  # each erased region is one band of rows: a square clipped at the border
    assert all(torch.nonzero(r).flatten().diff().eq(1).all() for r in ys)


# ---------------------------------------------------------------------------------------- whole views


RECIPE_VIEWS = ["crop-flip-jitter-lighting-ccutout", "crop-flip-autoaug_agmax-jitter-lighting-cutout"]


def test_view_crops_are_the_loader_pipelines_geometry():
    image = _photo()
    crops = ViewCrops(["crop-flip-randaug", "flip"], IMAGENET)
    torch.manual_seed(3)
    made = crops(image)
    assert made.shape == (2, 3, 224, 224) and made.dtype == torch.uint8
    torch.manual_seed(3)
    assert torch.equal(made[0], crops.crops[0](image))
    assert torch.equal(made[1], crops.crops[1](image))  # no crop: the evaluation resize and centre crop, flipped
    shared = ViewCrops(["crop", "crop-jitter"], IMAGENET, same_crop=True)(image)
    assert torch.equal(shared[0], shared[1])


@pytest.mark.parametrize(
    "policy", [*RECIPE_VIEWS, "crop-flip-randaug_2_14", "crop-flip-trivialaug", "crop-flip-augmix"]
)
def test_device_views_follow_the_loader_views_at_224_px(policy):
    """The same image, many draws: each channel's mean and spread over a view follow the same distributions on both
    paths (two-sample Kolmogorov-Smirnov), and CutOut erases as much."""
    image, n = _photo(), 160
    loader = build_multiview_transform([policy], IMAGENET)
    torch.manual_seed(0)
    reference = torch.stack([loader(image)[0] for _ in range(n)])
    crops, module = loader_transform([policy], IMAGENET), BatchedViews([policy], IMAGENET)
    device = module(torch.stack([crops(image)[0] for _ in range(n)]))
    for stat in (lambda v: v.mean(dim=(2, 3)), lambda v: v.std(dim=(2, 3))):
        for c in range(3):
            p = _two_sample(stat(device)[:, c], stat(reference)[:, c])
            assert p > P_MIN, f"{policy}: channel {c}, p = {p:.2g}"
    zeros = [(v == 0).all(dim=1).flatten(1).sum(1) for v in (device, reference)]
    assert _two_sample(zeros[0], zeros[1]) > P_MIN


# ---------------------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jpeg_folder(tmp_path_factory.mktemp("jpegs"))


def write_jpeg_folder(root: Path) -> Path:
    """An ImageNet-layout folder of JPEGs of varied sizes: 3 classes, 4 train and 2 val images each."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for label in range(3):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for i in range(n):
                height, width = (int(v) for v in rng.integers(90, 140, 2))
                stripes = (np.arange(width) % (3 + label) < 2)[None, :, None] * 150
                pixels = rng.integers(0, 60, (height, width, 3)) + stripes
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)
    return root


def test_image_folder_run_with_the_resnet50_recipe_views_on_the_device_resumes_exactly(
    jpeg_folder, tmp_path, monkeypatch
):
    """ResNet-50's recipe (jitter, lighting, the authors' AutoAugment, clipped CutOut) with the network swapped for
    ResNet-8 at 64 px so it is quick: views made on the device, a run stopped mid-epoch resumes to the same result."""
    train_stop_and_resume(jpeg_folder, tmp_path, monkeypatch)


def train_stop_and_resume(jpeg_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train the recipe whole, then stopped in its first epoch and resumed: the same metrics and weights."""
    from interrupted_runs import assert_same_run, plant, send
    from test_train import metrics

    from accord.config import load_config
    from accord.engine import fit
    from accord.engine.trainer import TrainingInterrupted

    overrides = {"model": "ResNet8", "image_size": 64, "batch_size": 4, "lr_batch": 4, "epochs": 2, "workers": 0}
    overrides |= {"eval_batch_size": 6, "log_interval": 1, "augment_on": "device", "data_dir": str(jpeg_folder)}
    cfg = load_config("ResNet50-auto_augment-cutout-agmax", overrides)
    assert cfg.views.augment_on == "device" and all("jitter-lighting" in v for v in cfg.views.view_policies)
    fit(cfg, tmp_path / "whole", log=lambda _: None)
    with monkeypatch.context() as patch:
        plant(patch, at_call=2, action=send(signal.SIGTERM))  # inside the first epoch's second step
        with pytest.raises(TrainingInterrupted):
            fit(cfg, tmp_path / "cut", log=lambda _: None)
    fit(cfg, tmp_path / "cut", resume=True, log=lambda _: None)
    assert_same_run(tmp_path / "cut", tmp_path / "whole")
    assert all(np.isfinite(r["train"]["loss"]) for r in metrics(tmp_path / "whole"))
