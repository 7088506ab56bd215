"""Mixed precision, channels_last and torch.compile through the trainer."""

from __future__ import annotations

import pytest
import torch
from test_train import metrics, tiny_config

from accord.config import ConfigError
from accord.engine import fit, load_checkpoint


def test_bf16_channels_last_agmax_trains(fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard-agmax", fmnist_dir, amp="bf16", channels_last=True)
    fit(cfg, tmp_path, log=lambda _: None)
    records = metrics(tmp_path)
    assert records[-1]["train"]["loss"] < records[0]["train"]["loss"]
    assert records[-1]["test_top1"] > 20  # chance is 10%
    weights = load_checkpoint(tmp_path / "checkpoint-last.pt")["model"]
    assert all(w.dtype == torch.float32 for w in weights.values() if w.is_floating_point())  # autocast, fp32 weights


def test_fp16_needs_a_gpu(fmnist_dir, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: fp16 runs")
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        fit(tiny_config("FashionMNIST-ResNet8-standard", fmnist_dir, amp="fp16"), tmp_path, log=lambda _: None)


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one_and_keeps_timm_keys(fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard-tied", fmnist_dir, epochs=1)
    fit(cfg, tmp_path / "eager", log=lambda _: None)
    compiled = tiny_config("FashionMNIST-ResNet8-standard-tied", fmnist_dir, epochs=1, compile=True)
    fit(compiled, tmp_path / "compiled", log=lambda _: None)
    eager, compiled = metrics(tmp_path / "eager"), metrics(tmp_path / "compiled")
    assert compiled[0]["train"]["loss"] == pytest.approx(eager[0]["train"]["loss"], rel=1e-3)
    a = load_checkpoint(tmp_path / "eager" / "checkpoint-last.pt")["model"]
    b = load_checkpoint(tmp_path / "compiled" / "checkpoint-last.pt")["model"]
    assert a.keys() == b.keys()  # no "_orig_mod." prefixes


@pytest.mark.parametrize(("method", "loss_compiled"), [("-agmax", True), ("-tied", False), ("", True)])
def test_compile_fuses_the_loss_unless_its_weight_follows_progress(fmnist_dir, method, loss_compiled):
    """``compile: true`` compiles the loss with the model (AgMax's dozen small kernels fused); Tied-Augment's
    weight schedule changes a Python float every step, which would recompile, so its loss stays eager."""
    from accord.engine.run import build_run
    from accord.engine.trainer import _train_step

    run = build_run(tiny_config(f"FashionMNIST-ResNet8-standard{method}", fmnist_dir, compile=True))
    step = _train_step(run)
    compiled = torch._dynamo.eval_frame.OptimizedModule
    model, loss = step._compiled  # what the step calls; its parameters stay the model's and the loss's own
    assert isinstance(model, compiled) and isinstance(loss, compiled) is loss_compiled
    eager = _train_step(build_run(tiny_config(f"FashionMNIST-ResNet8-standard{method}", fmnist_dir)))
    assert eager._compiled is None
