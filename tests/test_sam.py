"""SAM (accord.engine.sam): one update against the formula by hand, and training, checkpoints and resume with it."""

from __future__ import annotations

import re
import signal

import pytest
import torch
from interrupted_runs import assert_same_run, plant, send
from tiny_runs import QUICK, QUIET

from accord.config import ConfigError, load_config
from accord.engine import fit, load_checkpoint
from accord.engine.optim import create_optimizer
from accord.engine.sam import SAM

pytestmark = pytest.mark.usefixtures("one_thread")
C = torch.tensor([1.0, 4.0, -2.0], dtype=torch.float64)  # loss(w) = sum(C * w^2) / 2 + sum(w): gradient C * w + 1


def loss_of(w: torch.Tensor) -> torch.Tensor:
    return (C * w**2).sum() / 2 + w.sum()


def by_hand(w: torch.Tensor, lr: float, rho: float, adaptive: bool) -> torch.Tensor:
    """Foret et al. 2021, Algorithm 1 (adaptive: Kwon et al. 2021, eq. 9 with the authors' |w| weighting)."""
    g = C * w + 1
    t = w.abs() if adaptive else torch.ones_like(w)
    e = rho * t * t * g / torch.linalg.vector_norm(t * g)
    return w - lr * (C * (w + e) + 1)


@pytest.mark.parametrize("adaptive", [False, True])
def test_two_updates_are_the_hand_computed_ones(adaptive):
    w0 = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    w = torch.nn.Parameter(w0.clone())
    cfg = load_config(
        "FashionMNIST-ResNet8-standard",
        {"sam_rho": 0.05, "sam_adaptive": adaptive, "momentum": 0.0, "weight_decay": 0.0, "lr": 0.1, "lr_batch": 128},
    )
    opt = create_optimizer([w], cfg.optim)
    assert isinstance(opt, SAM)
    expected = w0
    for _ in range(2):
        opt.zero_grad()
        loss_of(w).backward()
        opt.sharpness_pass(lambda: loss_of(w))
        opt.step()
        expected = by_hand(expected, 0.1, 0.05, adaptive)
        torch.testing.assert_close(w.detach(), expected, rtol=0, atol=1e-12)  # float64: the same sums in the order


def test_sam_keeps_the_base_optimizers_state_and_schedule():
    w = torch.nn.Parameter(torch.ones(3))
    cfg = load_config("FashionMNIST-ResNet8-standard", {"sam_rho": 0.1})
    opt = create_optimizer([w], cfg.optim)
    opt.param_groups[0]["lr"] = 0.01  # what a scheduler does
    assert opt.base.param_groups[0]["lr"] == 0.01
    w.sum().backward()
    opt.sharpness_pass(lambda: (w**2).sum())
    opt.step()
    assert opt.state_dict() == opt.base.state_dict() and "momentum_buffer" in opt.base.state[w]
    again = create_optimizer([w], cfg.optim)
    again.load_state_dict(opt.state_dict())
    assert again.param_groups is again.base.param_groups and again.param_groups[0]["lr"] == 0.01


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sam_rho": -0.05}, "config key 'sam_rho' must not be negative (in [0, 1000]), got -0.05"),
        ({"sam_rho": 0.05, "amp": "fp16"}, "sam_rho > 0 does not combine with amp: fp16"),
        ({"sam_rho": 0.05, "nonfinite": "skip"}, "sam_rho > 0 runs with nonfinite: stop"),
    ],
)
def test_bad_sam_settings_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("FashionMNIST-ResNet8-standard-tied", overrides)


def tiny(fmnist_dir, **extra):
    overrides = {
        **QUICK, "epochs": 1, "train_subset": 128, "checkpoint_every_steps": 2, "sam_rho": 0.05,
        "data_dir": str(fmnist_dir),
    }  # fmt: skip
    return load_config("FashionMNIST-ResNet8-standard-tied", {**overrides, **extra})


@pytest.fixture(scope="module")
def sam_run(fmnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("sam")
    fit(tiny(fmnist_dir), out, log=QUIET)
    return out


def test_a_sam_run_trains_otherwise_than_without_it(fmnist_dir, sam_run, tmp_path):
    fit(tiny(fmnist_dir, sam_rho=0.0), tmp_path / "plain", log=QUIET)
    with_sam = load_checkpoint(sam_run / "checkpoint-last.pt")["model"]
    plain = load_checkpoint(tmp_path / "plain" / "checkpoint-last.pt")["model"]
    assert all(torch.isfinite(v).all() for v in with_sam.values() if v.is_floating_point())
    assert any(not torch.equal(with_sam[k], plain[k]) for k in plain if plain[k].is_floating_point())


def test_a_sam_run_resumes_mid_epoch_to_the_same_result(fmnist_dir, sam_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=5, action=send(signal.SIGINT))  # SAM calls the loss twice an update: inside update 3
        with pytest.raises(Exception, match="SIGINT"):
            fit(tiny(fmnist_dir), out, log=QUIET)
    fit(tiny(fmnist_dir), out, resume=True, log=QUIET)
    assert_same_run(out, sam_run)


@pytest.mark.slow
def test_two_processes_with_sam_follow_the_one_process_run(fmnist_dir, tmp_path):
    """Both passes of every update all-reduce their gradients (DDP), so 2 processes with global BatchNorm
    follow one process to float drift (test_distributed.assert_same_run)."""
    from test_distributed import accord_train, run_args
    from test_distributed import assert_same_run as assert_same_distributed

    for nproc, out in ((1, "one"), (2, "two")):
        args = run_args("FashionMNIST-ResNet8-standard-tied", fmnist_dir, tmp_path / out, "sam_rho=0.05")
        accord_train(tmp_path, nproc, args)
    assert_same_distributed(tmp_path / "one", tmp_path / "two")
