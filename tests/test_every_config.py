"""Every built-in config resolves, builds its model, views and loss, and runs one real training step."""

from __future__ import annotations

import pytest
import torch

from accord.config import list_configs, load_config
from accord.engine import build_run

BIG_MODELS = ("ResNet50", "ResNet101", "WRN28-10")
# Big networks take seconds a step on a CPU: the fast suite runs each with the agreement methods on the
# standard policy (the rest run the same code on the small networks; `pytest -m slow` runs them all).
BIG_IN_FAST_SUITE = {"ResNet50-standard-agmax", "ResNet50-standard-tied", "WRN28-10-standard-agmax"}


def _marks(name: str) -> list:
    return [pytest.mark.slow] if name.startswith(BIG_MODELS) and name not in BIG_IN_FAST_SUITE else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in list_configs()])
def test_config_runs_one_step(name, fmnist_dir, imagefolder_dir, cifar_dir, train_one_step):
    cfg = load_config(name)
    data_dir = {"fashion_mnist": fmnist_dir, "imagefolder": imagefolder_dir}.get(cfg.data.dataset, cifar_dir)
    # ImageNet configs run at 64 px here: the same pipeline and network, a smaller image
    overrides = {"data_dir": str(data_dir), "batch_size": 4, "workers": 0, "log_interval": 1}
    if cfg.data.dataset == "imagefolder":
        overrides["image_size"] = 64
    cfg = load_config(name, overrides)
    run = build_run(cfg, device=torch.device("cpu"))
    before = [p.detach().clone() for p in run.model.parameters()]
    stats = train_one_step(run, cfg, 4)
    assert stats["steps"] == 1 and torch.isfinite(torch.tensor(stats["loss"]))
    assert stats["views_per_s"] / stats["images_per_s"] == pytest.approx(cfg.views.num_views)
    assert any(not torch.equal(b, p) for b, p in zip(before, run.model.parameters(), strict=True))
