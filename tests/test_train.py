"""End to end: train, evaluate and resume through the engine and the CLI on generated data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from tiny_runs import QUICK

from accord.cli import main
from accord.config import load_config
from accord.engine import NonFiniteLossError, RunFolderError, fit, load_checkpoint
from accord.engine.runfiles import TIMING_KEYS, epoch_line

TINY = {**QUICK, "epochs": 2}
# tiny batches on a CPU: one intra-op thread is the fastest, and the same on every machine
pytestmark = pytest.mark.usefixtures("one_thread")
# 128 of the 400 images: for the tests that check what a run writes, not what it learns
FEW = {"train_subset": 128}


def tiny_config(name: str, fmnist_dir: Path, **extra) -> dict:
    return load_config(name, {**TINY, "data_dir": str(fmnist_dir), **extra})


def metrics(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in records:  # timings differ between runs; everything else must not
        for key in TIMING_KEYS:
            r.pop(key, None)
    return records


@pytest.mark.parametrize("method", ["", "-ls", "-agmax", "-agmax-mse", "-tied", "-jsd", "-ce2"])
def test_each_method_trains_and_writes_a_run(method, fmnist_dir, tmp_path):
    cfg = tiny_config(f"FashionMNIST-ResNet8-standard{method}", fmnist_dir)
    summary = fit(cfg, tmp_path, log=lambda _: None)
    records = metrics(tmp_path)
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["train"]["loss"] < records[0]["train"]["loss"]
    assert all(r["test_top1"] > 20 for r in records[1:]), records  # chance is 10%
    for name in ("config.yaml", "checkpoint-last.pt", "checkpoint-best.pt", "summary.json"):
        assert (tmp_path / name).is_file()
    best = max(records, key=lambda r: r["val_top1"])
    assert summary["test_top1"] == best["test_top1"] and summary["best_epoch"] == best["epoch"]
    ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert ckpt["epoch"] == 1 and ckpt["config"]["method"] == cfg.method.method
    if cfg.method.method == "agmax":  # the Q head trains with the model but is not part of it
        assert any(k.startswith("q_head") for k in ckpt["criterion"])
        assert not any("q_head" in k for k in ckpt["model"])


def test_same_seed_same_metrics(fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard-tied", fmnist_dir, epochs=1)
    fit(cfg, tmp_path / "a", log=lambda _: None)
    fit(cfg, tmp_path / "b", log=lambda _: None)
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")


class Stop(Exception):
    pass


@pytest.mark.parametrize("name", ["FashionMNIST-ResNet8-standard-agmax", "FashionMNIST-ResNet8-cutout-tied"])
def test_resume_matches_uninterrupted_run(name, fmnist_dir, tmp_path):
    cfg = tiny_config(name, fmnist_dir, epochs=3, **FEW)
    fit(cfg, tmp_path / "full", log=lambda _: None)

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/3"):
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, tmp_path / "cut", log=stop_after_first_epoch)
    assert len(metrics(tmp_path / "cut")) == 1
    fit(cfg, tmp_path / "cut", resume=True, log=lambda _: None)
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "full")
    full = load_checkpoint(tmp_path / "full" / "checkpoint-last.pt")["model"]
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint-last.pt")["model"]
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_eval_every_skips_epochs_without_changing_training_or_selection(fmnist_dir, tmp_path):
    name = "FashionMNIST-ResNet8-standard-tied"
    fit(tiny_config(name, fmnist_dir, epochs=3, **FEW), tmp_path / "every", log=lambda _: None)
    lines: list[str] = []
    summary = fit(tiny_config(name, fmnist_dir, epochs=3, eval_every=2, **FEW), tmp_path / "some", log=lines.append)
    every, some = metrics(tmp_path / "every"), metrics(tmp_path / "some")
    assert [r["train"] for r in some] == [r["train"] for r in every]  # evaluating draws nothing from training
    assert all(math.isnan(some[0][k]) for k in ("val_top1", "test_top1"))  # epoch 1 skipped: NaN
    assert [some[i]["val_top1"] for i in (1, 2)] == [every[i]["val_top1"] for i in (1, 2)]  # 2 and the last
    assert any(line.startswith("epoch 1/3") and "not evaluated" in line for line in lines)
    assert not any(line.startswith("epoch 2/3") and "not evaluated" in line for line in lines)
    best = max(some[1:], key=lambda r: r["val_top1"])
    assert (summary["best_epoch"], summary["test_top1"]) == (best["epoch"], best["test_top1"])
    assert load_checkpoint(tmp_path / "some" / "checkpoint-best.pt")["epoch"] + 1 == best["epoch"]


def test_epoch_line_tells_a_skipped_evaluation_from_empty_splits():
    nan = float("nan")
    record = {
        "epoch": 1, "train": {"loss": 0.5}, "val_top1": nan, "test_top1": nan,
        "images_per_s": 10.0, "views_per_s": 20.0, "seconds": 1.0,
    }  # fmt: skip
    assert "not evaluated" in epoch_line(record, 3, False, evaluated=False)
    assert "val nan test nan" in epoch_line(record, 3, False, evaluated=True)  # no val or test images


def test_refuses_to_train_over_another_run(fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard", fmnist_dir, epochs=1, **FEW)
    fit(cfg, tmp_path, log=lambda _: None)
    with pytest.raises(RunFolderError, match="--resume .* --overwrite"):
        fit(cfg, tmp_path, log=lambda _: None)
    fit(cfg, tmp_path, overwrite=True, log=lambda _: None)
    assert len(metrics(tmp_path)) == 1


def test_non_finite_loss_stops_the_run(fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard", fmnist_dir, lr=1000.0, lr_batch=1, epochs=1)  # the most lr
    with pytest.raises(NonFiniteLossError, match="non-finite loss by step"):
        fit(cfg, tmp_path, log=lambda _: None)


def test_cli_train_eval_resume(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--config", "FashionMNIST-ResNet8-standard-agmax", "--data-dir", str(fmnist_dir), "--epochs", "2",
            "--train-subset", "128"]  # fmt: skip
    sets = [f"--set={k}={v}" for k, v in TINY.items() if k != "epochs"]
    assert main(["train", *args, *sets, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())

    assert main(["eval", "--checkpoint", str(out / "checkpoint-last.pt")]) == 0
    printed = capsys.readouterr().out
    assert f"test top-1 {summary['last_test_top1']:.2f}" in printed

    assert main(["train", *args, "--out", str(out)]) == 2
    assert "holds another run (batch_size: " in capsys.readouterr().err  # not the same config: refused
    assert main(["train", "--resume", str(out)]) == 0  # finished run: nothing left, still succeeds
    assert main(["train", "--config", "FashionMNIST-ResNet8-standard", "--set", "lrr=1", "--out", str(out)]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Payload(), "config": {}}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="cannot load checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


@pytest.mark.parametrize(
    "extra",
    [
        {"bn": "split"},
        {"bn": "separate"},
        {"amp": "bf16", "channels_last": True},
        {"schedule": "multistep", "milestones": [1]},
    ],
    ids=["split-bn", "separate-passes", "bf16-channels-last", "multistep"],
)
def test_training_options_run_and_evaluate(extra, fmnist_dir, tmp_path):
    cfg = tiny_config("FashionMNIST-ResNet8-standard-tied", fmnist_dir, **extra)
    summary = fit(cfg, tmp_path, log=lambda _: None)
    assert summary["test_top1"] > 20
    if extra.get("bn") == "split":  # the auxiliary BN layers are saved, and evaluation restores them
        ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
        assert any("aux_bn" in k for k in ckpt["model"])
        assert main(["eval", "--checkpoint", str(tmp_path / "checkpoint-last.pt")]) == 0
    if extra.get("schedule") == "multistep":
        assert [r["lr"] for r in metrics(tmp_path)] == pytest.approx([0.1, 0.01], rel=1e-6)


def test_eval_on_a_dataset_the_model_does_not_fit(fmnist_dir, cifar_dir, tmp_path, capsys):
    fit(tiny_config("FashionMNIST-ResNet8-standard", fmnist_dir, epochs=1, **FEW), tmp_path, log=lambda _: None)
    ckpt = str(tmp_path / "checkpoint-last.pt")
    assert main(["eval", "--checkpoint", ckpt, "--dataset", "cifar100", "--data-dir", str(cifar_dir)]) == 2
    assert "trained on 10 classes of fashion_mnist, the data has 100 classes of cifar100" in capsys.readouterr().err
    old = load_checkpoint(ckpt)
    del old["data"]  # a checkpoint from before runs recorded their data: the weights tell
    torch.save(old, ckpt)
    assert main(["eval", "--checkpoint", ckpt, "--dataset", "cifar100", "--data-dir", str(cifar_dir)]) == 2
    assert "does not fit cifar100 (100 classes, 3 channels)" in capsys.readouterr().err
