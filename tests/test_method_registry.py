"""A method registered from outside accord, as docs/adding-a-method.md writes it (``register(MethodSpec(...))`` with
the page's own loss), is known to config resolution and the loss factory and trains through `accord train`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from method_doc import NAME, doc_loss, registry_entry

from accord.cli import main
from accord.config import ConfigError, load_config
from accord.losses import METHODS, MethodSpec, create_loss, register


def unregistered(name: str) -> str:
    """``name``, or ``name`` with a suffix, that no registered method has (the page's name may be registered)."""
    return next(candidate for i in range(100) if (candidate := f"{name}{i or ''}") not in METHODS)


@pytest.fixture
def cosine_method() -> Iterator[MethodSpec]:
    """The page's method registered under a free name with the page's MethodSpec arguments; removed after."""
    loss = doc_loss()
    spec = eval(registry_entry(), {"MethodSpec": MethodSpec, "CosineAgreementLoss": loss})  # noqa: S307
    name = unregistered(NAME)
    spec = register(MethodSpec(name, loss, spec.label, views=spec.views, mixing=spec.mixing))
    yield spec
    METHODS.pop(name)


def test_registered_method_is_known_to_config_and_factory(cosine_method):
    name = cosine_method.name
    cfg = load_config("FashionMNIST-ResNet8-standard", {"method": name, "loss": {"weight": 0.5}})
    assert cfg.views.num_views == 2 and cfg.views.view_policies == ("crop-flip", "crop-flip")
    assert isinstance(create_loss(name, 10, 2, weight=0.5), cosine_method.loss)
    with pytest.raises(ConfigError, match="no loss option 'wieght' \\(did you mean 'weight'\\?\\); valid: weight"):
        load_config("FashionMNIST-ResNet8-standard", {"method": name, "loss": {"wieght": 0.5}})


def test_registered_method_trains_through_accord_train(cosine_method, fmnist_dir, tmp_path):
    out = tmp_path / "run"
    sets = [f"method={cosine_method.name}", "loss.weight=0.5", "epochs=1", "train_subset=64", "batch_size=32",
            "lr_batch=32", "workers=0", "eval_batch_size=100", "log_interval=1"]  # fmt: skip
    args = ["--config", "FashionMNIST-ResNet8-standard", "--data-dir", str(fmnist_dir)]
    assert main(["train", *args, *[f"--set={s}" for s in sets], "--out", str(out)]) == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "ce", "cosine"} <= set(record["train"])
    assert f"method: {cosine_method.name}" in (out / "config.yaml").read_text()


def test_unregistered_method_is_refused_with_the_valid_names():
    name = unregistered(NAME)
    with pytest.raises(ConfigError, match=f"unknown method '{name}'.*; valid: {', '.join(METHODS)}"):
        load_config("FashionMNIST-ResNet8-standard", {"method": name})
