"""Several processes (torch.distributed, gloo on CPU): sharding, global-batch losses, and torchrun runs that
match one process with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from accord.engine import load_checkpoint
from accord.engine.runfiles import TIMING_KEYS
from accord.engine.sampling import EpochSampler, epoch_permutation
from accord.losses import create_loss
from accord.models import MultiViewModel
from accord.models.sync_batchnorm import convert_sync_batchnorm

ROOT = Path(__file__).resolve().parents[1]


def test_ranks_share_each_global_batch_exactly():
    n, seed, batch = 53, 11, 8
    order = epoch_permutation(n, seed).tolist()
    for start_step in (0, 2, n // batch):  # the last: resumed after the epoch's last full step, nothing left
        shards = [
            list(EpochSampler(n, seed, start_step * batch, rank=r, world_size=2, batch_size=batch)) for r in range(2)
        ]
        assert [len(s) for s in shards] == [len(EpochSampler(n, seed, start_step * batch, rank=r, world_size=2,
                                                             batch_size=batch)) for r in range(2)]  # fmt: skip
        steps = n // batch - start_step
        for step in range(steps):  # rank 0's rows then rank 1's rows = the one-process batch of that step
            joined = shards[0][step * 4 : (step + 1) * 4] + shards[1][step * 4 : (step + 1) * 4]
            first = (start_step + step) * batch
            assert joined == order[first : first + batch]
        assert sum(len(s) for s in shards) == steps * batch  # the incomplete last batch is dropped
    with pytest.raises(ValueError, match="does not split"):
        EpochSampler(n, seed, rank=0, world_size=3, batch_size=8)


def tiny_model() -> MultiViewModel:
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet10t", num_classes=10, in_chans=1)
    return MultiViewModel(net, num_views=2)


def views_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 8, 1, 16, 16, generator=g)  # (view, image, C, H, W)
    labels = torch.randint(0, 10, (8,), generator=g)
    return images, labels


def step_gradients(
    method: str, rank: int = 0, world: int = 1, global_marginals: bool = True, sync_bn: bool = True
) -> dict:
    """Loss, gradients and BatchNorm running statistics after one training step on this process's share of
    the batch; under ``world > 1`` the model and loss run inside DDP (global-batch BatchNorm), as the trainer
    does with ``sync_bn``."""
    from accord.losses import method_spec
    from accord.step import ViewStep

    model = tiny_model()
    torch.manual_seed(2)
    options = {"global_marginals": global_marginals} if method == "agmax" else {}
    criterion = create_loss(method, 10, 2, **options)
    images, labels = views_batch()
    share = slice(rank * 8 // world, (rank + 1) * 8 // world)
    x = images[:, share].reshape(-1, 1, 16, 16)  # view-major: this process's images of view 1, then view 2
    step: nn.Module = ViewStep(model, criterion, method_spec(method))
    if world > 1:
        if sync_bn:
            model = convert_sync_batchnorm(model, torch.device("cpu"))
        step = DistributedDataParallel(ViewStep(model, criterion, method_spec(method)))
    terms, _ = step(x, labels[share])
    terms["loss"].backward()
    named = [*model.named_parameters(), *criterion.named_parameters()]
    loss = terms["loss"].detach().clone()
    if world > 1:
        dist.all_reduce(loss)
        loss /= world
    stats = {k: b.clone() for k, b in model.named_buffers() if "running" in k}
    return {"loss": loss, **{k: p.grad.detach().clone() for k, p in named}, **stats}


def _worker(rank: int, world: int, init: str, method: str, global_marginals: bool, sync_bn: bool, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        result = step_gradients(method, rank, world, global_marginals, sync_bn)
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


def two_process_step(tmp_path: Path, method: str, global_marginals: bool = True, sync_bn: bool = True) -> dict:
    out = tmp_path / f"{method}-{global_marginals}-{sync_bn}.pt"
    init = f"file://{tmp_path / f'rendezvous-{method}-{global_marginals}-{sync_bn}'}"
    mp.spawn(_worker, args=(2, init, method, global_marginals, sync_bn, str(out)), nprocs=2)
    return torch.load(out, weights_only=True)


@pytest.mark.numerics
@pytest.mark.parametrize("method", ["ce", "agmax", "tied"])
def test_two_processes_give_the_one_process_loss_and_gradients(method, tmp_path, one_thread):
    """DDP over two halves of a batch (gradients averaged by DDP, BatchNorm synchronised, AgMax's marginals
    summed over processes with gradient) is the one-process step on the whole batch."""
    single = step_gradients(method)
    double = two_process_step(tmp_path, method)
    assert single.keys() == double.keys()
    for key in single:  # summation orders differ (gloo's all-reduce, the float64 BatchNorm merge): a bound scaled to
        # the tensor (measured drift at most 1.1e-6 of its largest entry, on AVX-512, AVX2 and the default path)
        atol = 1e-5 * float(single[key].abs().max())
        torch.testing.assert_close(double[key], single[key], rtol=1e-4, atol=atol, msg=key)


def test_agmax_marginals_of_each_process_alone_differ(tmp_path, one_thread):
    """The global-batch marginals matter: each process's own marginals give another loss (the test above
    could not pass without the all-reduce)."""
    single = step_gradients("agmax")
    local = two_process_step(tmp_path, "agmax", global_marginals=False)
    assert not torch.allclose(local["loss"], single["loss"], rtol=1e-4)


def test_batchnorm_of_each_process_alone_differs(tmp_path, one_thread):
    """Without global-batch BatchNorm each process normalises its half: other gradients and running stats."""
    single = step_gradients("ce")
    local = two_process_step(tmp_path, "ce", sync_bn=False)
    assert not torch.allclose(local["model.conv1.0.weight"], single["model.conv1.0.weight"], rtol=1e-3)


def test_global_batchnorm_is_batchnorm_in_one_process():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    ref = bn(x)
    ref.square().sum().backward()
    grad, stats = x.grad.clone(), (bn.running_mean.clone(), bn.running_var.clone())
    x.grad = None
    converted = convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))
    assert type(converted[0]).__name__ == "GlobalBatchNorm"
    out = converted(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, grad)
    torch.testing.assert_close((converted[0].running_mean, converted[0].running_var), stats)


TRAIN = ["batch_size=32", "lr_batch=32", "lr=0.02", "eval_batch_size=50", "workers=0", "epochs=3", "sync_bn=true"]


def accord_train(
    tmp: Path, nproc: int, args: list[str], wait: bool = True
) -> subprocess.Popen | subprocess.CompletedProcess:
    """``accord train`` in one process, or under ``torchrun --nproc_per_node nproc`` (gloo on CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    launcher = [sys.executable, "-m", "accord"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                    "-m", "accord"]  # fmt: skip
    cmd = [*launcher, "train", *args]
    if not wait:
        return subprocess.Popen(
            cmd, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def run_args(config: str, fmnist_dir: Path, out: Path, *extra: str) -> list[str]:
    sets = [item for kv in [*TRAIN, *extra] for item in ("--set", kv)]
    return ["--config", config, "--data-dir", str(fmnist_dir), *sets, "--out", str(out)]


def trajectory(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def assert_same_run(a: Path, b: Path, exact: bool = False) -> None:
    """Same loss terms per epoch, accuracies and final weights, to float drift (or exactly).

    The tolerances are float drift, measured here: one process with 2 threads instead of 1 (other summation
    orders, nothing else) differs by ~2e-5 in the first epoch's mean loss, ~2e-4 in the third, and by up to
    2% (relative norm; small BN biases) in the final weights. Two processes differ from one by the same
    amounts (CE 5e-5 and Tied's feature MSE 2.4e-4 after an epoch; weights 2%). A real difference is far
    larger: per-process BatchNorm instead of global-batch BatchNorm gives 2.4e-2 after one epoch, 1e-1 after two.
    """
    ta, tb = trajectory(a), trajectory(b)
    assert [r["epoch"] for r in ta] == [r["epoch"] for r in tb]
    for ra, rb in zip(ta, tb, strict=True):
        rtol = 0.0 if exact else 1e-3 if ra["epoch"] == 1 else 5e-3
        for term in ra["train"].keys() - {"train_top1"}:
            assert rb["train"][term] == pytest.approx(ra["train"][term], rel=rtol, abs=1e-7), (term, ra, rb)
        for key in ("val_top1", "test_top1"):  # near-ties may flip an image or two of 40-352
            assert abs(ra[key] - rb[key]) <= (0.0 if exact else 5.0), (key, ra, rb)
        assert abs(ra["train"]["train_top1"] - rb["train"]["train_top1"]) <= (0.0 if exact else 1.0), (ra, rb)
    wa, wb = load_checkpoint(a / "checkpoint-last.pt"), load_checkpoint(b / "checkpoint-last.pt")
    for part in ("model", "criterion"):
        for k, ref in wa[part].items():
            if exact:
                assert torch.equal(wb[part][k], ref), k
            elif ref.is_floating_point():  # relative distance of each weight tensor
                gap = float((wb[part][k] - ref).norm() / ref.norm().clamp_min(1e-12))
                assert gap <= 0.05, (k, gap)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["", "-agmax", "-tied"])
def test_torchrun_two_processes_follow_the_one_process_run(method, fmnist_dir, tmp_path):
    """Same global batch, same data order, same views: the 2-process run's loss terms per epoch, accuracies
    and final weights are the 1-process run's, to float tolerance."""
    config = f"FashionMNIST-ResNet8-standard{method}"
    accord_train(tmp_path, 1, run_args(config, fmnist_dir, tmp_path / "one"))
    done = accord_train(tmp_path, 2, run_args(config, fmnist_dir, tmp_path / "two"))
    assert "2 processes" in done.stdout + done.stderr
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["epochs"] == 3
    assert_same_run(tmp_path / "one", tmp_path / "two")


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 300, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


@pytest.mark.slow
def test_two_process_run_killed_after_an_epoch_resumes_to_the_same_result(fmnist_dir, tmp_path):
    config = "FashionMNIST-ResNet8-standard-agmax"
    whole = tmp_path / "whole"
    accord_train(tmp_path, 2, run_args(config, fmnist_dir, whole))
    # SIGKILL every process of the run (torchrun and its workers) once the first epoch is on disk
    cut = tmp_path / "cut"
    proc = accord_train(tmp_path, 2, run_args(config, fmnist_dir, cut), wait=False)
    wait_for(lambda: (cut / "metrics.jsonl").is_file(), proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (cut / "summary.json").exists()
    accord_train(tmp_path, 2, ["--resume", str(cut)])
    assert_same_run(whole, cut, exact=True)  # same processes, same reductions: bit for bit


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_process_at_one_step_and_resumes_mid_epoch(fmnist_dir, tmp_path):
    """torchrun forwards SIGTERM to its workers; they agree on one step, gather both processes' partial sums
    and random states into one checkpoint, and the resumed run ends as an uninterrupted one."""
    config = "FashionMNIST-ResNet8-standard-tied"
    extra = ("mix=mixup", "checkpoint_every_steps=1")  # a checkpoint after each step tells when one has run
    whole = tmp_path / "whole"
    accord_train(tmp_path, 2, run_args(config, fmnist_dir, whole, *extra))
    cut = tmp_path / "cut"
    proc = accord_train(tmp_path, 2, run_args(config, fmnist_dir, cut, *extra), wait=False)
    wait_for(lambda: (cut / "checkpoint-last.pt").is_file(), proc, poll=0.005)  # after the first step of 11
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, output
    assert "SIGTERM: stopped at step" in output, output
    ckpt = load_checkpoint(cut / "checkpoint-last.pt")
    assert ckpt["partial"] is not None and len(ckpt["partial"]["ranks"]) == 2  # both processes' state
    accord_train(tmp_path, 2, ["--resume", str(cut)])
    assert_same_run(whole, cut, exact=True)


@pytest.mark.slow
def test_split_batchnorm_trains_under_two_processes(fmnist_dir, tmp_path):
    """bn: split (timm's auxiliary BN for view 2) works per process under DDP; the export keeps main BN."""
    out = tmp_path / "split"
    accord_train(
        tmp_path, 2, run_args("FashionMNIST-ResNet8-standard-tied", fmnist_dir, out, "bn=split", "sync_bn=false")
    )
    records = trajectory(out)
    assert len(records) == 3 and records[-1]["train"]["loss"] < records[0]["train"]["loss"]
    assert any(".aux_bn." in k for k in load_checkpoint(out / "checkpoint-last.pt")["model"])


@pytest.mark.slow
def test_a_locked_folder_stops_every_process_at_once(fmnist_dir, tmp_path):
    """Rank 0 alone takes the run folder's lock; when another process holds it, rank 0's one-line error
    reaches the other ranks, which stop with it instead of waiting for rank 0 at a barrier."""
    from accord.engine.lock import RunLock

    out = tmp_path / "run"
    accord_train(tmp_path, 1, run_args("FashionMNIST-ResNet8-standard", fmnist_dir, out, "epochs=1"))
    with RunLock(out):  # this test process is "training" in the folder
        start = time.monotonic()
        proc = accord_train(tmp_path, 2, [*run_args("FashionMNIST-ResNet8-standard", fmnist_dir, out), "--overwrite"],
                            wait=False)  # fmt: skip
        output, _ = proc.communicate(timeout=300)
        seconds = time.monotonic() - start
    assert proc.returncode != 0
    assert f"pid {os.getpid()}" in output  # rank 0's own error names the holder
    assert "rank 0 stopped:" in output  # rank 1 heard of it and stopped with it
    assert seconds < 60, seconds
    assert json.loads((out / "summary.json").read_text())["epochs"] == 1  # the folder is untouched
