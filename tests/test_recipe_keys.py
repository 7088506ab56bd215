"""The keys and policy tokens of the paper recipes: what each does, and one clear line for bad input."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from accord.cli import main
from accord.config import ConfigError, load_config
from accord.data import build_splits
from accord.data.datasets import DataInfo
from accord.engine import fit
from accord.engine.optim import create_optimizer
from accord.engine.run import build_model
from accord.losses import create_loss
from accord.models.init import init_weights
from accord.views.cutout import ClippedCutout
from accord.views.lighting import Lighting
from accord.views.policies import build_policy

SMALL = DataInfo("cifar10", 10, 3, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), fixed_size=True)
TINY = {"batch_size": 32, "lr_batch": 32, "eval_batch_size": 100, "workers": 0, "log_interval": 1, "epochs": 2}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"init": "xavier"}, "unknown init scheme 'xavier'; valid: default, pytorch, agmax"),
        ({"init": "normal_0"}, "normal_<std> with std > 0"),
        (
            {"schedule": "multistep", "milestone_fractions": [0.5, 1.5]},
            "'milestone_fractions' must be in (0, 1), got 1.5",
        ),
        ({"milestone_fractions": [0.0]}, "'milestone_fractions' must be positive (in (0, 1)), got 0.0"),
        ({"milestone_fractions": [0.5], "milestone_table": "agmax"}, "exclude each other"),
        ({"milestone_table": "step"}, "'step' is not one of none, agmax"),
        ({"train_subset": 200, "train_subset_per_class": 10}, "train_subset and train_subset_per_class exclude"),
        ({"train_subset_per_class": 0}, "'train_subset_per_class' must be positive"),
        ({"normalize_mean": [0.5]}, "normalize_mean and normalize_std go together"),
        ({"normalize_mean": [0.5, 0.5], "normalize_std": [0.2, 0.2]}, "need 1 values each for fashion_mnist"),
        ({"weight_decay_on": "biases"}, "'biases' is not one of all, weights"),
        ({"policy": "crop-flip-lighting"}, "lighting needs colour (3-channel) images"),
        ({"policy": "crop-flip-jitter_0.4"}, "expected jitter[_B_C_S]"),
        (
            {"policy": "crop-flip-randaug_2_9_p1.5"},
            "randaug[_N_M[_pP][_bilinear]] with N in 0..30, M in 0..30 and P in",
        ),
        ({"policy": "crop-flip-ccutout_40"}, "cutout side must be in 1..27"),
    ],
)
def test_bad_recipe_values_are_one_line(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config("FashionMNIST-ResNet8-standard", overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("overrides", "token"),
    [
        ({"policy": "crop-flip-randaug_2_9_p0.5"}, "randaug_2_9_p0.5"),
        ({"policy": "crop-flip-randaug_2_9_bilinear"}, "randaug_2_9_bilinear"),
    ],
)
def test_batched_views_refuse_the_tokens_they_do_not_make(overrides, token):
    with pytest.raises(ConfigError, match=f"token '{re.escape(token)}'"):
        load_config("FashionMNIST-ResNet8-standard", {**overrides, "augment_on": "device"})


def test_batched_views_make_jitter_lighting_and_clipped_cutout():
    cfg = load_config("FashionMNIST-ResNet8-cutout", {"augment_on": "device", "cutout_clip": True})
    assert any("ccutout" in policy for policy in cfg.views.view_policies)
    cfg = load_config("ResNet50-standard", {"augment_on": "device"})  # jitter, lighting, clipped CutOut, 224 px
    assert cfg.views.augment_on == "device" and "jitter" in cfg.views.view_policies[0]


def test_milestone_fractions_and_the_agmax_table_fill_milestones():
    cfg = load_config(
        "FashionMNIST-ResNet8-standard", {"epochs": 8, "schedule": "multistep", "milestone_fractions": [0.25, 0.7]}
    )
    assert cfg.optim.milestones == (2, 6)  # 0.25 * 8 = 2; 0.7 * 8 = 5.6 -> 6
    assert load_config("ResNet50-standard", {"epochs": 270}).optim.milestones == (75, 150, 225)


def test_cutout_clip_makes_every_cutout_token_the_clipped_one():
    cfg = load_config("FashionMNIST-ResNet8-cutout-tied", {"cutout_clip": True})
    assert cfg.views.policy == "crop-flip-ccutout" and cfg.views.view_policies == ("crop-flip-ccutout",) * 2
    assert (
        load_config("FashionMNIST-ResNet8-cutout").views.policy == "crop-flip-cutout"
    )  # committed results keep theirs


def test_policy_tokens_build_the_authors_transforms():
    ops = build_policy("crop-flip-autoaug-jitter-lighting_0.2-ccutout_16", SMALL).transforms
    names = [type(t).__name__ for t in ops]
    assert names == ["TensorImagesOnly", "RandomCrop", "RandomHorizontalFlip", "AutoAugment", "ColorJitter", "ToDtype",
                     "Lighting", "Normalize", "ClippedCutout"]  # fmt: skip
    jitter, lighting, cutout = ops[4], ops[6], ops[8]
    assert jitter.brightness == (0.6, 1.4) and jitter.contrast == (0.6, 1.4) and jitter.saturation == (0.6, 1.4)
    assert isinstance(lighting, Lighting) and lighting.std == 0.2
    assert isinstance(cutout, ClippedCutout) and cutout.length == 16
    randaug = build_policy("crop-flip-randaug_2_14_p0.5_bilinear", SMALL).transforms[3]
    assert isinstance(randaug, v2.RandomApply) and randaug.p == 0.5
    assert randaug.transforms[0].num_ops == 2 and randaug.transforms[0].magnitude == 14
    assert randaug.transforms[0].interpolation == v2.InterpolationMode.BILINEAR
    plain = build_policy("crop-flip-randaug_2_14", SMALL).transforms[3]
    assert isinstance(plain, v2.RandAugment) and plain.interpolation == v2.InterpolationMode.NEAREST


def test_weight_decay_on_weights_leaves_biases_and_norms_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))
    net(torch.zeros(1, 3, 5, 5))
    optim = load_config("FashionMNIST-ResNet8-standard", {"weight_decay_on": "weights"}).optim
    groups = sorted(create_optimizer(net.parameters(), optim).param_groups, key=lambda g: -g["weight_decay"])
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert [tuple(p.shape) for p in groups[0]["params"]] == [(4, 3, 3, 3), (2, 36)]
    assert sorted(p.numel() for p in groups[1]["params"]) == [2, 4, 4, 4]  # linear bias, conv bias, BN w and b
    # one SGD step on a zero gradient: only the decayed weights move, by lr * wd * w
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p in net.parameters()]
    sgd = torch.optim.SGD(groups, lr=1.0, momentum=0.0)
    sgd.step()
    moved = [not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True)]
    assert moved == [True, False, False, False, True, False]
    everything = create_optimizer(net.parameters(), load_config("FashionMNIST-ResNet8-standard").optim).param_groups
    assert len(everything) == 1 and everything[0]["weight_decay"] == 5e-4


def test_init_agmax_redraws_the_model_and_the_q_head():
    info = DataInfo("imagefolder", 10, 3, 64, (0.5,) * 3, (0.25,) * 3, fixed_size=False)
    cfg = load_config("ResNet50-standard-agmax", {"model": "resnet18"})
    torch.manual_seed(0)
    net = build_model(cfg, info).model
    conv = net.conv1.weight
    assert conv.std().item() == pytest.approx(0.2, rel=0.05) and conv.mean().abs().item() < 0.01
    assert torch.all(net.layer1[0].bn2.weight == 0)  # the last BN of each block back to 0
    assert torch.all(net.bn1.weight == 1) and torch.all(net.fc.bias == 0)
    head = create_loss(cfg.method.method, 10, 2, **cfg.method.loss)
    init_weights(head, cfg.model.init)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert linears and all(m.weight.std().item() == pytest.approx(0.2, rel=0.1) for m in linears)
    default = build_model(load_config("ResNet50-standard", {"model": "resnet18"}), info).model
    assert default.conv1.weight.std().item() < 0.1  # timm's Kaiming init, as built


def test_class_balanced_subset(fmnist_dir):
    splits = build_splits("fashion_mnist", fmnist_dir, 0.0, seed=0, train_subset_per_class=3)
    labels = [int(splits.train[i][1]) for i in range(len(splits.train))]
    assert sorted(labels) == sorted(list(range(10)) * 3)


def test_class_balanced_subset_larger_than_a_class_is_one_line_before_any_folder(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--config", "FashionMNIST-ResNet8-standard", "--out", str(out), "--data-dir", str(fmnist_dir),
            "--set", "train_subset_per_class=50", "--set", "workers=0"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "train_subset_per_class 50 is larger than class" in err and "\n" not in err
    assert not out.exists()


def test_a_run_without_validation_reports_last_and_test_selected(fmnist_dir, tmp_path):
    cfg = load_config("FashionMNIST-ResNet8-standard", {**TINY, "data_dir": str(fmnist_dir), "val_fraction": 0.0})
    summary = fit(cfg, tmp_path, log=lambda _: None)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert summary["test_top1"] == summary["last_test_top1"] == records[-1]["test_top1"]
    top = max(records, key=lambda r: r["test_top1"])
    assert summary["test_selected_top1"] == top["test_top1"] and summary["test_selected_epoch"] == top["epoch"]
    assert "last epoch" in summary["selection"] and "selected on the test set" in summary["selection"]
    with_val = fit(load_config("FashionMNIST-ResNet8-standard", {**TINY, "data_dir": str(fmnist_dir)}), tmp_path / "v",
                   log=lambda _: None)  # fmt: skip
    assert "test_selected_top1" not in with_val  # runs with validation keep their summary as it was
