from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.config import (
    ConfigError,
    list_configs,
    load_config,
    load_saved_config,
    parse_overrides,
    split_name,
)
from accord.losses import method_spec


def test_names_compose_model_augmentation_method():
    assert split_name("ResNet50-standard") == ("ResNet50", "standard", None)
    assert split_name("ResNet50-auto_augment-cutout-agmax-mse") == ("ResNet50", "auto_augment-cutout", "agmax-mse")
    assert split_name("FashionMNIST-ResNet8-standard-tied") == ("FashionMNIST-ResNet8", "standard", "tied")
    assert split_name("WRN40-2-standard-tied") == ("WRN40-2", "standard", "tied")


def test_required_names_exist():
    names = set(list_configs())
    for name in (
        "ResNet50-standard",
        "ResNet50-standard-agmax",
        "WRN40-2-standard-tied",
        "FashionMNIST-ResNet8-standard-agmax",
        "FashionMNIST-ResNet8-standard-ls",
        "FashionMNIST-ResNet8-standard-jsd",
        "ResNet101-cutout-agmax-kl",
    ):
        assert name in names


def test_resolved_config_layers():
    cfg = load_config("ResNet50-cutout-agmax")
    assert cfg.model.model == "resnet50" and cfg.optim.epochs == 90 and cfg.optim.milestones == (30, 60, 80)
    assert cfg.optim.weight_decay == 1e-4 and cfg.method.method == "agmax" and cfg.method.loss["dl_weight"] == 4.0
    assert cfg.views.view_policies == ("crop-flip-jitter-lighting-ccutout",) * 2 and cfg.views.num_views == 2
    assert load_config("FashionMNIST-ResNet8-standard").views.view_policies == ("crop-flip",)
    jsd = load_config("FashionMNIST-ResNet8-auto_augment-jsd")
    assert jsd.views.view_policies == ("crop-flip-autoaug", "crop-flip-autoaug-augmix", "crop-flip-autoaug-augmix")


def test_overrides_and_nested_loss_options():
    overrides = parse_overrides(["lr=0.05", "loss.weight=2", "milestones=[1, 2]", "data_dir=/x"])
    assert overrides == {"lr": 0.05, "loss": {"weight": 2}, "milestones": [1, 2], "data_dir": "/x"}
    cfg = load_config("FashionMNIST-ResNet8-standard-tied", overrides)
    assert cfg.method.loss == method_spec("tied").option_defaults() | {"weight": 2}  # every option, stated


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lrr": 1}, "did you mean 'lr'"),
        ({"lr": -0.1}, "must be positive"),
        ({"eval_every": 0}, "must be positive"),
        ({"lr": "fast"}, "expected float"),
        ({"epochs": 1.5}, "expected int"),
        ({"schedule": "poly"}, "not one of cosine, multistep"),
        ({"method": "agmaxx"}, "valid: ce, ls, agmax"),
        ({"method": "agmax", "view_policies": ["crop-flip"]}, "needs 2 views"),
        ({"bn": "split"}, "split needs at least 2 views"),
    ],
)
def test_bad_values_get_one_clear_line(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config("FashionMNIST-ResNet8-standard", overrides)
    assert "\n" not in str(info.value)


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="did you mean ResNet50-standard-agmax"):
        load_config("ResNet50-standrd-agmax")


def test_config_file_with_base(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: FashionMNIST-ResNet8-standard-agmax\nepochs: 2\nloss: {dl_weight: 2.0}\n")
    cfg = load_config(path)
    assert cfg.name == "mine" and cfg.optim.epochs == 2 and cfg.method.method == "agmax"
    assert cfg.method.loss["dl_weight"] == 2.0
    path.write_text("epochs: 2\nbogus: 1\n")
    with pytest.raises(ConfigError, match="unknown config key 'bogus'"):
        load_config(path)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(list_configs()))
def test_a_saved_config_yaml_reads_back_as_the_same_config(name, tmp_path_factory):
    """What a run writes to config.yaml (``as_flat``, as YAML) is what --resume, eval and a grid read back."""
    cfg = load_config(name)
    path = tmp_path_factory.mktemp("saved") / "config.yaml"
    path.write_text(yaml.safe_dump(cfg.as_flat(), sort_keys=False))
    assert load_saved_config(path).as_flat() == cfg.as_flat()


def test_loss_options_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="method 'agmax' has no loss option 'weight'.*valid: hidden_units, dl_weight"):
        load_config("FashionMNIST-ResNet8-standard-agmax", {"loss": {"weight": 2}})
