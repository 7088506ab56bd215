"""Tied-Augment or AgMax in a plain PyTorch training loop on Fashion-MNIST, with accord's public API.

python examples/plain_loop.py --method tied --steps 300 [--data-dir DIR_WITH_IDX_FILES]
"""

import argparse

import torch
from torch.utils.data import DataLoader

from accord.data import build_splits
from accord.losses import AgMaxLoss, TiedAugmentLoss
from accord.models import MultiViewModel, create_model
from accord.views import ViewDataset, build_eval_transform, build_multiview_transform, collate_views

# Two views per image: AgMax augments both the same way; Tied-Augment pairs a light and a strong view.
VIEWS = {"agmax": ["crop-flip", "crop-flip"], "tied": ["crop-flip", "crop-flip-randaug_2_14-cutout"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="Fashion-MNIST idx files (default: Debian's dataset-fashion-mnist)")
    parser.add_argument("--method", choices=sorted(VIEWS), default="tied")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)

    splits = build_splits("fashion_mnist", args.data_dir, val_fraction=0.0)
    info = splits.info
    train = ViewDataset(splits.train, build_multiview_transform(VIEWS[args.method], info))
    loader = DataLoader(train, args.batch_size, shuffle=True, drop_last=True, collate_fn=collate_views)

    model = MultiViewModel(create_model("ResNet8", info.num_classes, info.in_chans), num_views=2)
    if args.method == "agmax":
        criterion = AgMaxLoss(info.num_classes)  # owns the Q head: optimise its parameters too
    else:
        criterion = TiedAugmentLoss(weight=1.0)
    params = [*model.parameters(), *criterion.parameters()]
    optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)

    model.train()
    step = 0
    while step < args.steps:
        for images, labels in loader:  # images: (2B, C, H, W), view 1 in rows [0, B), view 2 in [B, 2B)
            out = model(images)  # ViewOutput(logits, pooled features)
            terms = criterion(out.logits, labels, out.features)
            optimizer.zero_grad()
            terms["loss"].backward()
            optimizer.step()
            step += 1
            if step % 50 == 0 or step == args.steps:
                print(f"step {step}: " + " ".join(f"{k} {v.item():.3f}" for k, v in terms.items()))
            if step == args.steps:
                break

    model.eval()  # evaluation: the plain classifier (no Q head), one view
    test = DataLoader(ViewDataset(splits.test, build_eval_transform(info)), 500, collate_fn=collate_views)
    with torch.no_grad():
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in test)
    print(f"{args.method}: test top-1 {100.0 * correct / len(splits.test):.2f} after {args.steps} steps")


if __name__ == "__main__":
    main()
