"""``accord export --format hf``: a folder plain timm loads by itself and predicts with exactly as accord evaluates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import QUICK

from accord.cli import main
from accord.config import load_config
from accord.engine import fit, load_checkpoint
from accord.engine.restore import load_eval_model
from accord.views import build_eval_transform

TINY = {**QUICK, "batch_size": 8, "lr_batch": 8, "epochs": 1}

#: Loads every export folder given with timm alone (accord is never imported) and prints each image's logits.
PLAIN_TIMM = """
import json, sys
import timm, timm.data, torch
from PIL import Image
folders, images = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for folder in folders:
    model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**cfg)
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in images])
    with torch.no_grad():
        out[folder] = {"logits": model(x).tolist(), "cfg": {k: cfg[k] for k in ("crop_pct", "interpolation")},
                       "labels": model.pretrained_cfg.get("label_names")}
assert "accord" not in sys.modules
print(json.dumps(out))
"""

#: Evaluation crops the export must carry to timm: the default, and others (bicubic and nearest resize with PIL).
CROPS = [(0.875, "bilinear"), (1.0, "bicubic"), (0.6, "nearest")]


@pytest.fixture(scope="module")
def resnet_run(imagefolder_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """timm's ResNet-18 trained one epoch on a generated image folder of 40-px PNGs, at image_size 32."""
    out = tmp_path_factory.mktemp("hf_run")
    overrides = {**TINY, "model": "resnet18", "dataset": "imagefolder", "data_dir": str(imagefolder_dir)}
    fit(load_config("FashionMNIST-ResNet8-standard", {**overrides, "image_size": 32}), out / "run", log=lambda _: None)
    return out / "run"


def with_crop(run: Path, crop_pct: float, interpolation: str, folder: Path) -> Path:
    """The run's best checkpoint with another evaluation crop in its config (the weights unchanged)."""
    ckpt = load_checkpoint(run / "checkpoint-best.pt")
    ckpt["config"] = {**ckpt["config"], "crop_pct": crop_pct, "interpolation": interpolation}
    path = folder / f"crop-{crop_pct}-{interpolation}.pt"
    torch.save(ckpt, path)
    return path


@torch.no_grad()
def accord_eval_logits(checkpoint: Path) -> tuple[torch.Tensor, list[str], list[str]]:
    """The logits ``accord eval`` computes for each test image (its model, transform and images), the image
    paths, and the class folder names."""
    model, _, splits, _ = load_eval_model(checkpoint, device=torch.device("cpu"))
    transform = build_eval_transform(splits.info)
    images = [transform(splits.test[i][0]) for i in range(len(splits.test))]
    paths = [path for path, _ in splits.test.samples]
    return model.eval()(torch.stack(images)), paths, list(splits.test.classes)


def test_plain_timm_predicts_every_image_as_accord_eval(resnet_run, tmp_path):
    exports, expected = [], {}
    for crop_pct, interpolation in CROPS:
        checkpoint = with_crop(resnet_run, crop_pct, interpolation, tmp_path)
        folder = tmp_path / f"export-{interpolation}"  # no suffix: a folder
        assert main(["export", str(checkpoint), "--out", str(folder)]) == 0
        assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
        exports.append(str(folder))
        expected[str(folder)] = (crop_pct, interpolation, *accord_eval_logits(checkpoint))
    paths = expected[exports[0]][3]
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_TIMM, json.dumps(exports), json.dumps(paths)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for folder in exports:
        crop_pct, interpolation, logits, _, classes = expected[folder]
        theirs = torch.tensor(got[folder]["logits"])
        assert got[folder]["cfg"] == {"crop_pct": crop_pct, "interpolation": interpolation}
        assert got[folder]["labels"] == classes == ["class0", "class1", "class2"]
        assert torch.equal(theirs.argmax(1), logits.argmax(1)), folder  # every prediction
        # bilinear: torchvision's uint8 kernel vs PIL's, within 2 grey levels; bicubic and nearest: PIL both
        bound = 0.01 if interpolation == "bilinear" else 1e-5
        assert (theirs.softmax(1) - logits.softmax(1)).abs().max() <= bound, folder


def test_export_folder_config_and_modes(resnet_run, tmp_path):
    old = os.umask(0o027)
    try:
        assert main(["export", str(resnet_run), "--out", str(tmp_path / "m"), "--format", "hf"]) == 0
        assert main(["export", str(resnet_run), "--out", str(tmp_path / "m.safetensors")]) == 0
    finally:
        os.umask(old)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert (config["architecture"], config["num_classes"]) == ("resnet18", 3)
    pretrained = config["pretrained_cfg"]
    assert pretrained["input_size"] == [3, 32, 32] and pretrained["crop_pct"] == 0.875
    assert pretrained["mean"] == [0.485, 0.456, 0.406] and pretrained["interpolation"] == "bilinear"
    assert config["accord"]["method"] == "ce" and "requires" not in config["accord"]
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o750
    for path in (tmp_path / "m" / "config.json", tmp_path / "m" / "model.safetensors", tmp_path / "m.safetensors"):
        assert path.stat().st_mode & 0o777 == 0o640, path


def test_export_folder_replaces_only_accords_own(resnet_run, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["export", str(resnet_run), "--out", str(out)]) == 0
    assert main(["export", str(resnet_run), "--out", str(out)]) == 2
    assert "already exists; use --overwrite" in capsys.readouterr().err
    assert main(["export", str(resnet_run), "--out", str(out), "--overwrite"]) == 0

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["export", str(resnet_run), "--out", str(mine), "--overwrite"]) == 2
    assert "not only an accord export" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]

    link = tmp_path / "link"
    link.symlink_to(out)
    assert main(["export", str(resnet_run), "--out", str(link), "--overwrite"]) == 2
    assert "is a symlink" in capsys.readouterr().err
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_cifar_export_folder_says_it_needs_accord(fmnist_dir, tmp_path, capsys, one_thread):
    cfg = load_config("FashionMNIST-ResNet8-standard", {**TINY, "data_dir": str(fmnist_dir), "train_subset": 64})
    fit(cfg, tmp_path / "run", log=lambda _: None)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m")]) == 0
    assert "note: loading it needs accord" in capsys.readouterr().out
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["accord"]["requires"].startswith("accord:") and config["label_names"][:2] == [
        "T-shirt/top",
        "Trouser",
    ]
    assert config["pretrained_cfg"]["input_size"] == [1, 28, 28] and config["pretrained_cfg"]["crop_pct"] == 1.0

    import timm

    from accord.models import cifar  # noqa: F401  (registers cifar_resnet8 with timm)

    model = timm.create_model(f"local-dir:{tmp_path / 'm'}", pretrained=True).eval()
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint-best.pt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ckpt["model"].items())
