"""A run knows its data: every data kind x every mutation of its classes or splits is refused by
``accord eval`` and ``accord train --resume``, naming the classes; the record travels to summary.json and
exports; the other ways a run could silently train or test on other data than it says are refused."""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import class_images, write_idx
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from accord.cli import main
from accord.config import load_config
from accord.data import DATASETS, build_splits
from accord.data.identity import DATA_KEY, FASHION_MNIST_CLASSES
from accord.engine import fit
from accord.engine.checkpoint import load_checkpoint, read_json, save_atomic

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny batches: one thread is the fastest
SMALL = {  # 1 epoch of a few steps on a few dozen images
    "batch_size": 8, "lr_batch": 8, "eval_batch_size": 100, "workers": 0, "log_interval": 1, "epochs": 1,
    "train_subset": None, "val_fraction": 0.2,
}  # fmt: skip


# -- the data kinds, written small on disk ------------------------------------------------------------------------


def make_fashion_mnist(root: Path, side: int = 28) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for split, n in (("train", 40), ("t10k", 20)):
        labels = np.arange(n) % 10
        write_idx(root / f"{split}-images-idx3-ubyte.gz", class_images(labels, side, 1, rng)[:, 0])
        write_idx(root / f"{split}-labels-idx1-ubyte.gz", labels)


CIFAR = {  # folder, batch files, label key, classes, meta file, meta key
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "labels", 10,
                "batches.meta", "label_names"),
    "cifar100": ("cifar-100-python", ["train"], "test", "fine_labels", 100, "meta", "fine_label_names"),
}  # fmt: skip


def make_cifar(name: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        folder, train_files, test_file, key, classes, meta, meta_key = CIFAR[name]
        rng = np.random.default_rng(2)
        (root / folder).mkdir(parents=True)
        for file in [*train_files, test_file]:
            labels = np.arange(classes) % classes
            data = class_images(labels, 32, 3, rng).reshape(classes, -1)
            (root / folder / file).write_bytes(pickle.dumps({"data": data, key: labels.tolist()}))
        (root / folder / meta).write_bytes(pickle.dumps({meta_key: [f"c{i}" for i in range(classes)]}))

    return make


def make_image_folder(root: Path) -> None:
    rng = np.random.default_rng(1)
    for split, n in (("train", 12), ("val", 4)):
        labels = np.repeat(np.arange(3), n)
        for i, (image, label) in enumerate(zip(class_images(labels, 32, 3, rng), labels, strict=True)):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")


def save_hf(root: Path, names: list[str], labels: dict[str, list[int]], images: dict[str, np.ndarray]) -> None:
    """A DatasetDict of ``images`` (uint8 (N, 3, H, W)) and ``labels`` per split, the ClassLabel named ``names``."""
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    splits = {
        split: datasets.Dataset.from_dict(
            {"image": [Image.fromarray(i.transpose(1, 2, 0)) for i in images[split]], "label": labels[split]},
            features=features,
        )
        for split in ("train", "test")
    }
    datasets.DatasetDict(splits).save_to_disk(str(root))


def make_hf_disk(root: Path) -> None:
    rng = np.random.default_rng(3)
    labels = {split: np.repeat(np.arange(3), n) for split, n in (("train", 12), ("test", 4))}
    images = {split: class_images(y, 32, 3, rng).astype(np.uint8) for split, y in labels.items()}
    save_hf(root, ["c0", "c1", "c2"], {s: y.tolist() for s, y in labels.items()}, images)


def _edit_hf(root: Path, names: Callable[[list[str]], list[str]], relabel: Callable[[int], int] = int) -> None:
    """Save the data set in ``root`` again with its class names and labels edited."""
    datasets = pytest.importorskip("datasets")
    saved = datasets.load_from_disk(str(root), keep_in_memory=True)
    old = saved["train"].features["label"].names
    images = {s: np.stack([np.asarray(i.convert("RGB")).transpose(2, 0, 1) for i in saved[s]["image"]]) for s in saved}
    labels = {s: [relabel(y) for y in saved[s]["label"]] for s in saved}
    shutil.rmtree(root)
    save_hf(root, names(list(old)), labels, images)


def _hf_link(root: Path, hard: bool) -> None:
    (test,), (train,) = (sorted((root / s).glob("*.arrow")) for s in ("test", "train"))
    shutil.copyfile(root / "train" / "state.json", root / "test" / "state.json")  # the split is the training one
    _link_files([(test, train)], hard)


KINDS: dict[str, Callable[[Path], None]] = {
    "fashion_mnist": make_fashion_mnist,
    "cifar10": make_cifar("cifar10"),
    "cifar100": make_cifar("cifar100"),
    "imagefolder": make_image_folder,
    "hf_disk": make_hf_disk,
}


def test_every_data_kind_is_generated():
    assert set(KINDS) == set(DATASETS)


# -- the mutations: each edits a copy of a data kind in place and says what the refusal names -----------------------


def _cifar_batches(root: Path, name: str) -> Iterator[Path]:
    folder, train_files, test_file, *_ = CIFAR[name]
    for file in [*train_files, test_file]:
        yield root / folder / file


def _relabel_cifar(root: Path, name: str, old: int, new: int) -> None:
    key = CIFAR[name][3]
    for path in _cifar_batches(root, name):
        batch = pickle.loads(path.read_bytes())
        batch[key] = [new if label == old else label for label in batch[key]]
        path.write_bytes(pickle.dumps(batch))


def _cifar_names(root: Path, name: str, edit: Callable[[list[str]], list[str]]) -> None:
    folder, *_, meta, meta_key = CIFAR[name]
    path = root / folder / meta
    path.write_bytes(pickle.dumps({meta_key: edit(pickle.loads(path.read_bytes())[meta_key])}))


def _link_files(pairs: list[tuple[Path, Path]], hard: bool) -> None:
    for test, train in pairs:
        test.unlink()
        os.link(train, test) if hard else test.symlink_to(train)


def _fmnist_pairs(root: Path) -> list[tuple[Path, Path]]:
    return [(root / f"t10k-{k}-ubyte.gz", root / f"train-{k}-ubyte.gz") for k in ("images-idx3", "labels-idx1")]


def _cifar_pairs(root: Path, name: str) -> list[tuple[Path, Path]]:
    folder, train_files, test_file, *_ = CIFAR[name]
    return [(root / folder / test_file, root / folder / train_files[0])]


def _fmnist_relabel(root: Path, old: int, new: int) -> None:
    for split in ("train", "t10k"):
        path = root / f"{split}-labels-idx1-ubyte.gz"
        from accord.data.idx import read_idx

        labels = read_idx(path).copy()
        labels[labels == old] = new
        write_idx(path, labels)


def _folder_classes(root: Path, edit: Callable[[Path], None]) -> None:
    for split in ("train", "val"):
        edit(root / split)


def _merge(split: Path) -> None:
    for file in (split / "class1").iterdir():
        file.rename(split / "class0" / f"merged-{file.name}")
    (split / "class1").rmdir()


def _folder_link(root: Path, hard: bool) -> None:
    shutil.rmtree(root / "val")
    if hard:
        shutil.copytree(root / "train", root / "val", copy_function=os.link)
    else:
        (root / "val").symlink_to("train")


#: (kind, mutation) -> (edit of the data root, what the refusal says). Fashion-MNIST's class names are its own,
#: not in its files: it cannot rename a class, and its label 10 is outside its classes.
MUTATIONS: dict[str, dict[str, tuple[Callable[[Path], None], list[str]]]] = {
    "imagefolder": {
        "renamed": (lambda r: _folder_classes(r, lambda s: (s / "class0").rename(s / "zclass0")),
                    ["classes", "missing 'class0'", "extra 'zclass0'"]),
        "merged": (lambda r: _folder_classes(r, _merge), ["missing 'class1'"]),
        "added": (lambda r: _folder_classes(r, lambda s: shutil.copytree(s / "class2", s / "class3")),
                  ["extra 'class3'"]),
        "symlinked": (lambda r: _folder_link(r, hard=False), ["val: ", "are training files"]),
        "hardlinked": (lambda r: _folder_link(r, hard=True), ["val: ", "are training files"]),
    },
    "fashion_mnist": {
        "merged": (lambda r: _fmnist_relabel(r, 9, 8), ["'Ankle boot' had images and have none now"]),
        "added": (lambda r: _fmnist_relabel(r, 9, 10), ["label 10", "outside the 10 classes"]),
        "symlinked": (lambda r: _link_files(_fmnist_pairs(r), hard=False), ["test split", "are training files"]),
        "hardlinked": (lambda r: _link_files(_fmnist_pairs(r), hard=True), ["test split", "are training files"]),
    },
    "hf_disk": {
        "renamed": (lambda r: _edit_hf(r, lambda c: ["zz", *c[1:]]), ["missing 'c0'", "extra 'zz'"]),
        "merged": (lambda r: _edit_hf(r, list, lambda y: 1 if y == 2 else y), ["'c2' had images and have none now"]),
        "added": (lambda r: _edit_hf(r, lambda c: [*c, "extra"]), ["extra 'extra'"]),
        "symlinked": (lambda r: _hf_link(r, hard=False), ["test split", "are training files"]),
        "hardlinked": (lambda r: _hf_link(r, hard=True), ["test split", "are training files"]),
    },
    **{
        name: {
            "renamed": (lambda r, n=name: _cifar_names(r, n, lambda c: ["zz", *c[1:]]), ["missing 'c0'", "extra 'zz'"]),
            "merged": (lambda r, n=name, k=classes: _relabel_cifar(r, n, k - 1, k - 2),
                       [f"'c{classes - 1}' had images and have none now"]),
            "added": (lambda r, n=name: _cifar_names(r, n, lambda c: [*c, "extra"]), ["extra 'extra'"]),
            "symlinked": (lambda r, n=name: _link_files(_cifar_pairs(r, n), hard=False), ["are training files"]),
            "hardlinked": (lambda r, n=name: _link_files(_cifar_pairs(r, n), hard=True), ["are training files"]),
        }
        for name, classes in (("cifar10", 10), ("cifar100", 100))
    },
}  # fmt: skip
CASES = [(kind, mutation) for kind, mutations in MUTATIONS.items() for mutation in mutations]


def test_every_kind_has_its_mutations():
    assert set(MUTATIONS) == set(KINDS)
    assert all({"merged", "added", "symlinked", "hardlinked"} <= set(m) for m in MUTATIONS.values())


# -- one tiny run of every kind ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _cifar_files_unchecked():
    """The small CIFAR files have other checksums than the real ones."""
    import torchvision.datasets.cifar as cifar

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
        yield


def kind_config(kind: str, data_dir: Path) -> dict:
    extra = {"image_size": 32} if kind in ("imagefolder", "hf_disk") else {}
    return load_config("FashionMNIST-ResNet8-standard", {**SMALL, "dataset": kind, "data_dir": str(data_dir), **extra})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, _cifar_files_unchecked) -> dict[str, tuple[Path, Path]]:
    """Per kind: (the run folder, the link its config names as data_dir), trained on the kind's data."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for kind, make in KINDS.items():
        make(root / f"{kind}-data")
        link = root / f"{kind}-link"
        link.symlink_to(root / f"{kind}-data")
        fit(kind_config(kind, link), root / f"{kind}-run", log=lambda _: None)
        out[kind] = (root / f"{kind}-run", link)
    return out


def mutated_copy(kind: str, mutation: str, runs: dict, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(os.path.realpath(runs[kind][1]), data, symlinks=True)
    MUTATIONS[kind][mutation][0](data)
    return data


def assert_one_line_naming(err: str, words: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.startswith("accord: error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], (word, err)


@pytest.mark.parametrize(("kind", "mutation"), CASES)
def test_eval_refuses_data_that_is_not_the_runs(kind, mutation, runs, tmp_path, capsys):
    data = mutated_copy(kind, mutation, runs, tmp_path)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(runs[kind][0] / "checkpoint-last.pt"), "--data-dir", str(data)]) == 2
    assert_one_line_naming(capsys.readouterr().err, MUTATIONS[kind][mutation][1])


@pytest.mark.parametrize(("kind", "mutation"), CASES)
def test_resume_refuses_data_that_is_not_the_runs(kind, mutation, runs, tmp_path, capsys):
    run, link = runs[kind]
    original = os.readlink(link)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    data = mutated_copy(kind, mutation, runs, tmp_path)
    link.unlink()
    link.symlink_to(data)  # the run's data_dir now holds the mutated data
    try:
        capsys.readouterr()
        assert main(["train", "--resume", str(copy), "--epochs", "2"]) == 2
        assert_one_line_naming(capsys.readouterr().err, MUTATIONS[kind][mutation][1])
    finally:
        link.unlink()
        link.symlink_to(original)
    assert load_checkpoint(copy / "checkpoint-last.pt")["epoch"] == 0  # nothing trained on the other data


# -- the record ---------------------------------------------------------------------------------------------------


def expected_names(kind: str) -> list[str]:
    return {
        "fashion_mnist": list(FASHION_MNIST_CLASSES),
        "cifar10": [f"c{i}" for i in range(10)],
        "cifar100": [f"c{i}" for i in range(100)],
        "imagefolder": ["class0", "class1", "class2"],
        "hf_disk": ["c0", "c1", "c2"],
    }[kind]


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_record_is_in_checkpoints_summary_and_export(kind, runs, tmp_path):
    from accord.export import export_checkpoint
    from accord.export.timm_format import read_metadata

    run = runs[kind][0]
    names = expected_names(kind)
    for file in ("checkpoint-last.pt", "checkpoint-best.pt"):
        record = load_checkpoint(run / file)[DATA_KEY]
        assert record["class_names"] == names and record["dataset"] == kind
    summary = read_json(run / "summary.json")
    assert summary["data"] == load_checkpoint(run / "checkpoint-last.pt")[DATA_KEY]
    sizes, sources = summary["data"]["sizes"], summary["data"]["sources"]
    assert sizes["train"] + sizes["val"] == sources["train"]["images"]  # the split the run used, and its source
    assert sizes["test"] == sources["test"]["images"] == sum(sources["test"]["per_class"])
    export_checkpoint(run, tmp_path / "model.safetensors")
    assert read_metadata(tmp_path / "model.safetensors")["label_names"] == names


@pytest.mark.parametrize("kind", list(KINDS))
def test_eval_of_the_same_data_passes_and_other_files_warn(kind, runs, tmp_path, capsys):
    ckpt = str(runs[kind][0] / "checkpoint-last.pt")
    assert main(["eval", "--checkpoint", ckpt]) == 0
    assert "warning" not in capsys.readouterr().err
    data = tmp_path / "data"
    KINDS[kind](data)
    if kind == "imagefolder":  # one more test image of a class it has
        shutil.copy(data / "val" / "class0" / "0.png", data / "val" / "class0" / "extra.png")
    else:
        _with_more_test_images(kind, data)
    assert main(["eval", "--checkpoint", ckpt, "--data-dir", str(data)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "other files than the run's in test" in warnings[0]


def _with_more_test_images(kind: str, root: Path) -> None:
    if kind == "hf_disk":  # one more test image of a class it has
        datasets = pytest.importorskip("datasets")
        saved = datasets.load_from_disk(str(root), keep_in_memory=True)
        test = datasets.concatenate_datasets([saved["test"], saved["test"].select([0])])
        shutil.rmtree(root)
        datasets.DatasetDict({"train": saved["train"], "test": test}).save_to_disk(str(root))
        return
    if kind == "fashion_mnist":
        labels = np.arange(30) % 10
        write_idx(root / "t10k-images-idx3-ubyte.gz", class_images(labels, 28, 1, np.random.default_rng(5))[:, 0])
        write_idx(root / "t10k-labels-idx1-ubyte.gz", labels)
        return
    folder, _, test_file, key, classes, *_ = CIFAR[kind]
    labels = np.arange(2 * classes) % classes
    data = class_images(labels, 32, 3, np.random.default_rng(5)).reshape(len(labels), -1)
    (root / folder / test_file).write_bytes(pickle.dumps({"data": data, key: labels.tolist()}))


def test_a_checkpoint_without_a_record_still_evaluates(runs, tmp_path, capsys):
    ckpt = load_checkpoint(runs["imagefolder"][0] / "checkpoint-last.pt")
    del ckpt[DATA_KEY]  # a run from before records were kept
    save_atomic(ckpt, tmp_path / "old.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "old.pt")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_eval_per_class_names_every_class(runs, capsys):
    assert main(["eval", "--checkpoint", str(runs["imagefolder"][0] / "checkpoint-last.pt"), "--per-class"]) == 0
    printed = capsys.readouterr()
    out = printed.out + printed.err
    rows = [line for line in out.splitlines() if line.startswith("| class")]
    assert [row.split("|")[1].strip() for row in rows] == ["class", "class0", "class1", "class2"]
    assert all(row.split("|")[3].strip() == "4" for row in rows[1:])


def test_eval_per_class_json_sums_to_the_top1(runs, capsys):
    ckpt = str(runs["fashion_mnist"][0] / "checkpoint-last.pt")
    assert main(["eval", "--checkpoint", ckpt, "--per-class", "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    rows = result["per_class"]
    assert [r["class"] for r in rows] == list(FASHION_MNIST_CLASSES)
    assert sum(r["n"] for r in rows) == result["n"]
    hits = sum(r["top1"] * r["n"] / 100 for r in rows)
    assert abs(100 * hits / result["n"] - result["clean"]["top1"]) < 1e-9


# -- the data folder: absolute, and overridden by eval --data-dir --------------------------------------------------


def test_a_relative_data_dir_is_stored_absolute(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)
    cfg = kind_config("imagefolder", Path("mine"))
    assert cfg.data.data_dir == str(tmp_path / "mine")


def test_eval_data_dir_overrides_the_stored_one(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["imagefolder"][0], run)
    moved = tmp_path / "moved"
    shutil.copytree(os.path.realpath(runs["imagefolder"][1]), moved)
    ckpt = load_checkpoint(run / "checkpoint-last.pt")
    ckpt["config"]["data_dir"] = str(tmp_path / "gone")  # the folder it trained on is no longer there
    save_atomic(ckpt, run / "checkpoint-last.pt")
    assert main(["eval", "--checkpoint", str(run / "checkpoint-last.pt")]) == 2
    assert "gone" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(run / "checkpoint-last.pt"), "--data-dir", str(moved)]) == 0
    assert "warning" not in capsys.readouterr().err


# -- messages that name the thing ----------------------------------------------------------------------------------


def test_eval_on_another_data_set_names_it(runs, tmp_path, capsys):
    make_fashion_mnist(tmp_path / "fm")
    ckpt = str(runs["imagefolder"][0] / "checkpoint-last.pt")
    assert main(["eval", "--checkpoint", ckpt, "--dataset", "fashion_mnist", "--data-dir", str(tmp_path / "fm")]) == 2
    err = capsys.readouterr().err
    assert "fashion_mnist" in err and "image_size" not in err
    assert_one_line_naming(err, ["imagefolder", "'class0'", "'T-shirt/top'"])


def _commands_with(flag: str) -> list[str]:
    from accord.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return [name for name, p in sub.choices.items() if any(flag in a.option_strings for a in p._actions)]


@pytest.mark.parametrize("command", _commands_with("--seed"))
@pytest.mark.parametrize("seed", ["18446744073709551616", "-1", str(2**32)])
def test_a_seed_out_of_range_names_the_key(command, seed, runs, capsys):
    args = [command, f"--seed={seed}"]
    if command == "eval":
        args += ["--checkpoint", str(runs["imagefolder"][0] / "checkpoint-last.pt")]
    try:
        code = main(args)
    except SystemExit as e:  # argparse's refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "seed" in err[-1] and "2**32" in err[-1] and "Traceback" not in "\n".join(err)


def test_train_and_val_with_other_class_folders_name_them(tmp_path):
    make_image_folder(tmp_path)
    (tmp_path / "val" / "class2").rename(tmp_path / "val" / "other")
    with pytest.raises(ValueError, match=r"only in train/: 'class2'; only in val/: 'other'"):
        build_splits("imagefolder", tmp_path, image_size=32)


@pytest.mark.parametrize("val_source", ["split", "folder"])
@pytest.mark.parametrize("hard", [False, True])
def test_a_val_folder_of_training_files_is_refused_whatever_selects(val_source, hard, tmp_path):
    make_image_folder(tmp_path)
    _folder_link(tmp_path, hard)
    with pytest.raises(ValueError, match="36 of its 36 files are training files"):
        build_splits("imagefolder", tmp_path, image_size=32, val_source=val_source)


def test_one_shared_file_is_enough(tmp_path):
    make_image_folder(tmp_path)
    shared = tmp_path / "val" / "class1" / "4.png"
    shared.unlink()
    os.link(tmp_path / "train" / "class1" / "20.png", shared)
    with pytest.raises(ValueError, match=r"1 of its 12 files are training files \(.*4.png is .*20.png"):
        build_splits("imagefolder", tmp_path, image_size=32)


def test_a_train_subset_larger_than_the_split_is_refused(runs, tmp_path, capsys):
    data = os.path.realpath(runs["imagefolder"][1])  # 36 training images
    args = ["train", "--dataset", "imagefolder", "--data-dir", data, "--set", "image_size=32",
            "--set", "batch_size=8", "--set", "lr_batch=8", "--train-subset", "100000",
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == 2
    assert_one_line_naming(capsys.readouterr().err, ["train_subset 100000 is more than the", "training images"])
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("method", sorted(__import__("accord.losses.registry").losses.registry.METHODS))
def test_one_class_is_refused_for_every_method(method, tmp_path):
    from accord.config import config_name
    from accord.engine import build_run

    make_image_folder(tmp_path)
    for split in ("train", "val"):
        for name in ("class1", "class2"):
            shutil.rmtree(tmp_path / split / name)
    cfg = load_config(config_name("FashionMNIST-ResNet8", "standard", method), {
        **SMALL, "dataset": "imagefolder", "data_dir": str(tmp_path), "image_size": 32})  # fmt: skip
    with pytest.raises(ValueError, match=r"train: one class \('class0'\); a classifier needs at least 2 classes"):
        build_run(cfg)


def test_fashion_mnist_of_other_sized_images_is_refused(tmp_path):
    make_fashion_mnist(tmp_path / "fm", side=32)
    with pytest.raises(
        ValueError, match=r"train-images-idx3-ubyte.gz: fashion_mnist images are 28x28 px, these are 32x32"
    ):
        build_splits("fashion_mnist", tmp_path / "fm")


def test_the_fingerprint_follows_the_files_not_their_place(tmp_path):
    make_image_folder(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    a, b = (build_splits("imagefolder", tmp_path / n, image_size=32).identity for n in ("a", "b"))
    assert a == b
    (tmp_path / "b" / "train" / "class0" / "0.png").write_bytes(b"\x89PNG" + bytes(10))  # unreadable: dropped
    c = build_splits("imagefolder", tmp_path / "b", image_size=32).identity
    assert c["sources"]["train"]["fingerprint"] != a["sources"]["train"]["fingerprint"]
    assert c["sources"]["test"] == a["sources"]["test"]
    assert torch.equal(torch.tensor(c["sources"]["train"]["per_class"]), torch.tensor([11, 12, 12]))


_NAMES = st.lists(st.text("abcxyz/ '", min_size=1, max_size=4), unique=True, min_size=2, max_size=5)


@given(before=_NAMES, after=_NAMES)
@settings(max_examples=200, deadline=None)
def test_any_other_class_list_is_refused_naming_every_class_that_differs(before, after):
    from accord.data.identity import DataMismatchError, check_data, class_difference

    record = {"dataset": "imagefolder", "class_names": before, "sources": {}}
    current = {"dataset": "imagefolder", "class_names": after, "sources": {}}
    if before == after:
        check_data(record, current, "ckpt")
        assert class_difference(before, after) == ""
        return
    with pytest.raises(DataMismatchError) as caught:
        check_data(record, current, "ckpt")
    message = str(caught.value)
    assert "\n" not in message
    for name in set(before) ^ set(after):
        assert repr(name) in message
    if set(before) == set(after):
        assert "another order" in message
