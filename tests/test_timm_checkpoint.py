"""A checkpoint written by timm's own CheckpointSaver (``args`` as an ``argparse.Namespace``, the EMA weights in
``state_dict_ema``; the model's weights first) starts an ``accord train`` run as ``pretrained_file``, read with
``weights_only=True``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import timm
import torch
from timm.optim import create_optimizer_v2
from timm.utils import CheckpointSaver

import accord.models.cifar  # noqa: F401  (registers cifar_resnet8 with timm)
from accord.cli import main
from accord.models import create_model
from accord.models.pretrained import PretrainedError, load_pretrained_file
from accord.timm_loop import create_task
from accord.views import collate_views


def view_batch() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    views = [((im.float() / 255, im.flip(-1).float() / 255), i % 10) for i, im in enumerate(images)]
    return collate_views(views)


def timm_checkpoint(folder: Path) -> dict:
    """Two steps of a timm task with EMA, saved by timm's CheckpointSaver as timm's train.py saves them."""
    torch.manual_seed(0)
    task = create_task("agmax", timm.create_model("cifar_resnet8", num_classes=10, in_chans=1), verbose=False)
    task.setup_ema(decay=0.5)
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.1, momentum=0.9)
    task.train()
    for step in (1, 2):
        optimizer.zero_grad()
        task(*view_batch())["loss"].backward()
        optimizer.step()
        task.update_ema(step=step)
    args = argparse.Namespace(model="cifar_resnet8", lr=0.1, aug_splits=2, view_loss="agmax")
    saver = CheckpointSaver(
        task.get_trainable_module(),
        optimizer,
        args=args,
        checkpoint_dir=str(folder),
        recovery_dir=str(folder),
        task=task,
    )
    saver.save_checkpoint(0, metric=1.0)
    state = torch.load(folder / "last.pth.tar", weights_only=False)
    assert isinstance(state["args"], argparse.Namespace) and "state_dict_ema" in state
    return state


@pytest.mark.parametrize("name", ["last.pth.tar", "model_best.pth.tar", "checkpoint-0.pth.tar"])
def test_timm_checkpoints_load_the_models_weights_and_say_so(name, tmp_path, one_thread):
    """As timm's --initial-checkpoint: ``state_dict`` before ``state_dict_ema``, in one line."""
    state = timm_checkpoint(tmp_path)
    model, lines = create_model("ResNet8", 10, 1), []
    load_pretrained_file(model, tmp_path / name, log=lines.append)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state["state_dict"].items())
    assert any(not torch.equal(state["state_dict_ema"][k], state["state_dict"][k]) for k in state["state_dict"])
    assert lines == [f"pretrained_file {tmp_path / name}: took its 'state_dict' weights; not 'state_dict_ema'"]


def test_other_pickled_objects_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "payload": _Payload()}, path)
    with pytest.raises(PretrainedError, match="cannot read it safely: it pickles .*_mark_unpickled") as error:
        load_pretrained_file(create_model("ResNet8", 10, 1), path)
    assert not _Payload.unpickled and len(str(error.value).splitlines()) == 1


class _Payload:
    unpickled = False

    def __reduce__(self):
        return (_mark_unpickled, ())


def _mark_unpickled():
    _Payload.unpickled = True
    return None


def test_a_timm_checkpoint_starts_an_accord_train_run(fmnist_dir, tmp_path, one_thread):
    state = timm_checkpoint(tmp_path)
    out = tmp_path / "run"
    args = ["train", "--config", "FashionMNIST-ResNet8-standard", "--data-dir", str(fmnist_dir), "--out", str(out)]
    sets = {"pretrained_file": tmp_path / "last.pth.tar", "epochs": 1, "batch_size": 64, "workers": 0, "lr": 1e-9}
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    ckpt = torch.load(out / "checkpoint-last.pt", weights_only=False)
    body = [k for k in state["state_dict"] if not k.endswith("num_batches_tracked") and "running" not in k]
    assert all(torch.allclose(ckpt["model"][k], state["state_dict"][k], atol=1e-6) for k in body)
