"""The lines docs/api.md adds to timm's train.py, in a loop built the way train.py builds it: timm's create_dataset
and create_loader (``num_aug_splits``, the prefetcher on and off), the task from create_task, LoopMixer where
``mixup_fn`` sits, EMA, CheckpointSaver and resume. Two steps per method, with and without MixUp/CutMix.

Lines marked ``# + accord`` are the ones the docs add; the rest is train.py's own logic, reduced to what runs here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import timm
import torch
from timm.data import create_dataset, create_loader
from timm.optim import create_optimizer_v2
from timm.task import load_task_ema_checkpoint, resume_task_checkpoint
from timm.utils import CheckpointSaver

from accord.losses import METHODS
from accord.timm import LoopMixer, MultiViewDataset, create_task  # + accord

CASES = [
    (method, mix, prefetcher)
    for method in METHODS
    for mix in ((False, True) if METHODS[method].mixing is not None else (False,))
    for prefetcher in (True, False)
]


def timm_args(method: str, mix: bool, prefetcher: bool, out: Path, resume: str = "") -> argparse.Namespace:
    return argparse.Namespace(
        model="resnet10t",
        num_classes=3,
        aug_splits=METHODS[method].views or 2,
        view_loss=method,  # + accord
        batch_size=4,
        prefetcher=prefetcher,
        smoothing=0.1,
        mixup=0.8 if mix else 0.0,
        cutmix=1.0 if mix else 0.0,
        mixup_prob=1.0,
        mixup_switch_prob=0.5,
        model_ema_decay=0.9,
        output=str(out),
        resume=resume,
    )


def train(args: argparse.Namespace, root: Path, steps: int = 2) -> int:
    """train.py's main() and train_one_epoch(), in order; returns the epoch the run ended on."""
    device = torch.device("cpu")
    model = timm.create_model(args.model, num_classes=args.num_classes)
    num_aug_splits = args.aug_splits
    dataset_train = create_dataset("", root=str(root / "train"), is_training=True)
    mixup_active = args.mixup > 0 or args.cutmix > 0
    mixup_args = dict(
        mixup_alpha=args.mixup,
        cutmix_alpha=args.cutmix,
        cutmix_minmax=None,
        prob=args.mixup_prob,
        switch_prob=args.mixup_switch_prob,
        mode="batch",
        label_smoothing=args.smoothing,
        num_classes=args.num_classes,
    )
    collate_fn = mixup_fn = None
    assert not (mixup_active and not args.view_loss)  # timm's own Mixup paths are not under test here
    if num_aug_splits > 1:
        dataset_train = MultiViewDataset(dataset_train, num_aug_splits, method=args.view_loss)  # + accord
    loader_train = create_loader(
        dataset_train,
        input_size=(3, 32, 32),
        batch_size=args.batch_size,
        is_training=True,
        use_prefetcher=args.prefetcher,
        num_aug_splits=num_aug_splits,
        collate_fn=collate_fn,
        device=device,
        num_workers=0,
        persistent_workers=False,
    )
    task = create_task(  # + accord
        args.view_loss, model, num_views=num_aug_splits, smoothing=args.smoothing, device=device, verbose=False
    )
    if args.view_loss and mixup_active:  # + accord
        mixup_fn = LoopMixer(task, **mixup_args)  # + accord
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.01, momentum=0.9)
    resume_epoch = (
        resume_task_checkpoint(task, args.resume, optimizer=optimizer, log_info=False) if args.resume else None
    )
    task.setup_ema(decay=args.model_ema_decay)
    if args.resume:
        load_task_ema_checkpoint(task, args.resume)
    saver = CheckpointSaver(
        model=task.get_trainable_module(),
        optimizer=optimizer,
        args=args,
        checkpoint_dir=args.output,
        recovery_dir=args.output,
        task=task,
    )
    epoch = 0 if resume_epoch is None else resume_epoch
    task.get_trainable_module().train()
    for step, (input, target) in enumerate(loader_train, start=1):  # train_one_epoch
        if not args.prefetcher:
            input, target = input.to(device=device), target.to(device=device)
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
        if args.prefetcher and mixup_fn is not None:  # + accord
            input, target = mixup_fn(input, target)  # + accord
        result = task(input, target)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        task.update_ema(step=step)
        assert torch.isfinite(result["loss"]), result
        if step == steps:
            break
    saver.save_checkpoint(epoch, metric=float(epoch))
    return epoch


@pytest.mark.parametrize(("method", "mix", "prefetcher"), CASES)
def test_timm_train_py_with_the_documented_lines(method, mix, prefetcher, imagefolder_dir, tmp_path, one_thread):
    torch.manual_seed(0)
    assert train(timm_args(method, mix, prefetcher, tmp_path), imagefolder_dir) == 0
    last = tmp_path / "last.pth.tar"
    state = torch.load(last, weights_only=False)
    assert {"state_dict", "state_dict_ema", "args"} <= set(state)
    assert ("task_state" in state) == (method == "agmax")  # the Q head travels with the checkpoint
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    assert train(timm_args(method, mix, prefetcher, resumed, resume=str(last)), imagefolder_dir) == 1


def test_the_wrong_split_count_stops_before_the_first_step(imagefolder_dir):
    data = create_dataset("", root=str(imagefolder_dir / "train"), is_training=True)
    with pytest.raises(ValueError, match=r"'tied' takes 2 views per image, got 3 \(timm: --aug-splits 2\)"):
        MultiViewDataset(data, 3, method="tied")


def test_a_clean_first_method_gets_augmix_layout(imagefolder_dir):
    """JSD's first view is the clean image (timm's AugMixDataset): view 1 only normalised after the shared crop."""
    data = MultiViewDataset(create_dataset("", root=str(imagefolder_dir / "train")), 3, method="jsd")
    loader = create_loader(
        data,
        (3, 32, 32),
        4,
        is_training=True,
        num_aug_splits=3,
        auto_augment="augmix-m5-w3",
        use_prefetcher=False,
        num_workers=0,
        persistent_workers=False,
    )
    views = data.transform
    assert views.shared is not None and len(views.views) == 3 and views.views[1] is views.views[2]
    images, target = next(iter(loader))
    assert images.shape == (4, 3, 3, 32, 32) and target.shape == (4,)  # torch's default collate: (B, V, C, H, W)


def test_the_documented_patch_is_at_most_twelve_lines():
    """docs/api.md's lines for timm's train.py: the count it states, and no more than a dozen."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    block = doc.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    added = [line for line in block if line.startswith("+")]
    changed = [line for line in block if line.startswith("-")]
    assert (len(added), len(changed)) == (10, 2)
    assert "Ten lines (eight added, two changed)" in doc
    assert any("LoopMixer(task, **mixup_args)" in line for line in added)
