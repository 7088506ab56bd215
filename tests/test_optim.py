import math

import pytest
import torch

from accord.config import OptimConfig, load_config
from accord.engine.optim import create_optimizer, create_scheduler, scaled_lr


def lrs(overrides: dict, steps_per_epoch: int = 10) -> list[float]:
    cfg = load_config("FashionMNIST-ResNet8-standard", overrides)
    optimizer = create_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.optim)
    scheduler = create_scheduler(optimizer, cfg.optim, steps_per_epoch)
    out = []
    for step in range(cfg.optim.epochs * steps_per_epoch):
        scheduler.step_update(step)
        out.append(optimizer.param_groups[0]["lr"])
    return out


def test_lr_scales_with_batch():
    assert scaled_lr(OptimConfig(lr=0.1, batch_size=512, lr_batch=256)) == pytest.approx(0.2)


def test_multistep_decays_at_the_first_update_of_each_milestone_epoch():
    values = lrs({"schedule": "multistep", "milestones": [2, 3], "epochs": 4, "lr": 0.1, "lr_batch": 128})
    assert values[19] == pytest.approx(0.1) and values[20] == pytest.approx(0.01)
    assert values[29] == pytest.approx(0.01) and values[30] == pytest.approx(0.001)


def test_cosine_with_linear_warmup():
    values = lrs({"schedule": "cosine", "epochs": 5, "warmup_epochs": 1, "warmup_lr": 0.0, "lr": 0.1, "lr_batch": 128})
    assert values[0] == pytest.approx(0.0) and values[5] == pytest.approx(0.05)  # linear warm-up over 10 steps
    assert values[10] == pytest.approx(0.1)
    assert values[30] == pytest.approx(0.05 * (1 + math.cos(math.pi * 20 / 40)))
    assert values[-1] < 0.001


def test_nesterov_and_weight_decay_reach_sgd():
    cfg = load_config("ResNet50-standard")
    group = create_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.optim).param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9 and group["weight_decay"] == 1e-4
