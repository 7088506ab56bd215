"""``accord predict``: top-k names and probabilities from a run, a checkpoint or an export folder, as accord eval."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
import torch

from accord.cli import main
from accord.config import load_config
from accord.engine import fit, load_checkpoint
from accord.engine.restore import load_eval_model
from accord.evaluation.predict import image_paths, load_predictor, predict
from accord.export.labels import class_names
from accord.views import build_eval_transform

TINY = {"batch_size": 8, "lr_batch": 8, "eval_batch_size": 100, "workers": 0, "epochs": 1}


@pytest.fixture(scope="module")
def folder_run(imagefolder_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """ResNet-8 trained one epoch on the generated 40-px image folder at image_size 32, bicubic evaluation."""
    out = tmp_path_factory.mktemp("predict") / "run"
    overrides = {**TINY, "dataset": "imagefolder", "data_dir": str(imagefolder_dir), "image_size": 32}
    fit(
        load_config("FashionMNIST-ResNet8-standard", {**overrides, "interpolation": "bicubic"}), out, log=lambda _: None
    )
    return out


@torch.no_grad()
def eval_probabilities(checkpoint: Path) -> tuple[list[str], torch.Tensor]:
    """The test images of a checkpoint's data set and the probabilities accord eval's model and transform give."""
    model, _, splits, _ = load_eval_model(checkpoint, device=torch.device("cpu"))
    transform = build_eval_transform(splits.info)
    x = torch.stack([transform(splits.test[i][0]) for i in range(len(splits.test))])
    return [p for p, _ in splits.test.samples], model.eval()(x).softmax(1)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_run_checkpoint_and_export_predict_as_accord_eval(folder_run, imagefolder_dir, tmp_path):
    paths, expected = eval_probabilities(folder_run / "checkpoint-best.pt")
    assert main(["export", str(folder_run), "--out", str(tmp_path / "export")]) == 0
    sources = [folder_run, folder_run / "checkpoint-best.pt", tmp_path / "export"]
    names = ["class0", "class1", "class2"]
    for source in sources:
        out = tmp_path / f"{source.name}.csv"
        assert main(["predict", str(source), str(imagefolder_dir / "val"), "--top-k", "2", "--out", str(out)]) == 0
        rows = read_csv(out)
        assert [row["image"] for row in rows] == paths
        assert list(rows[0]) == ["image", "class_1", "probability_1", "class_2", "probability_2"]
        for row, p in zip(rows, expected, strict=True):
            top = p.topk(2)
            assert [row["class_1"], row["class_2"]] == [names[i] for i in top.indices.tolist()], source
            got = torch.tensor([float(row["probability_1"]), float(row["probability_2"])])
            assert torch.allclose(got, top.values, atol=2e-6), source  # CSV keeps 6 decimals


def test_table_on_stdout_and_top_k_bounded_by_the_classes(folder_run, imagefolder_dir, capsys):
    image = sorted((imagefolder_dir / "val" / "class1").iterdir())[0]
    assert main(["predict", str(folder_run), str(image), "--top-k", "10"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(image)) and line.count("%") == 3  # every class, no more


def test_class_names_recorded_in_the_checkpoint_come_first(folder_run, tmp_path):
    ckpt = load_checkpoint(folder_run / "checkpoint-best.pt")
    assert class_names(ckpt, 3) == ["class0", "class1", "class2"]  # the image folder's train/ class folders
    named = {**ckpt, "data": {"class_names": ["cat", "dog", "fox"]}}
    assert class_names(named, 3) == ["cat", "dog", "fox"]
    assert class_names({**named, "data": {"class_names": ["cat"]}}, 3) == ["class0", "class1", "class2"]
    unrecorded = {k: v for k, v in ckpt.items() if k != "data"}  # a run from before the data record
    gone = {**unrecorded, "config": {**ckpt["config"], "data_dir": str(tmp_path / "moved")}}
    assert class_names(gone, 3) == ["class_0", "class_1", "class_2"]
    assert class_names({"config": {"dataset": "cifar10"}}, 10)[:2] == ["airplane", "automobile"]
    torch.save(named, tmp_path / "named.pt")
    assert load_predictor(tmp_path / "named.pt").class_names == ["cat", "dog", "fox"]


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_symlink(path: Path) -> None:
    (path.parent / "target.csv").write_text("the user's file\n")
    path.symlink_to(path.parent / "target.csv")


def make_file(path: Path) -> None:
    path.write_text("the user's file\n")


@pytest.mark.parametrize(
    ("make", "message"),
    [(make_file, "already exists; use --overwrite"), (make_symlink, "is a symlink"), (make_fifo, "is a FIFO")],
)
def test_csv_never_replaces_what_it_must_not(folder_run, imagefolder_dir, tmp_path, capsys, make, message):
    out = tmp_path / "p.csv"
    make(out)
    before = sorted((p.name, p.is_symlink()) for p in tmp_path.iterdir())
    assert main(["predict", str(folder_run), str(imagefolder_dir / "val"), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert sorted((p.name, p.is_symlink()) for p in tmp_path.iterdir()) == before
    if make is make_file:
        assert main(["predict", str(folder_run), str(imagefolder_dir / "val"), "--out", str(out), "--overwrite"]) == 0
        assert len(read_csv(out)) == 9


def test_bad_inputs_are_one_line(folder_run, imagefolder_dir, tmp_path, capsys):
    assert main(["predict", str(folder_run), str(tmp_path / "nothing.png")]) == 2
    assert "nothing.png: no such image file or folder" in capsys.readouterr().err
    assert main(["predict", str(folder_run), str(imagefolder_dir / "val"), "--top-k", "0"]) == 2
    assert "--top-k must be positive" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "norun"), str(imagefolder_dir / "val")]) == 2
    assert "no such run folder, checkpoint or export folder" in capsys.readouterr().err


def test_unreadable_image_is_skipped_with_a_warning(folder_run, imagefolder_dir, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    good = sorted((imagefolder_dir / "val" / "class0").iterdir())[0]
    predictions = predict(load_predictor(folder_run), image_paths([broken, good]), top_k=1)
    assert [p.image for p in predictions] == [str(good)]
    assert f"skipping {broken}: unreadable image" in capsys.readouterr().err
