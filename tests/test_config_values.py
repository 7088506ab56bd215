"""A value that trains nothing, or that was once silently changed, is refused before any work in one line naming
it: config values (the seed's range, an image size the data set does not have, too few views, impossible
checkpoint and subset numbers) and the values of losses and models built from Python."""

from __future__ import annotations

import math

import pytest
from interrupted_runs import NAME

from accord.config import ConfigError, load_config
from accord.losses.agmax import AgMaxLoss
from accord.losses.tied import TiedAugmentLoss
from accord.models import MultiViewModel, create_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("FashionMNIST-ResNet8-standard", {"seed": 2**64}, "config key 'seed' must be in [0, 2**32)"),
        ("FashionMNIST-ResNet8-standard", {"seed": -1}, "config key 'seed' must be in [0, 2**32)"),
        ("FashionMNIST-ResNet8-standard", {"image_size": 32}, "fashion_mnist images are 28 px"),
        ("FashionMNIST-ResNet8-standard-agmax", {"num_views": 1}, "method 'agmax' needs 2 views; num_views is 1"),
    ],
)
def test_config_values_that_were_silently_changed_or_crashed_are_refused(name, overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(name, overrides)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "build",
    [lambda: AgMaxLoss(num_classes=1), lambda: TiedAugmentLoss(weight=math.nan), lambda: TiedAugmentLoss(weight=-1),
     lambda: MultiViewModel(create_model("ResNet8", 10, 1, 0.0), num_views=0)],
)  # fmt: skip
def test_losses_and_the_model_refuse_values_that_train_nothing(build):
    with pytest.raises(ValueError, match="at least|finite number >= 0"):
        build()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"checkpoint_every_steps": -1}, "'checkpoint_every_steps' must not be negative"),
        ({"checkpoint_every_steps": 2.5}, "'checkpoint_every_steps': expected int"),
        ({"nonfinite": "ignore"}, "'nonfinite': 'ignore' is not one of stop, skip"),
        ({"nonfinte": "skip"}, "did you mean 'nonfinite'"),
        ({"val_fraction": 1.0}, r"'val_fraction' must be in \[0, 1\)"),
        ({"train_subset": 16, "batch_size": 32}, "train_subset 16 is smaller than batch_size 32"),
        ({"image_size": 0}, "'image_size' must be positive"),
        ({"lr": -0.1}, "must be positive"),
    ],
)
def test_impossible_values_get_one_clear_line_before_any_work(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(NAME, overrides)
    assert "\n" not in str(info.value)
