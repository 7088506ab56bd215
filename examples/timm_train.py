"""Any accord method (AgMax, Tied-Augment, AugMix-JSD, the CE and LS controls, the AgMax ablations) inside a training
loop made of timm's own parts.

    python examples/timm_train.py --method agmax --steps 300 [--mix cutmix] [--data-dir IDX_DIR] [--model-ema]

The loop has the shape of timm's ``train.py``: ``timm.create_model``, ``create_optimizer_v2`` on the task's trainable
module (so AgMax's Q head is trained), ``create_scheduler_v2`` stepped per update, the task's ``ModelEmaV3``
(``task.setup_ema``), ``CheckpointSaver(..., task=task)`` (timm model keys in ``state_dict``, the Q head in
``task_state``), and evaluation of ``task.get_eval_model()`` — the EMA weights' model when ``--model-ema`` is on.
accord supplies the task (``accord.timm_loop``), the view dataset and the view-aware MixUp/CutMix.
"""

import argparse
import math
import os

import timm
import torch
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import AverageMeter, CheckpointSaver, accuracy
from torch.utils.data import DataLoader

import accord.models.cifar  # noqa: F401  (registers cifar_resnet8, ... with timm)
from accord.data import build_splits
from accord.losses import METHODS
from accord.timm_loop import LoopMixer, MultiViewDataset, create_task, policy_views
from accord.views import ViewDataset, build_eval_transform, collate_views

# The views of a method (accord's policies, one per view): two crop-flip views, except for these two.
# JSD: a clean view and two AugMix views sharing one crop; Tied-Augment: a light and a RandAugment view.
VIEWS = {
    "tied": ["crop-flip", "crop-flip-randaug_2_14-cutout"],
    "jsd": ["crop-flip", "crop-flip-augmix", "crop-flip-augmix"],
}
MIX = {"none": (0.0, 0.0), "mixup": (1.0, 0.0), "cutmix": (0.0, 1.0), "mixup-cutmix": (1.0, 1.0)}  # timm's alphas


@torch.no_grad()
def validate(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    top1 = AverageMeter()
    for input, target in loader:
        top1.update(accuracy(model(input), target)[0].item(), input.shape[0])
    return top1.avg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="Fashion-MNIST idx files (default: Debian's dataset-fashion-mnist)")
    parser.add_argument("--method", choices=list(METHODS), default="agmax")
    parser.add_argument("--model", default="cifar_resnet8", help="any timm.create_model name")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--mix", choices=list(MIX), default="none")
    parser.add_argument("--smoothing", type=float, default=None, help="label smoothing (default: the method's)")
    parser.add_argument("--model-ema", action="store_true", help="keep an EMA of the weights and evaluate it")
    parser.add_argument("--model-ema-decay", type=float, default=0.998)
    parser.add_argument("--output", default="", help="folder for timm checkpoints (none if empty)")
    args = parser.parse_args()
    torch.manual_seed(0)

    splits = build_splits("fashion_mnist", args.data_dir, val_fraction=0.0)
    info = splits.info
    policies = VIEWS.get(args.method, ["crop-flip", "crop-flip"])
    views = policy_views(policies, info, same_crop=args.method == "jsd")
    loader = DataLoader(
        MultiViewDataset(splits.train, views), args.batch_size, shuffle=True, drop_last=True, collate_fn=collate_views
    )
    test_loader = DataLoader(ViewDataset(splits.test, build_eval_transform(info)), 500, collate_fn=collate_views)

    model = timm.create_model(args.model, num_classes=info.num_classes, in_chans=info.in_chans)
    # Tied-Augment: one forward pass per view, the authors' step (the task's default is one pass over both views)
    options = {"bn_mode": "separate"} if args.method == "tied" else {}
    task = create_task(args.method, model, num_views=len(policies), smoothing=args.smoothing, **options)
    mixer = None
    if args.mix != "none":
        mixup_alpha, cutmix_alpha = MIX[args.mix]
        try:  # a method that refuses mixing (JSD) stops here, before any step
            mixer = LoopMixer(task, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha)
        except ValueError as e:
            parser.error(str(e))
    if args.model_ema:
        task.setup_ema(decay=args.model_ema_decay)
    # weight decay on every parameter, BatchNorm and biases included, as the AgMax and Tied-Augment CIFAR code do
    # (timm's default filter_bias_and_bn=True leaves them undecayed)
    optimizer = create_optimizer_v2(
        task.get_trainable_module(), "sgd", lr=args.lr, weight_decay=5e-4, momentum=0.9, filter_bias_and_bn=False
    )
    epochs = math.ceil(args.steps / len(loader))
    scheduler, _ = create_scheduler_v2(
        optimizer, "cosine", num_epochs=epochs, step_on_epochs=False, updates_per_epoch=len(loader)
    )
    saver = None
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        saver = CheckpointSaver(
            task.get_trainable_module(), optimizer, checkpoint_dir=args.output, recovery_dir=args.output, task=task
        )

    step = 0
    for epoch in range(epochs):
        loader.dataset.set_epoch(epoch)
        task.train()
        for input, target in loader:  # input: (V*B, C, H, W), view j in rows [j*B, (j+1)*B)
            if mixer is not None:  # where timm's mixup_fn sits; Tied-Augment's feature target goes to the task
                input, target = mixer(input, target)
            result = task(input, target)
            optimizer.zero_grad()
            result["loss"].backward()
            optimizer.step()
            step += 1
            task.update_ema(step=step)
            scheduler.step_update(num_updates=step)
            if step % 50 == 0 or step == args.steps:
                terms = " ".join(f"{k} {v.item():.3f}" for k, v in result.items() if k != "output")
                print(f"step {step}: {terms}")
            if step == args.steps:
                break
        top1 = validate(task.get_eval_model(), test_loader)
        line = f"{args.method}: test top-1 {top1:.2f}"
        if task.has_ema():
            top1 = validate(task.get_eval_model(ema=True), test_loader)  # the EMA weights decide the checkpoint
            line += f", EMA test top-1 {top1:.2f}"
        print(f"{line} after {step} steps")
        if saver is not None:
            saver.save_checkpoint(epoch, metric=top1)


if __name__ == "__main__":
    main()
