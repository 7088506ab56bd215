"""Every paper config resolves to its authors' values (tests/data/author_recipes.yaml, docs/recipes.md).

Each value of the YAML file cites the authors' file and line (roatienza/agmax at a0afecab, and
ekurtulus/tied-augment at 726a8d20); the test reads the resolved config, never the page's prose. Where
accord departs on purpose the entry gives accord's value as ``accord`` and the reason as ``note``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from accord.config import load_config
from accord.losses import create_loss

RECIPES = yaml.safe_load((Path(__file__).parent / "data" / "author_recipes.yaml").read_text())


def paper_configs():
    """``(config name, key, expected value, source)`` of every value of every paper config."""
    for group in RECIPES["groups"].values():
        for model, aug, method in itertools.product(group["models"], group["augs"], group["methods"]):
            name = f"{model}-{aug}" + (f"-{method}" if method else "")
            values = {
                **group.get("values", {}),
                **group.get("augs_values", {}).get(aug, {}),
                **group.get("methods_values", {}).get(method, {}),
            }
            yield name, values


def resolved_value(flat: dict, key: str):
    if key.startswith("loss."):
        return flat["loss"].get(key[5:])
    return flat[key]


def comparable(value):
    return [comparable(v) for v in value] if isinstance(value, list | tuple) else value


@pytest.mark.parametrize(("name", "values"), list(paper_configs()), ids=lambda v: v if isinstance(v, str) else "")
def test_paper_config_has_the_authors_values(name, values):
    flat = load_config(name).as_flat()
    for key, entry in values.items():
        expected = entry.get("accord", entry["author"])
        assert comparable(resolved_value(flat, key)) == comparable(expected), f"{name}: {key} ({entry['source']})"


@pytest.mark.parametrize("epochs", [30, 60, 90, 270])
def test_agmax_imagenet_milestones_follow_the_authors_table(epochs):
    # roatienza/agmax classifier.py#L258-L268: 10/20/30, 15/30/40, 30/60/80, 75/150/225
    expected = {30: (10, 20, 30), 60: (15, 30, 40), 90: (30, 60, 80), 270: (75, 150, 225)}[epochs]
    assert load_config("ResNet50-standard-agmax", {"epochs": epochs}).optim.milestones == expected


def test_every_agmax_imagenet_row_has_jitter_lighting_and_the_authors_init():
    augs = RECIPES["groups"]["agmax-imagenet"]["augs"]
    for aug in augs:
        for method, init in (("", "default"), ("-ls", "default"), ("-agmax", "agmax")):
            cfg = load_config(f"ResNet50-{aug}{method}")
            assert cfg.data.val_fraction == 0 and cfg.model.init == init
            assert all("jitter-lighting" in view for view in cfg.views.view_policies)


def test_tied_views_are_asymmetric():
    cfg = load_config("WRN28-10-TiedCIFAR10-randaug-vs-standard-tied")
    assert cfg.views.view_policies[0] != cfg.views.view_policies[1] and cfg.model.bn == "separate"


def test_the_tied_view_pairs_compose_with_the_small_family():
    assert load_config("FashionMNIST-ResNet8-randaug-vs-standard-tied").views.num_views == 2
    assert load_config("FashionMNIST-ResNet8-randaug-vs-standard-agmax").views.num_views == 2
    assert load_config("FashionMNIST-ResNet8-randaug-vs-standard-ce2").views.num_views == 2
    assert load_config("FashionMNIST-ResNet8-randaug").views.num_views == 1
    # the small family keeps its own protocol: validation selection, its cutout, its init
    cfg = load_config("FashionMNIST-ResNet8-randaug-vs-standard-tied")
    assert cfg.data.val_fraction == 0.1 and cfg.model.bn == "concat" and not cfg.views.cutout_clip


def test_paper_configs_use_the_authors_own_augmentations():
    # AgMax: their AutoAugment (roatienza/agmax dataset/auto_augment.py), on ImageNet and CIFAR, every AA row
    for name in ("ResNet50-auto_augment-agmax", "ResNet101-auto_augment-cutmix", "WRN28-10-CIFAR100-auto_augment"):
        assert all("-autoaug_agmax-" in view + "-" for view in load_config(name).views.view_policies), name
    # Tied-Augment ImageNet: flip + TF RandAugment(2, 14), no CutOut (flax/supervised/input_pipeline.py#L194-L224)
    cfg = load_config("ResNet50-Tied-randaug-vs-standard-tied")
    assert cfg.views.view_policies == ("crop-flip-tfrandaug_2_14", "crop-flip")
    assert not any("cutout" in view for view in load_config("ResNet50-Tied-randaug-mixup-tied").views.view_policies)
    # their PyTorch CIFAR code uses torchvision's RandAugment, so the CIFAR Tied rows keep it
    first = load_config("WRN28-10-TiedCIFAR10-randaug-tied").views.view_policies[0]
    assert first == "crop-flip-randaug_2_14_bilinear-ccutout"


def test_torchvisions_versions_stay_available_by_name():
    cfg = load_config("ResNet50-auto_augment-agmax", {"policy": "crop-flip-autoaug-jitter-lighting"})
    assert cfg.views.view_policies[0] == "crop-flip-autoaug-jitter-lighting"
    assert load_config("FashionMNIST-ResNet8-auto_augment").views.view_policies[0] == "crop-flip-autoaug"


def test_the_imagenet_q_head_is_the_authors_rule_and_resnet101_runs_270_epochs():
    # roatienza/agmax classifier.py#L572-L579: no command line passes --n-units, so 128 * 2**3 * 4 for 1000 classes
    for name in ("ResNet50-auto_augment-cutmix-agmax", "ResNet50-standard-agmax", "ResNet101-cutmix-agmax"):
        cfg = load_config(name)
        loss = create_loss(cfg.method.method, 1000, cfg.views.num_views, **cfg.method.loss)
        assert loss.q_head[0].out_features == 4096, name
    assert load_config("ResNet101-auto_augment-cutmix-agmax").optim.epochs == 270  # scripts/imagenet.sh#L2-L4


def test_agmax_configs_keep_the_last_batch_and_tied_configs_drop_it():
    # roatienza/agmax dataloaders.py#L269-L272 (no drop_last); tied-augment pytorch/supervised/datasets.py#L296-L297
    # and flax/supervised/input_pipeline.py#L293 (drop_remainder)
    for group_name, group in RECIPES["groups"].items():
        for model, aug, method in itertools.product(group["models"], group["augs"], group["methods"]):
            name = f"{model}-{aug}" + (f"-{method}" if method else "")
            assert load_config(name).data.drop_last is group_name.startswith("tied"), name


def test_policy_swap_replaces_whole_token_runs_only():
    from accord.config.files import swap_tokens

    swap = {"randaug_2_14_bilinear-cutout": "tfrandaug_2_14", "autoaug": "autoaug_agmax"}
    assert swap_tokens("crop-flip-randaug_2_14_bilinear-cutout", swap) == "crop-flip-tfrandaug_2_14"
    assert swap_tokens("crop-flip-cutout", swap) == "crop-flip-cutout"  # a CutOut row keeps its CutOut
    assert swap_tokens("crop-flip-autoaug_cifar10", swap) == "crop-flip-autoaug_cifar10"  # whole tokens only
    assert swap_tokens("crop-flip-autoaug-cutout", swap) == "crop-flip-autoaug_agmax-cutout"
    assert load_config("ResNet50-Tied-cutout-tied").views.view_policies[0].endswith("ccutout")
