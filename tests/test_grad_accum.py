"""Gradient accumulation (``accum_steps``, timm's ``--grad-accum-steps``): an update made of micro-batches.

For a model without BatchNorm and a loss that is a mean over the batch's rows (CE, Tied-Augment's MSE), one update of
``accum_steps`` micro-batches equals the update of the whole batch to float rounding; AgMax's batch-marginal entropy
over a micro-batch is not the whole batch's, so its update differs (documented in docs/scaling.md).
"""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch
from interrupted_runs import assert_same_run, plant, poison, send
from tiny_runs import QUICK, QUIET
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import accord.engine.trainer as trainer
from accord.cli import build_parser
from accord.cli_flags import train_overrides
from accord.config import ConfigError, load_config
from accord.engine import EpochSetup, NonFiniteLossError, build_run, fit, load_checkpoint, train_one_epoch
from accord.engine.accumulate import micro_batches, sync_on_last
from accord.engine.optim import scaled_lr
from accord.engine.trainer import _train_step

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = "FashionMNIST-ResNet8-standard"
BATCH, ACCUM = 8, 4
# float32 sums of 4 partial gradients against one: rounding of the order of 1e-7 per weight after one SGD step
RTOL, ATOL = 1e-5, 1e-6


def without_batchnorm(module: nn.Module) -> None:
    """Replace every BatchNorm of ``module`` by the identity: per-micro-batch statistics would differ."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            without_batchnorm(child)


def one_update(fmnist_dir, method: str, micro_batch: int | None) -> tuple[dict[str, torch.Tensor], dict]:
    """One update of the same 32 images (and views) from the same weights; micro-batches of ``micro_batch``."""
    cfg = load_config(CONFIG, {"data_dir": str(fmnist_dir), "method": method, "mix": "none", "workers": 0})
    torch.manual_seed(0)
    run = build_run(cfg, torch.device("cpu"))
    without_batchnorm(run.model)
    step = _train_step(run)
    optimizer = torch.optim.SGD([*run.model.parameters(), *run.criterion.parameters()], lr=0.5)
    gen = torch.Generator().manual_seed(1)
    n = BATCH * ACCUM
    x = torch.randn(cfg.views.num_views * n, run.info.in_chans, 28, 28, generator=gen)
    y = torch.randint(0, run.info.num_classes, (n,), generator=gen)
    setup = EpochSetup(torch.device("cpu"), log_interval=1, micro_batch=micro_batch)
    stats = train_one_epoch(step, [(x, y)], optimizer, setup, log=QUIET)
    params = {
        f"{i}.{k}": p.detach().clone()
        for i, m in enumerate((run.model, run.criterion))
        for k, p in m.named_parameters()
    }
    return params, stats


@pytest.mark.parametrize("method", ["ce", "tied"])
def test_one_accumulated_update_is_the_big_batch_update(fmnist_dir, method):
    big, big_stats = one_update(fmnist_dir, method, None)
    accumulated, stats = one_update(fmnist_dir, method, BATCH)
    start, _ = one_update(fmnist_dir, method, 10**9)  # whole batch again: the same by construction
    assert big.keys() == accumulated.keys()
    for name, value in big.items():
        torch.testing.assert_close(accumulated[name], value, rtol=RTOL, atol=ATOL, msg=name)
        assert torch.equal(start[name], value)
    assert stats["loss"] == pytest.approx(big_stats["loss"], rel=1e-5)  # the update's loss: row-weighted mean
    assert stats["train_top1"] == big_stats["train_top1"]


def test_agmax_entropy_over_a_micro_batch_is_not_the_big_batch_one(fmnist_dir):
    """AgMax's entropy term is of the batch-marginal prediction: the mean of the micro-batches' terms is another
    number than the whole batch's (CE, a mean over rows, is the same)."""
    cfg = load_config(f"{CONFIG}-agmax", {"data_dir": str(fmnist_dir), "mix": "none", "workers": 0})
    torch.manual_seed(0)
    run = build_run(cfg, torch.device("cpu"))
    gen = torch.Generator().manual_seed(1)
    n = BATCH * ACCUM
    logits = 4 * torch.randn(cfg.views.num_views * n, run.info.num_classes, generator=gen)  # confident predictions
    y = torch.randint(0, run.info.num_classes, (n,), generator=gen)
    features = torch.randn(cfg.views.num_views * n, 16, generator=gen)
    whole = {k: float(v.detach()) for k, v in run.criterion(logits, y, features).items()}
    parts = [
        run.criterion(lg, yi, ft)
        for (lg, yi), (ft, _) in zip(micro_batches(logits, y, BATCH), micro_batches(features, y, BATCH), strict=True)
    ]
    mean = {k: sum(float(p[k].detach()) for p in parts) / ACCUM for k in whole}
    assert mean["ce"] == pytest.approx(whole["ce"], rel=1e-5)
    assert abs(mean["entropy"] - whole["entropy"]) > 1e-2


def test_lr_scales_from_the_update_batch():
    cfg = load_config(CONFIG, {"batch_size": 64, "accum_steps": 4, "lr": 0.1, "lr_batch": 256})
    assert cfg.optim.update_batch == 256
    assert scaled_lr(cfg.optim) == pytest.approx(0.1)
    assert scaled_lr(load_config(CONFIG, {"batch_size": 64, "lr": 0.1, "lr_batch": 256}).optim) == pytest.approx(0.025)


def test_grad_accum_steps_is_timm_s_alias():
    args = build_parser().parse_args(["train", "--grad-accum-steps", "4", "-b", "16", "--lr", "0.2"])
    cfg = load_config(CONFIG, train_overrides(args))
    assert (cfg.optim.accum_steps, cfg.optim.batch_size) == (4, 16)
    assert scaled_lr(cfg.optim) == pytest.approx(0.2)  # timm's --lr is the lr of the whole update, as given


IN_DOMAIN = r"'accum_steps' must be in \[1, 1024\]"


@pytest.mark.parametrize(("value", "match"), [(0, IN_DOMAIN), (2.5, "'accum_steps': expected int"), (1025, IN_DOMAIN)])
def test_accum_steps_outside_its_domain_is_refused(value, match):
    with pytest.raises(ConfigError, match=match):
        load_config(CONFIG, {"accum_steps": value})


def test_a_subset_smaller_than_one_update_is_refused(fmnist_dir):
    with pytest.raises(ConfigError, match="train_subset 20 is smaller than batch_size 16 x accum_steps 2"):
        tiny(fmnist_dir, train_subset=20, drop_last=True)


def test_sam_with_accumulation_is_refused():
    with pytest.raises(ConfigError, match="sam_rho > 0 runs with accum_steps: 1"):
        load_config(CONFIG, {"accum_steps": 2, "sam_rho": 0.05})


def tiny(fmnist_dir, **extra):
    """150 images, micro-batches of 16, 2 per update: 4 updates of 32 and a last one of 22 (16 + 6) an epoch."""
    overrides = {
        **QUICK,
        "batch_size": 16,
        "accum_steps": 2,
        "epochs": 2,
        "train_subset": 150,
        "drop_last": False,
        "checkpoint_every_steps": 2,
    }
    return load_config(CONFIG, {**overrides, "data_dir": str(fmnist_dir), **extra})


@pytest.fixture(scope="module")
def accumulated(fmnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("accumulated")
    fit(tiny(fmnist_dir), out, log=QUIET)
    return out


def test_steps_count_updates_and_the_leftover_is_a_shorter_update(fmnist_dir, accumulated, tmp_path, monkeypatch):
    assert load_checkpoint(accumulated / "checkpoint-last.pt")["global_step"] == 10  # 2 epochs x (4 + 1)
    rows: list[int] = []

    build = trainer.build_run

    def counting(cfg, device=None, dist=None):
        run = build(cfg, device, dist)
        forward = run.criterion.forward

        def spy(logits, target, *args, **kwargs):
            rows.append(target.shape[0])
            return forward(logits, target, *args, **kwargs)

        run.criterion.forward = spy
        return run

    monkeypatch.setattr(trainer, "build_run", counting)
    fit(tiny(fmnist_dir, drop_last=True, epochs=1), tmp_path / "dropped", log=QUIET)
    assert rows == [16] * 8  # 4 updates of 2 micro-batches; the 22 left over are dropped like a short batch
    assert load_checkpoint(tmp_path / "dropped" / "checkpoint-last.pt")["global_step"] == 4
    rows.clear()
    fit(tiny(fmnist_dir, epochs=1), tmp_path / "kept", log=QUIET)
    assert rows == [16] * 8 + [16, 6]  # kept (drop_last: false): one more update of a full and a short micro-batch


@pytest.mark.parametrize("at_call", [3, 10])  # the first micro-batch of update 2, the short one of update 5
def test_a_run_stopped_mid_accumulation_resumes_at_an_update_boundary(
    fmnist_dir, accumulated, tmp_path, monkeypatch, at_call
):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=at_call, action=send(signal.SIGINT))
        with pytest.raises(Exception, match="SIGINT"):
            fit(tiny(fmnist_dir), out, log=QUIET)
    assert load_checkpoint(out / "checkpoint-last.pt")["global_step"] == (at_call + 1) // 2  # the update finished
    fit(tiny(fmnist_dir), out, resume=True, log=QUIET)
    assert_same_run(out, accumulated)


def test_ddp_all_reduces_only_on_the_last_micro_batch():
    """DistributedDataParallel's flag for the gradient all-reduce, as each of an update's micro-batches sees it."""
    ddp = DistributedDataParallel.__new__(DistributedDataParallel)  # the flag alone: no process group needed
    object.__setattr__(ddp, "require_backward_grad_sync", True)
    seen = []
    for i in range(ACCUM):
        with sync_on_last(ddp, last=i == ACCUM - 1):
            seen.append(ddp.require_backward_grad_sync)
    assert seen == [False] * (ACCUM - 1) + [True] and ddp.require_backward_grad_sync


@pytest.mark.slow
def test_two_processes_accumulate_as_one_process_does(fmnist_dir, tmp_path):
    """2 processes (gloo), micro-batches of 16 (8 each), 2 per update, global BatchNorm: the 1-process run's
    losses, accuracies and weights to float drift (test_distributed.assert_same_run's bounds)."""
    from test_distributed import accord_train, run_args
    from test_distributed import assert_same_run as assert_same_distributed

    args = ("batch_size=16", "accum_steps=2", "train_subset=128", "epochs=1")
    for nproc, out in ((1, "one"), (2, "two")):
        accord_train(tmp_path, nproc, run_args(CONFIG, fmnist_dir, tmp_path / out, *args))
        assert load_checkpoint(tmp_path / out / "checkpoint-last.pt")["global_step"] == 4
    assert_same_distributed(tmp_path / "one", tmp_path / "two")


def test_the_bench_loop_runs_micro_batches(fmnist_dir):
    from accord.bench.end_to_end import Measured

    cfg = load_config(CONFIG, {"data_dir": str(fmnist_dir), "batch_size": 8, "accum_steps": 2, "train_subset": 64})
    measured = Measured(cfg, torch.device("cpu"))
    rows: list[int] = []
    forward = measured.run.criterion.forward
    measured.run.criterion.forward = lambda logits, target, *a, **k: (
        rows.append(len(target)) or forward(logits, target, *a, **k)
    )
    assert measured.step_only() > 0 and measured.end_to_end() > 0
    assert rows == [8] * 2 * 3 * 2  # 4 updates of 16 an epoch, the first of each loop untimed; 2 loops


@pytest.mark.parametrize("at_call", [3, 4])  # the first or the second micro-batch of update 2
def test_a_non_finite_micro_batch_stops_or_skips_its_whole_update(fmnist_dir, tmp_path, monkeypatch, at_call):
    with monkeypatch.context() as patch:
        plant(patch, at_call=at_call, action=poison)
        with pytest.raises(NonFiniteLossError, match=r"by step 2 \(epoch 1\)"):
            fit(tiny(fmnist_dir, epochs=1, checkpoint_every_steps=1), tmp_path / "stop", log=QUIET)
    assert load_checkpoint(tmp_path / "stop" / "checkpoint-last.pt")["global_step"] == 1
    plant(monkeypatch, at_call=at_call, action=poison)
    fit(tiny(fmnist_dir, epochs=1, nonfinite="skip"), tmp_path / "skip", log=QUIET)
    record = json.loads((tmp_path / "skip" / "metrics.jsonl").read_text().splitlines()[0])
    assert record["train"]["skipped_steps"] == 1 and math.isfinite(record["train"]["loss"])
