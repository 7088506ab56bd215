"""Round three, the smaller faults: bad numbers and sizes refused naming the key, SIGHUP saves the
progress, and `accord export` says which checkpoint it took."""

from __future__ import annotations

import math
import shutil
import signal

import pytest
from tiny_runs import start_long_run, wait_until

from accord.config import ConfigError, load_config
from accord.engine.checkpoint import load_checkpoint
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


def test_sighup_saves_the_progress_as_sigterm_does(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    child = start_long_run(fmnist_dir, out)
    try:
        wait_until(lambda: (out / "checkpoint-last.pt").is_file(), child)
        child.send_signal(signal.SIGHUP)  # the terminal closed
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 129, err
    assert "SIGHUP: stopped at" in err
    load_checkpoint(out / "checkpoint-last.pt")
    shutil.rmtree(out)
