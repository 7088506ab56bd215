"""Tied-Augment or AgMax as a LightningModule (needs ``pip install lightning``, or ``pytorch_lightning``).

    python examples/lightning_module.py --method agmax --steps 300 [--data-dir DIR_WITH_IDX_FILES]

The LightningModule owns the multi-view model and the loss: the loss is a submodule, so AgMax's Q head is
optimised by ``self.parameters()`` and saved in Lightning's checkpoints, while ``self.model.model`` stays a
plain timm model (what ``accord export`` writes).
"""

import argparse

import torch
from torch.utils.data import DataLoader

from accord.data import build_splits
from accord.losses import AgMaxLoss, TiedAugmentLoss
from accord.models import MultiViewModel, create_model
from accord.views import ViewDataset, build_eval_transform, build_multiview_transform, collate_views

try:
    import lightning as L
except ImportError:  # the older package name
    import pytorch_lightning as L

VIEWS = {"agmax": ["crop-flip", "crop-flip"], "tied": ["crop-flip", "crop-flip-randaug_2_14-cutout"]}


class AgreementModule(L.LightningModule):
    """Two augmented views per image, one forward pass, CE + the method's agreement term."""

    def __init__(self, method: str, model: str, num_classes: int, in_chans: int, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = MultiViewModel(create_model(model, num_classes, in_chans), num_views=2)
        self.criterion = AgMaxLoss(num_classes) if method == "agmax" else TiedAugmentLoss(weight=1.0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch  # images: (2B, C, H, W), view-major
        out = self.model(images)
        terms = self.criterion(out.logits, labels, out.features)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True)
        return terms["loss"]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch  # eval mode: the plain classifier's logits
        top1 = (self.model(images).argmax(1) == labels).float().mean() * 100
        self.log("val/top1", top1, batch_size=len(labels))  # epoch mean, weighted by batch size

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", help="Fashion-MNIST idx files (default: Debian's dataset-fashion-mnist)")
    parser.add_argument("--method", choices=sorted(VIEWS), default="tied")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    L.seed_everything(0)

    splits = build_splits("fashion_mnist", args.data_dir, val_fraction=0.0)
    info = splits.info
    train = ViewDataset(splits.train, build_multiview_transform(VIEWS[args.method], info))
    test = ViewDataset(splits.test, build_eval_transform(info))
    module = AgreementModule(args.method, "ResNet8", info.num_classes, info.in_chans)
    trainer = L.Trainer(
        max_steps=args.steps,
        accelerator="auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, DataLoader(train, args.batch_size, shuffle=True, drop_last=True, collate_fn=collate_views))
    (result,) = trainer.validate(module, DataLoader(test, 500, collate_fn=collate_views), verbose=False)
    print(f"{args.method}: test top-1 {result['val/top1']:.2f} after {args.steps} steps")


if __name__ == "__main__":
    main()
