"""The training options taken from timm in accord's own trainer: optimizers, weight decay on weights only,
gradient clipping, drop-path, a weight EMA and local pretrained weights (fine-tuning with a new head)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from tiny_runs import QUICK
from torch import nn

from accord.cli import main
from accord.config import ConfigError, load_config
from accord.engine import fit, load_checkpoint
from accord.engine.optim import clip_gradients, create_optimizer
from accord.engine.runfiles import TIMING_KEYS
from accord.models import create_model

TINY = {**QUICK, "epochs": 2}
NAME = "FashionMNIST-ResNet8-standard"
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is the fastest


def tiny(fmnist_dir: Path, name: str = NAME, **extra):
    return load_config(name, {**TINY, "data_dir": str(fmnist_dir), **extra})


def two_steps(optimizer_of) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    loss_head = nn.Linear(2, 2)  # a loss's own parameters (AgMax's Q head) train with the model
    optimizer = optimizer_of(model, loss_head)
    x = torch.randn(8, 4)
    for _ in range(2):
        optimizer.zero_grad()
        loss_head(model(x)).square().mean().backward()
        optimizer.step()
    return [p.detach().clone() for p in (*model.parameters(), *loss_head.parameters())]


def test_default_sgd_is_bit_identical_to_the_optimizer_before_timm():
    cfg = load_config(NAME).optim
    ours = two_steps(lambda m, q: create_optimizer(nn.ModuleList([m, q]), cfg))
    before = two_steps(
        lambda m, q: torch.optim.SGD(
            [*m.parameters(), *q.parameters()], lr=0.1 * 128 / 128, momentum=0.9, nesterov=True, weight_decay=5e-4
        )
    )
    assert cfg.optimizer == "sgd" and all(torch.equal(a, b) for a, b in zip(ours, before, strict=True))


def test_weight_decay_on_weights_spares_biases_and_norms():
    cfg = load_config(NAME, {"weight_decay_on": "weights", "weight_decay": 0.5, "momentum": 0.0, "lr": 0.1}).optim
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    optimizer = create_optimizer(model, cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    weight, bias, bn_weight, bn_bias = model.parameters()
    assert torch.allclose(weight, torch.full((2, 2), 1 - 0.1 * 0.5))  # decayed: w - lr * wd * w
    assert (
        torch.equal(bias, torch.ones(2))
        and torch.equal(bn_weight, torch.ones(2))
        and torch.equal(bn_bias, torch.ones(2))
    )


@pytest.mark.parametrize(("name", "cls"), [("adamw", "AdamW"), ("lamb", "Lamb"), ("momentum", "SGD")])
def test_timm_optimizers_by_name(name, cls):
    cfg = load_config(NAME, {"optimizer": name, "lr": 0.01}).optim
    optimizer = create_optimizer(nn.Linear(2, 2), cfg)
    assert type(optimizer).__name__ == cls and optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_clip_grad_norm_by_hand():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])  # norm 5
    clip_gradients([p], load_config(NAME, {"clip_grad": 1.0}).optim)
    assert torch.allclose(p.grad, torch.tensor([0.6, 0.8]))
    p.grad = torch.tensor([3.0, -4.0])
    clip_gradients([p], load_config(NAME, {"clip_grad": 2.0, "clip_mode": "value"}).optim)
    assert torch.equal(p.grad, torch.tensor([2.0, -2.0]))


def test_drop_path_reaches_timm_models_and_is_refused_by_models_without_it():
    model = create_model("resnet18", 10, drop_path_rate=0.2)
    assert model.layer4[1].drop_path is not None and model.layer4[1].drop_path.drop_prob > 0
    with pytest.raises(ValueError, match="no stochastic depth"):
        create_model("ResNet8", 10, 1, drop_path_rate=0.2)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optimizer": "adamx"}, "'optimizer': 'adamx' is not one of adabelief, .*adamw, .*lamb, .*sgd"),
        ({"ema_decay": 1.0}, r"'ema_decay' must be in \(0, 1\), got 1.0"),
        ({"ema_decay": 0.0}, r"'ema_decay' must be positive \(in \(0, 1\)\)"),
        ({"clip_grad": -1.0}, "'clip_grad' must be positive"),
        *(
            [({"optimizer": "bnbadam"}, "'optimizer': bnbadam cannot be built here")]
            if not torch.cuda.is_available()
            else []
        ),
        ({"pretrained_file": "weights.npz"}, "is not one of .safetensors, .pth, .pt"),
    ],
)
def test_bad_options_are_one_line_before_any_work(override, message, tmp_path, capsys):
    with pytest.raises(ConfigError, match=message):
        load_config(NAME, override)
    ((key, value),) = override.items()
    out = tmp_path / "run"
    assert main(["train", "--config", NAME, "--set", f"{key}={value}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and not out.exists()


def saved_resnet8(path: Path, num_classes: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    state = create_model("ResNet8", num_classes, 1).state_dict()
    if path.suffix == ".safetensors":
        safetensors.torch.save_file(state, path)
    else:
        torch.save({"model": state, "epoch": 3}, path)  # a checkpoint as accord and timm's train.py write them
    return state


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_fine_tuning_from_a_local_file_with_another_number_of_classes(suffix, fmnist_dir, tmp_path):
    file = tmp_path / f"weights{suffix}"
    state = saved_resnet8(file, num_classes=7)
    cfg = tiny(fmnist_dir, epochs=1, pretrained_file=str(file), lr=1e-9)
    from accord.engine import build_run

    net = build_run(cfg).model.model
    own = net.state_dict()
    assert own["fc.weight"].shape == (10, 64)  # a new head for 10 classes
    body = [k for k in state if not k.startswith("fc.")]
    assert body and all(torch.equal(own[k], state[k]) for k in body)
    summary = fit(cfg, tmp_path / "run", log=lambda _: None)  # and it trains
    assert summary["epochs"] == 1


def test_a_pretrained_file_of_another_architecture_is_one_line_naming_the_keys(fmnist_dir, tmp_path, capsys):
    file = tmp_path / "resnet8.safetensors"
    saved_resnet8(file, num_classes=10)
    out = tmp_path / "run"
    args = ["train", "--config", "FashionMNIST-ResNet20-standard", "--data-dir", str(fmnist_dir)]
    assert main([*args, "--set", f"pretrained_file={file}", "--set", "workers=0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "does not match this model's architecture: missing layer1.1." in err and not out.exists()
    assert main([*args, "--set", f"pretrained_file={tmp_path / 'none.pth'}", "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err and not out.exists()


def test_ema_is_evaluated_selected_and_checkpointed(fmnist_dir, tmp_path):
    cfg = tiny(fmnist_dir, name=f"{NAME}-agmax", ema=True, ema_decay=0.5, clip_grad=5.0, optimizer="adamw", lr=1e-3)
    lines: list[str] = []
    summary = fit(cfg, tmp_path, log=lines.append)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["ema"] and set(r["raw"]) == {"val_top1", "val_top5", "test_top1", "test_top5"} for r in records)
    assert any(r["raw"]["test_top1"] != r["test_top1"] for r in records)  # two sets of weights, two numbers
    assert summary["selected_by"] == "ema" and "(EMA; raw val" in lines[-1]
    ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert set(ckpt["ema"]) == set(ckpt["model"])
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in ckpt["model"])
    started = create_model("ResNet8", 3, 1, pretrained_file=str(tmp_path / "checkpoint-last.pt")).state_dict()
    assert all(torch.equal(started[k], ckpt["ema"][k]) for k in started if not k.startswith("fc."))  # its EMA


class Stop(Exception):
    pass


def test_a_resumed_ema_run_equals_an_uninterrupted_one(fmnist_dir, tmp_path):
    cfg = tiny(fmnist_dir, ema=True, ema_decay=0.9, clip_grad=1.0)
    fit(cfg, tmp_path / "full", log=lambda _: None)

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, tmp_path / "cut", log=stop_after_first_epoch)
    fit(cfg, tmp_path / "cut", resume=True, log=lambda _: None)
    full = load_checkpoint(tmp_path / "full" / "checkpoint-last.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint-last.pt")
    for part in ("model", "ema"):
        assert all(torch.equal(full[part][k], cut[part][k]) for k in full[part]), part
    strip = TIMING_KEYS
    a, b = (
        [
            {k: v for k, v in json.loads(x).items() if k not in strip}
            for x in (d / "metrics.jsonl").read_text().splitlines()
        ]
        for d in (tmp_path / "full", tmp_path / "cut")
    )
    assert a == b
