"""Every built-in config resolves, builds its model, views and loss, and runs one real training step."""

from __future__ import annotations

import pytest
import torch

from accord.config import list_configs, load_config
from accord.engine import build_run

BIG_MODELS = ("ResNet50", "ResNet101", "WRN28-10")
# Big networks take seconds a step on a CPU: the fast suite runs each with the agreement methods on the
# standard policy (the rest run the same code on the small networks; `pytest -m slow` runs them all).
# The paper-recipe fragments repeat the same networks with the authors' recipes: the fast suite runs a
# sample that covers each new piece (jitter, lighting, clipped CutOut, the inits, the CIFAR normalisation,
# asymmetric and bicubic RandAugment views, separate forward passes, class-balanced subsets, weights-only decay).
BIG_IN_FAST_SUITE = {
    "ResNet50-standard-agmax",
    "ResNet50-standard-tied",
    "WRN28-10-standard-agmax",
    "ResNet50-auto_augment-cutout-agmax",
    "ResNet50-cutout-agmax-mse",
    "ResNet50-Tied-randaug-vs-standard-tied",
}
RECIPE_MODELS = ("WRN40-2-CIFAR10", "WRN40-2-CIFAR100")
RECIPES_IN_FAST_SUITE = {"WRN40-2-CIFAR10-cutout-agmax", "WRN40-2-CIFAR100-randaug-vs-standard-tied"}


def _marks(name: str) -> list:
    big = name.startswith(BIG_MODELS) and name not in BIG_IN_FAST_SUITE
    recipe = name.startswith(RECIPE_MODELS) and name not in RECIPES_IN_FAST_SUITE
    return [pytest.mark.slow] if big or recipe else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in list_configs()])
def test_config_runs_one_step(name, fmnist_dir, imagefolder_dir, cifar_dir, train_one_step):
    cfg = load_config(name)
    data_dir = {"fashion_mnist": fmnist_dir, "imagefolder": imagefolder_dir}.get(cfg.data.dataset, cifar_dir)
    # ImageNet configs run at 64 px here: the same pipeline and network, a smaller image
    overrides = {"data_dir": str(data_dir), "batch_size": 4, "workers": 0, "log_interval": 1}
    if cfg.data.dataset == "imagefolder":
        overrides["image_size"] = 64
    if cfg.data.train_subset_per_class is not None:  # the test folder has a few images of each class
        overrides["train_subset_per_class"] = 1
    cfg = load_config(name, overrides)
    run = build_run(cfg, device=torch.device("cpu"))
    before = [p.detach().clone() for p in run.model.parameters()]
    stats = train_one_step(run, cfg, 4)
    assert stats["steps"] == 1 and torch.isfinite(torch.tensor(stats["loss"]))
    assert stats["views_per_s"] / stats["images_per_s"] == pytest.approx(cfg.views.num_views)
    assert any(not torch.equal(b, p) for b, p in zip(before, run.model.parameters(), strict=True))
