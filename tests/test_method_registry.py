"""A method added through the registry alone trains through `accord train`'s code path.

This is the worked example of docs/adding-a-method.md: a cosine-similarity agreement term between the
pooled features of two views, beside cross-entropy on both views.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from accord.cli import main
from accord.config import ConfigError, load_config
from accord.losses import METHODS, MethodSpec, create_loss, register


class CosineAgreementLoss(nn.Module):
    """CE on both views + ``weight * (1 - cos(f1, f2))`` averaged over the batch (f: pooled features)."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        assert features is not None
        y = torch.cat([target, target])
        ce = F.cross_entropy(logits, y)
        f1, f2 = features.chunk(2)
        cosine = (1 - F.cosine_similarity(f1, f2, dim=1)).mean()
        return {"loss": ce + self.weight * cosine, "ce": ce, "cosine": cosine}


@pytest.fixture
def cosine_method(monkeypatch):
    monkeypatch.setitem(METHODS, "cosine", METHODS["ce"])  # restored after the test
    return register(MethodSpec("cosine", CosineAgreementLoss, "cosine agreement", views=2, mixing="each"))


def test_registered_method_is_known_to_config_and_factory(cosine_method):
    cfg = load_config("FashionMNIST-ResNet8-standard", {"method": "cosine", "loss": {"weight": 0.5}})
    assert cfg.views.num_views == 2 and cfg.views.views == ("crop-flip", "crop-flip")
    assert isinstance(create_loss("cosine", 10, 2, weight=0.5), CosineAgreementLoss)
    with pytest.raises(ConfigError, match="no loss option 'wieght' \\(did you mean 'weight'\\?\\); valid: weight"):
        load_config("FashionMNIST-ResNet8-standard", {"method": "cosine", "loss": {"wieght": 0.5}})


def test_registered_method_trains_through_accord_train(cosine_method, fmnist_dir, tmp_path):
    out = tmp_path / "run"
    sets = ["method=cosine", "loss.weight=0.5", "epochs=1", "train_subset=64", "batch_size=32", "lr_batch=32",
            "workers=0", "eval_batch_size=100", "log_interval=1"]  # fmt: skip
    args = ["--config", "FashionMNIST-ResNet8-standard", "--data-dir", str(fmnist_dir)]
    assert main(["train", *args, *[f"--set={s}" for s in sets], "--out", str(out)]) == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "ce", "cosine"} <= set(record["train"])
    assert "method: cosine" in (out / "config.yaml").read_text()


def test_unregistered_method_is_refused_with_the_valid_names():
    with pytest.raises(ConfigError, match="unknown method 'cosine'; valid: ce, ls, agmax"):
        load_config("FashionMNIST-ResNet8-standard", {"method": "cosine"})
