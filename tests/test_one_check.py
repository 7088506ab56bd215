"""The val_source, fixed-size image and MixUp/CutMix refusals are each made in one place (``accord.data.checks``,
``accord.losses.mixing_rule``) and every layer that checks calls it: the config, the data loading, the run builder
and timm's loop refuse with the same sentence. The cases come from the registries."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from accord.config import ConfigError, load_config
from accord.data import build_splits
from accord.data.registry import REGISTRY
from accord.engine.run import _mixer
from accord.errors import UserError
from accord.losses import METHODS, method_spec
from accord.timm_loop.arguments import view_problem

FIXED = [name for name, spec in REGISTRY.items() if spec.facts.fixed_size]
NO_VAL_FOLDER = [name for name, spec in REGISTRY.items() if not spec.val_folder]
NO_MIXING = [name for name in METHODS if method_spec(name).mixing is None]
CONFIG = "FashionMNIST-ResNet8-standard"


def test_the_registries_hold_cases():
    assert FIXED and NO_VAL_FOLDER and NO_MIXING


def message(error: Exception) -> str:
    return str(error).removeprefix("config key 'image_size': ")


@pytest.mark.parametrize("dataset", FIXED)
def test_a_fixed_size_data_set_refuses_another_size_in_every_layer(dataset):
    size = REGISTRY[dataset].facts.image_size + 4
    with pytest.raises(ConfigError) as config:
        load_config(CONFIG, {"dataset": dataset, "image_size": size})
    with pytest.raises(UserError) as data:  # before any file is read
        build_splits(dataset, None, image_size=size)
    native = REGISTRY[dataset].facts.image_size
    expected = (
        f"{dataset} images are {native} px and are not resized; got {size} (drop image_size or set it to {native})"
    )
    assert message(config.value) == message(data.value) == expected


@pytest.mark.parametrize("dataset", NO_VAL_FOLDER)
def test_val_source_folder_is_refused_in_every_layer(dataset):
    with pytest.raises(ConfigError) as config:
        load_config(CONFIG, {"dataset": dataset, "val_source": "folder"})
    with pytest.raises(UserError) as data:
        build_splits(dataset, None, val_source="folder")
    assert str(config.value) == str(data.value)
    assert str(data.value).startswith("val_source: folder selects on an image folder's val/")


@pytest.mark.parametrize("method", NO_MIXING)
def test_a_method_without_mixing_is_refused_in_every_layer(method):
    with pytest.raises(ConfigError, match=f"method '{method}' refuses MixUp/CutMix") as config:
        load_config(f"{CONFIG}-{method}", {"mix": "mixup"})
    cfg = load_config(f"{CONFIG}-{method}")
    built_by_hand = dataclasses.replace(cfg, views=dataclasses.replace(cfg.views, mix="mixup"))
    with pytest.raises(UserError, match=f"method '{method}' refuses MixUp/CutMix") as run:
        _mixer(built_by_hand, None)  # type: ignore[arg-type]
    views = method_spec(method).views or 2
    args = argparse.Namespace(view_loss=method, aug_splits=views, mixup=0.8, cutmix=0.0, view_option=[])
    timm = view_problem(args)
    assert str(config.value).partition(" (")[0] == str(run.value).partition(" (")[0] == timm.partition(" (")[0]
