"""Every built-in config resolves, builds its views, loss and optimiser, and runs one real training step.

The big networks (ResNet-50/101, WRN-28-10, and the recipes' WRN-40-2) take seconds a step on a CPU and
appear in about a thousand configs that differ only in views, method and recipe keys. So the default suite
runs every config's step twice over what can break:

* ``test_config_runs_one_step``: the config as it is, on its own network, for every config of the small
  networks and a sample of the big ones that covers each network with each way a method reads it (logits
  only, pooled features for Tied-Augment, separate forward passes per view);
* ``test_config_pipeline_runs_one_step``: every other config with everything it sets (data, views,
  method, loss, optimiser, schedule, init, BatchNorm mode) but a ResNet-8 in place of its network.

``pytest -m exhaustive`` runs each of those on its own big network too (about half an hour on 2 cores).
"""

from __future__ import annotations

import pytest
import torch

from accord.config import list_configs, load_config
from accord.engine import build_run

BIG_MODELS = ("ResNet50", "ResNet101", "WRN28-10", "WRN40-2-CIFAR10", "WRN40-2-CIFAR100")
BIG_ON_THEIR_NETWORK = {
    "ResNet50-standard-agmax",
    "ResNet50-standard-tied",
    "ResNet50-auto_augment-cutout-agmax",
    "ResNet50-cutout-agmax-mse",
    "ResNet50-Tied-randaug-vs-standard-tied",
    "ResNet101-standard-jsd",
    "ResNet101-standard-tied",
    "WRN28-10-standard-agmax",
    "WRN28-10-standard-tied",
    "WRN28-10-TiedCIFAR10-randaug-vs-standard-tied",
    "WRN40-2-CIFAR10-cutout-agmax",
    "WRN40-2-CIFAR100-randaug-vs-standard-tied",
}
STAND_IN = "ResNet8"
pytestmark = pytest.mark.usefixtures("one_thread")  # batches of 4: a second thread only waits (or stalls)


def _on_stand_in(name: str) -> bool:
    return name.startswith(BIG_MODELS) and name not in BIG_ON_THEIR_NETWORK


def _load_for_test(name: str, data_dirs: dict, **extra) -> object:
    cfg = load_config(name)
    data_dir = data_dirs.get(cfg.data.dataset, data_dirs["cifar"])
    # ImageNet configs run at 64 px here: the same pipeline and network, a smaller image
    overrides = {"data_dir": str(data_dir), "batch_size": 4, "workers": 0, "log_interval": 1, **extra}
    if cfg.data.dataset == "imagefolder":
        overrides["image_size"] = 64
    if cfg.data.train_subset_per_class is not None:  # the test folder has a few images of each class
        overrides["train_subset_per_class"] = 1
    return load_config(name, overrides)


def _one_step(cfg, train_one_step) -> None:
    run = build_run(cfg, device=torch.device("cpu"))
    before = [p.detach().clone() for p in run.model.parameters()]
    stats = train_one_step(run, cfg, 4)
    assert stats["steps"] == 1 and torch.isfinite(torch.tensor(stats["loss"]))
    assert stats["views_per_s"] / stats["images_per_s"] == pytest.approx(cfg.views.num_views)
    assert any(not torch.equal(b, p) for b, p in zip(before, run.model.parameters(), strict=True))


@pytest.fixture
def data_dirs(fmnist_dir, imagefolder_dir, cifar_dir) -> dict:
    return {"fashion_mnist": fmnist_dir, "imagefolder": imagefolder_dir, "cifar": cifar_dir}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.exhaustive] if _on_stand_in(n) else []) for n in list_configs()],
)
def test_config_runs_one_step(name, data_dirs, train_one_step):
    _one_step(_load_for_test(name, data_dirs), train_one_step)


@pytest.mark.parametrize("name", [n for n in list_configs() if _on_stand_in(n)])
def test_config_pipeline_runs_one_step(name, data_dirs, train_one_step):
    cfg = _load_for_test(name, data_dirs, model=STAND_IN)
    assert cfg.model.model == STAND_IN
    stand_in, own = cfg.as_flat(), _load_for_test(name, data_dirs).as_flat()
    del stand_in["name"], own["name"]  # a run is named after its model
    assert stand_in == {**own, "model": STAND_IN}  # the config's every other key, unchanged
    _one_step(cfg, train_one_step)


def test_every_big_network_and_reading_runs_on_its_own_network():
    """The sample above runs each big network with logits-only and pooled-feature methods."""
    configs = {n: load_config(n) for n in BIG_ON_THEIR_NETWORK}
    for network in {load_config(n).model.model for n in list_configs() if n.startswith(BIG_MODELS)}:
        methods = {c.method.method for c in configs.values() if c.model.model == network}
        assert "tied" in methods and methods - {"tied"}, (network, methods)
    assert any(c.model.bn == "separate" for c in configs.values())
