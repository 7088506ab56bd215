"""examples/timm_train.py trains as the authors do: weight decay on every parameter (BatchNorm and biases too,
as roatienza/agmax and ekurtulus/tied-augment pytorch/supervised decay ``model.parameters()``), and for
Tied-Augment one forward pass per view."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import timm.optim

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("method", ["agmax", "tied"])
def test_the_example_decays_every_parameter_and_ties_with_two_passes(method, fmnist_dir, monkeypatch, one_thread):
    made = {}
    original = timm.optim.create_optimizer_v2

    def recording(module, *args, **kwargs):
        made["module"], made["optimizer"] = module, original(module, *args, **kwargs)
        return made["optimizer"]

    monkeypatch.setattr(timm.optim, "create_optimizer_v2", recording)
    argv = ["timm_train.py", "--data-dir", str(fmnist_dir), "--steps", "1", "--method", method, "--batch-size", "8"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "examples" / "timm_train.py"), run_name="__main__")
    decays = [group["weight_decay"] for group in made["optimizer"].param_groups]
    assert decays == [5e-4] * len(decays)  # no undecayed group of BatchNorm and biases
    decayed = sum(p.numel() for g in made["optimizer"].param_groups for p in g["params"])
    assert decayed == sum(p.numel() for p in made["module"].parameters())
    if method == "tied":
        assert made["module"].views.bn_mode == "separate"
