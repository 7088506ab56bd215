"""accord on a GPU: every method's training step under each precision and memory format, device views on CUDA held
to the CPU path's bounds, exact mid-epoch resume, NCCL under torchrun, GPU checkpoints read on the CPU, and the
bench's CUDA memory figure. Marked ``cuda``: skipped where ``torch.cuda.is_available()`` is false
(scripts/device_check.sh runs them on a GPU machine)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from interrupted_runs import assert_same_run, plant, send
from test_batched_policies import POLICIES, SPACES, _expect_matches, _images
from test_train import metrics, tiny_config

from accord.data import DataInfo
from accord.views import REGISTRY, parse_policy
from accord.views.batched import BatchedViews
from accord.views.batched_ops import OPS

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ROOT = Path(__file__).resolve().parents[1]
QUIET = lambda _: None  # noqa: E731
METHODS = ["", "-ls", "-agmax", "-agmax-mse", "-agmax-kl", "-agmax-ce", "-tied", "-jsd", "-ce2"]
PRECISIONS = {  # name -> the run options that select it
    "fp32": {},
    "bf16": {"amp": "bf16"},
    "fp16": {"amp": "fp16"},  # with a grad scaler
    "channels_last": {"channels_last": True},
}
ONE_EPOCH = {"epochs": 1, "train_subset": 64, "val_fraction": 0.2}  # 2 steps of 32 images
RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)
#: every registered token alone (those the device makes), then combinations the paper configs use
TOKENS = [
    *(name for name in sorted(REGISTRY) if not parse_policy(name, 32).augmentations[0].device_refusal()),
    "crop-flip-cutout",
    "crop-flip-randaug_2_14-cutout",
    "autoaug_svhn-trivialaug",
    "standard-augmix_2",
    "crop-flip-autoaug_agmax",
    "flip-tfrandaug_2_14",
    "crop-flip-jitter-lighting-ccutout",
    "none",
]


def _environment(out: Path) -> dict:
    from accord.engine import load_checkpoint

    return load_checkpoint(out / "checkpoint-last.pt")["environments"][-1]


# ------------------------------------------------------------------------------------------ training steps


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_on_cuda_in_each_precision(method, precision, fmnist_dir, tmp_path):
    from accord.engine import fit

    cfg = tiny_config(f"FashionMNIST-ResNet8-standard{method}", fmnist_dir, **ONE_EPOCH, **PRECISIONS[precision])
    summary = fit(cfg, tmp_path, log=QUIET)
    records = metrics(tmp_path)
    assert summary["epochs"] == 1 and all(torch.isfinite(torch.tensor(r["train"]["loss"])) for r in records)
    assert "gpu" in _environment(tmp_path)  # it trained on the GPU


def test_compiled_agmax_trains_on_cuda(fmnist_dir, tmp_path):
    from accord.engine import fit

    cfg = tiny_config("FashionMNIST-ResNet8-standard-agmax", fmnist_dir, **ONE_EPOCH, compile=True, amp="bf16")
    fit(cfg, tmp_path, log=QUIET)
    assert torch.isfinite(torch.tensor(metrics(tmp_path)[-1]["train"]["loss"]))


# ------------------------------------------------------------------------------------------ device views


@pytest.mark.parametrize("space", sorted(SPACES))
def test_each_op_on_cuda_is_within_the_cpu_bounds_of_torchvision(space):
    """The CPU equivalence test's bounds (tests/pixel_bounds.py), for the ops run on the GPU."""
    table, bins, interpolation = SPACES[space]
    x = _images(8, 3, 32)
    problems = []
    for name, (magnitudes_fn, signed) in table.items():
        values = magnitudes_fn(bins, 32, 32)
        cases = [0.0] if values is None else [float(v) * s for v in values for s in ((1, -1) if signed else (1,))]
        magnitudes = torch.tensor(cases, dtype=torch.float32).repeat_interleave(len(x))
        batch = x.repeat(len(cases), 1, 1, 1)
        out = OPS[name](batch.cuda(), magnitudes.cuda(), interpolation).cpu()
        problems += _expect_matches(batch, magnitudes, out, name, interpolation)
    assert not problems


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_each_policy_on_cuda_carries_out_the_cpu_plan(name):
    """The same plan on the GPU as on the CPU: equal but for the rounding ties the op bounds allow (a geometric
    op's tie moves a pixel to its neighbour's value, a blend's moves it one level)."""
    policy, x = POLICIES[name], _images(24, 3, 32)
    plan = policy.sample(len(x), 32, 32, torch.Generator().manual_seed(1))
    cpu, gpu = policy.apply(x, plan), policy.apply(x.cuda(), plan).cpu()
    differ = (cpu != gpu).float().mean().item()
    assert differ <= 0.005, f"{name}: {differ:.2%} of pixels differ between the CPU and the GPU"


@pytest.mark.parametrize("token", TOKENS)
def test_batched_views_of_every_token_on_cuda_follow_the_cpu_statistics(token):
    """Every loader token, made on the GPU from the CUDA generator: shape, normalisation and the per-channel
    mean and spread of the views within a few standard errors of the same module on the CPU."""
    images = _images(256, 3, 32)
    module = BatchedViews([token], RGB)
    torch.manual_seed(0)
    cpu = module(images)
    gpu = module.to("cuda")(images.cuda()).cpu()
    assert gpu.shape == cpu.shape and gpu.dtype == torch.float32 and torch.isfinite(gpu).all()
    if token == "none":
        assert torch.allclose(gpu, cpu, atol=1e-5)
        return
    for stat in (lambda v: v.mean(dim=(0, 2, 3)), lambda v: v.std(dim=(0, 2, 3))):
        # each image's mean varies by its own draws: the spread of the means over images bounds the error
        per_image = cpu.mean(dim=(2, 3)).std(dim=0) / len(images) ** 0.5
        assert ((stat(gpu) - stat(cpu)).abs() <= 5 * per_image + 0.02).all(), token


@pytest.mark.parametrize("policy", ["crop-flip-autoaug_agmax-jitter-lighting-ccutout", "crop-flip-randaug_2_14-cutout"])
def test_image_folder_views_on_cuda_follow_the_cpu_ones_at_224_px(policy):
    """ImageNet size: the loader's crops, the rest on the GPU; each channel's mean over a view follows the CPU's."""
    from scipy import stats
    from test_device_views_imagenet import IMAGENET, _photo

    from accord.views.batched import loader_transform

    crops, image = loader_transform([policy], IMAGENET), _photo()
    torch.manual_seed(0)
    batch = torch.cat([crops(image) for _ in range(256)])
    cpu = BatchedViews([policy], IMAGENET)(batch)
    gpu = BatchedViews([policy], IMAGENET).to("cuda")(batch.cuda()).cpu()
    assert gpu.shape == cpu.shape and torch.isfinite(gpu).all()
    for c in range(3):
        assert (
            stats.ks_2samp(gpu.mean(dim=(2, 3))[:, c].numpy(), cpu.mean(dim=(2, 3))[:, c].numpy()).pvalue > 1e-4
        )  # 3 channels x 2 policies


def test_image_folder_run_with_device_views_resumes_exactly_on_cuda(tmp_path, monkeypatch):
    from test_device_views_imagenet import train_stop_and_resume, write_jpeg_folder

    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    train_stop_and_resume(write_jpeg_folder(tmp_path / "jpegs"), tmp_path, monkeypatch)


# ------------------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("augment_on", ["loader", "device"])
def test_run_stopped_mid_epoch_on_cuda_resumes_to_the_uninterrupted_run(augment_on, fmnist_dir, tmp_path, monkeypatch):
    """The CUDA generator's state is in the mid-epoch checkpoint, so device views and dropout resume exactly."""
    from accord.engine import fit, load_checkpoint
    from accord.engine.trainer import TrainingInterrupted

    cfg = tiny_config("FashionMNIST-ResNet8-cutout-tied", fmnist_dir, augment_on=augment_on)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    fit(cfg, tmp_path / "whole", log=QUIET)
    with monkeypatch.context() as patch:
        plant(patch, at_call=3, action=send(signal.SIGTERM))
        with pytest.raises(TrainingInterrupted):
            fit(cfg, tmp_path / "cut", log=QUIET)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint-last.pt")["partial"] is not None
    fit(cfg, tmp_path / "cut", resume=True, log=QUIET)
    assert_same_run(tmp_path / "cut", tmp_path / "whole")


# ------------------------------------------------------------------------------------------ processes, files


def _accord(args: list[str], cwd: Path, launcher: list[str] | None = None, **env: str):
    launcher = launcher or [sys.executable, "-m", "accord"]
    environ = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    done = subprocess.run([*launcher, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def torchrun_run(fmnist_dir, tmp_path_factory) -> Path:
    """A 1-process torchrun run with NCCL and SyncBatchNorm, trained on the GPU."""
    out = tmp_path_factory.mktemp("torchrun") / "run"
    sets = [f"--set={kv}" for kv in ("batch_size=32", "lr_batch=32", "workers=2", "epochs=1", "sync_bn=true")]
    args = ["train", "--config", "FashionMNIST-ResNet8-standard-agmax", "--data-dir", str(fmnist_dir), *sets]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "accord"]
    _accord([*args, "--out", str(out)], out.parent, launcher)
    return out


def test_torchrun_with_nccl_and_sync_bn_trains_on_cuda(torchrun_run):
    summary = json.loads((torchrun_run / "summary.json").read_text())
    assert summary["epochs"] == 1
    assert "gpu" in _environment(torchrun_run)


def test_gpu_checkpoint_is_read_by_eval_and_export_on_the_cpu(torchrun_run, fmnist_dir, tmp_path):
    checkpoint = torchrun_run / "checkpoint-last.pt"
    cpu_only = {"CUDA_VISIBLE_DEVICES": ""}
    args = ["eval", "--checkpoint", str(checkpoint), "--data-dir", str(fmnist_dir), "--json"]
    done = _accord(args, tmp_path, **cpu_only)
    assert "top1" in done.stdout
    _accord(["export", str(torchrun_run), "--out", str(tmp_path / "model.safetensors")], tmp_path, **cpu_only)
    assert (tmp_path / "model.safetensors").stat().st_size > 0


def test_bench_on_cuda_reports_peak_memory_from_the_allocator(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--device", "cuda", "--repeats", "2", "--e2e-steps", "2", "--batch", "16", "--out", str(out)]
    done = _accord(args, tmp_path)
    result = json.loads(out.read_text())
    assert result["peak_memory_kind"] == "cuda max_memory_allocated"
    assert all(v > 0 for v in result["peak_memory_mb"].values())
    assert "max_memory_allocated" in done.stdout
