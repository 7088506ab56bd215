"""Export to timm safetensors and import of the AgMax release's checkpoint layout."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file
from tiny_runs import QUICK

from accord.cli import main
from accord.config import load_config
from accord.data import build_splits
from accord.engine import fit, load_checkpoint
from accord.export import (
    ExportError,
    agmax_to_timm,
    export_checkpoint,
    import_agmax,
    load_exported,
    read_metadata,
    timm_overlay,
)
from accord.models import MultiViewModel, create_model

TINY = {
    **QUICK,
    "epochs": 1,
    "train_subset": 128,
}  # 4 steps: enough to move BatchNorm statistics and weights away from their init


def accord_logits(checkpoint: Path, x: torch.Tensor) -> torch.Tensor:
    """The evaluation logits of an accord checkpoint, through accord's own wrapper (split BN included)."""
    ckpt = load_checkpoint(checkpoint)
    cfg = ckpt["config"]
    num_classes, in_chans = ckpt["model"]["fc.weight"].shape[0], x.shape[1]
    model = MultiViewModel(create_model(cfg["model"], num_classes, in_chans), cfg["num_views"], cfg["bn"])
    model.model.load_state_dict(ckpt["model"])
    return model.eval()(x)


@pytest.fixture(scope="module")
def agmax_split_bn_run(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """One epoch of AgMax with split BatchNorm on ResNet-8 (a CIFAR model) on the Fashion-MNIST fixture."""
    out = tmp_path_factory.mktemp("agmax_run")
    cfg = load_config("FashionMNIST-ResNet8-standard-agmax", {**TINY, "data_dir": str(fmnist_dir), "bn": "split"})
    fit(cfg, out, log=lambda _: None)
    return out


@torch.no_grad()
def test_export_cifar_model_gives_the_same_logits_in_plain_timm(agmax_split_bn_run, fmnist_dir, tmp_path, one_thread):
    out = tmp_path / "model.safetensors"
    meta = export_checkpoint(agmax_split_bn_run, out)
    ckpt = load_checkpoint(agmax_split_bn_run / "checkpoint-best.pt")
    assert any(".aux_bn." in k for k in ckpt["model"]), "split BN should have auxiliary layers in training"
    state = load_file(str(out))
    assert not any("aux_bn" in k or "q_head" in k for k in state)
    assert set(state) == {k for k in ckpt["model"] if ".aux_bn." not in k}

    info = build_splits("fashion_mnist", fmnist_dir, 0.0).info
    assert read_metadata(out) == {**meta, "format": "pt"}
    assert meta["architecture"] == "cifar_resnet8" and (meta["num_classes"], meta["in_chans"]) == (10, 1)
    assert meta["mean"] == list(info.mean) and meta["std"] == list(info.std) and meta["input_size"] == [1, 28, 28]
    assert meta["method"] == "agmax" and meta["epoch"] == 1

    # plain timm: only registering the CIFAR models is needed from accord (done by importing accord.models.cifar)
    net = timm.create_model("cifar_resnet8", num_classes=10, in_chans=1)
    net.load_state_dict(state)
    x = torch.randn(8, 1, 28, 28)
    expected = accord_logits(agmax_split_bn_run / "checkpoint-best.pt", x)
    assert torch.allclose(net.eval()(x), expected, atol=1e-6)
    assert torch.allclose(load_exported(out)(x), expected, atol=1e-6)


def test_export_timm_model_loads_with_timm_pretrained_file(imagefolder_dir, tmp_path, one_thread):
    """A timm model (ResNet-10-T, split BN, Tied-Augment) trained on an image folder, loaded by timm's own
    pretrained-weights path: ``pretrained=True, pretrained_cfg_overlay=dict(file=...)``, offline."""
    overrides = {
        **TINY,
        "batch_size": 8,
        "lr_batch": 8,
        "model": "resnet10t",
        "image_size": 32,
        "bn": "split",
        "train_subset": None,
    }
    cfg = load_config("ResNet50-standard-tied", {**overrides, "data_dir": str(imagefolder_dir), "epochs": 1})
    fit(cfg, tmp_path / "run", log=lambda _: None)
    out = tmp_path / "resnet10t.safetensors"
    assert main(["export", str(tmp_path / "run"), "--out", str(out)]) == 0

    meta = read_metadata(out)
    assert (meta["architecture"], meta["num_classes"], meta["in_chans"]) == ("resnet10t", 3, 3)
    assert meta["input_size"] == [3, 32, 32] and meta["crop_pct"] == 0.875 and meta["interpolation"] == "bilinear"
    assert meta["mean"] == [0.485, 0.456, 0.406] and meta["std"] == [0.229, 0.224, 0.225]
    overlay = dict(file=str(out), num_classes=3)  # without num_classes timm drops a non-1000-class head
    net = timm.create_model("resnet10t", num_classes=3, pretrained=True, pretrained_cfg_overlay=overlay)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        expected = accord_logits(tmp_path / "run" / "checkpoint-best.pt", x)
        assert torch.allclose(net.eval()(x), expected, atol=1e-5)
    # the metadata overlay also gives timm the data config accord evaluated with
    net = timm.create_model("resnet10t", num_classes=3, pretrained=True, pretrained_cfg_overlay=timm_overlay(out))
    data_cfg = timm.data.resolve_data_config(model=net)
    assert data_cfg["input_size"] == (3, 32, 32) and data_cfg["crop_pct"] == 0.875
    assert data_cfg["mean"] == (0.485, 0.456, 0.406)


@torch.no_grad()
def test_export_one_channel_timm_model_through_timm_pretrained_path(tmp_path, one_thread):
    """A checkpoint laid out as trainer.py writes it (no training): a 1-channel timm model survives timm's
    input-conv adaptation on load (it sums over the single input channel)."""
    torch.manual_seed(0)
    model = MultiViewModel(create_model("resnet10t", num_classes=10, in_chans=1), num_views=2)
    cfg = load_config("FashionMNIST-ResNet8-standard-tied", {"model": "resnet10t"})
    torch.save({"model": model.model.state_dict(), "config": cfg.as_flat(), "epoch": 4}, tmp_path / "ckpt.pt")
    out = tmp_path / "m.safetensors"
    meta = export_checkpoint(tmp_path / "ckpt.pt", out)
    assert (meta["in_chans"], meta["epoch"], meta["crop_pct"]) == (1, 5, 1.0)
    net = timm.create_model(
        "resnet10t", num_classes=10, in_chans=1, pretrained=True, pretrained_cfg_overlay=timm_overlay(out)
    )
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(net.eval()(x), model.eval()(x), atol=1e-6)


def test_export_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "no checkpoint-best.pt or checkpoint-last.pt" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["export", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "cannot load checkpoint" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- AgMax import


@pytest.fixture(scope="module")
def resnet50_3() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("resnet50", num_classes=3).eval()


def agmax_layout(state: dict[str, torch.Tensor], agmax: bool = True) -> dict[str, torch.Tensor]:
    """A timm ResNet state dict in the AgMax code's layout: ``nn.DataParallel(AgMaxNet(Backbone(ResNet)))``
    (``module.backbone.feature_extractor.*``, ``module.backbone.classifier.*``, ``module.qnet.model.*``), or
    ``nn.DataParallel(Backbone(ResNet))`` for their non-AgMax baselines."""
    prefix = "module.backbone." if agmax else "module."
    out = {}
    for key, value in state.items():
        inner = "classifier." + key[3:] if key.startswith("fc.") else "feature_extractor." + key
        out[prefix + inner] = value
    if agmax:
        n = state["fc.weight"].shape[0]
        q = torch.nn.Sequential(torch.nn.Linear(2 * n, 16), torch.nn.ReLU(), torch.nn.Linear(16, n))
        out.update({f"module.qnet.model.{k}": v for k, v in q.state_dict().items()})
    return out


def agmax_checkpoint(state: dict[str, torch.Tensor]) -> dict:
    """As ``Classifier.save_checkpoint`` writes it (MultiStepLR's state holds a ``collections.Counter``)."""
    return {
        "epoch": 90,
        "best_top1": 77.1,
        "best_top5": 93.4,
        "best_epoch": 88,
        "best_model": "imagenet-agmax-mi-ResNet50-77.1-mlp-4096.pth",
        "model_state_dict": state,
        "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 0.0001, "params": [0, 1]}]},
        "scheduler_state_dict": {"milestones": collections.Counter([30, 60, 80]), "gamma": 0.1, "last_epoch": 90},
    }


@pytest.mark.parametrize("agmax", [True, False], ids=["agmaxnet", "baseline"])
@pytest.mark.parametrize("wrapped", [True, False], ids=["checkpoint", "state_dict"])
def test_agmax_layout_maps_to_timm_keys(resnet50_3, agmax, wrapped):
    state = resnet50_3.state_dict()
    layout = agmax_layout(state, agmax)
    converted = agmax_to_timm(agmax_checkpoint(layout) if wrapped else layout)
    assert converted.keys() == state.keys()
    assert all(torch.equal(converted[k], state[k]) for k in state)


@pytest.mark.numerics
@torch.no_grad()
def test_import_agmax_to_safetensors_and_accord_eval(resnet50_3, imagefolder_dir, tmp_path, capsys, one_thread):
    """The converted weights give timm's ResNet-50 the same logits, and `accord eval` runs the .pt with the
    ImageNet protocol (resize 256, centre crop 224) on a 3-class image folder (the fake checkpoint has 3
    classes so that it fits the fixture; the real release has 1000 and needs ImageNet's val/ folder)."""
    src = tmp_path / "imagenet-agmax-mi-ResNet50-77.1-mlp-4096.pth"
    torch.save(agmax_checkpoint(agmax_layout(resnet50_3.state_dict())), src)

    out = tmp_path / "resnet50.safetensors"
    assert main(["import-agmax", str(src), "--arch", "resnet50", "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert (meta["architecture"], meta["num_classes"], meta["source"]) == ("resnet50", 3, "agmax")
    assert meta["agmax"] == {"epoch": 90, "best_top1": 77.1, "best_top5": 93.4} and meta["crop_pct"] == 224 / 256
    net = timm.create_model("resnet50", num_classes=3, pretrained=True, pretrained_cfg_overlay=timm_overlay(out))
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(net.eval()(x), resnet50_3(x), atol=1e-5)

    pt = tmp_path / "resnet50.pt"
    assert main(["import-agmax", str(src), "--arch", "resnet50", "--out", str(pt)]) == 0
    ckpt = load_checkpoint(pt)
    assert ckpt["config"]["name"] == "ResNet50-standard" and ckpt["config"]["image_size"] == 224
    assert ckpt["agmax"] == {"epoch": 90, "best_top1": 77.1, "best_top5": 93.4}
    # the same with a config file, as a user would pass one (here: no loader workers, for a quick test)
    (tmp_path / "r50.yaml").write_text("base: ResNet50-standard\nworkers: 0\n")
    assert (
        main(
            [
                "import-agmax",
                str(src),
                "--arch",
                "resnet50",
                "--out",
                str(pt),
                "--overwrite",
                "--config",
                str(tmp_path / "r50.yaml"),
            ]
        )
        == 0
    )
    assert load_checkpoint(pt)["config"]["image_size"] == 224
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(pt), "--data-dir", str(imagefolder_dir)]) == 0
    printed = capsys.readouterr().out
    assert "(9 images)" in printed
    # accord's eval inputs are torchvision's ImageNet eval transform on PIL images, within one level: Pillow's and
    # ATen's antialiased uint8 resize agree on the AVX2 path and are up to one level apart on others
    x_pil, x_accord, y = imagenet_eval_inputs(imagefolder_dir)
    torch.testing.assert_close(x_accord, x_pil, rtol=0, atol=1 / (255 * min(IMAGENET_STD)) + 1e-5)
    # and the printed top-1 is the model's on those inputs (same weights, images and batch: exact by construction)
    top1 = 100.0 * float((resnet50_3(x_accord).argmax(1) == y).float().mean())
    assert f"test top-1 {top1:.2f}" in printed


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def imagenet_eval_inputs(root: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The val images through torchvision's PIL ImageNet eval transform, through accord's tensor one, and labels."""
    from torchvision import datasets, transforms

    from accord.data import DataInfo
    from accord.data.datasets import decode_rgb
    from accord.views.policies import build_eval_transform

    tf = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    data = datasets.ImageFolder(str(root / "val"), transform=tf)
    ours = build_eval_transform(DataInfo("imagefolder", 3, 3, 224, IMAGENET_MEAN, IMAGENET_STD, fixed_size=False))
    x_pil = torch.stack([data[i][0] for i in range(len(data))])
    x_accord = torch.stack([ours(decode_rgb(path)) for path, _ in data.samples])
    return x_pil, x_accord, torch.tensor(data.targets)


def test_import_agmax_reports_mismatched_keys_and_unsafe_files(resnet50_3, tmp_path, capsys):
    src = tmp_path / "r50.pth"
    torch.save(agmax_checkpoint(agmax_layout(resnet50_3.state_dict())), src)
    with pytest.raises(ExportError, match=r"resnet101 \(3 classes\): missing 306 \(layer3\.10\.bn1\.bias"):
        import_agmax(src, "resnet101", tmp_path / "out.safetensors")
    extractor_only = {k: v for k, v in agmax_layout(resnet50_3.state_dict()).items() if "classifier" not in k}
    torch.save(extractor_only, src)
    with pytest.raises(ExportError, match=r"missing 2 \(fc.bias, fc.weight\)"):
        import_agmax(src, "resnet50", tmp_path / "out.safetensors")

    torch.save({"model_state_dict": {}, "args": Path("pickled")}, src)
    assert main(["import-agmax", str(src), "--arch", "resnet50", "--out", str(tmp_path / "o.pt")]) == 2
    assert "weights_only=True" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()
