"""The data set registry: every spec's facts drive resolution, views and evaluation; a Hugging Face data set saved
on disk (made here from generated images; nothing is downloaded) trains, evaluates, resumes exactly and exports."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from accord.cli import main
from accord.config import ConfigError, load_config
from accord.data import DataInfo, DatasetFacts, DatasetSpec, build_splits, dataset_names, dataset_spec
from accord.data.registry import REGISTRY
from accord.engine import fit, load_checkpoint
from accord.engine.runfiles import TIMING_KEYS
from accord.views import build_policy
from accord.views.eval_crop import eval_geometry

datasets = pytest.importorskip("datasets")

TINY = {"batch_size": 8, "lr_batch": 8, "eval_batch_size": 100, "workers": 0, "log_interval": 1}
NAMES = ["circle", "square", "stripe"]


def stripes(label: int, rng: np.random.Generator, side: int = 40) -> Image.Image:
    """A learnable 40-px image of class ``label``: stripes of period 2 + label, plus noise."""
    pixels = rng.integers(0, 60, (side, side, 3))
    pixels[(np.arange(side) % (2 + label)) == 0] += 180
    return Image.fromarray(pixels.astype(np.uint8))


def hf_dataset(n_train: int = 8, n_test: int = 3) -> object:
    """A DatasetDict of generated images: an Image feature and a ClassLabel feature named by :data:`NAMES`."""
    rng = np.random.default_rng(0)
    features = datasets.Features({"img": datasets.Image(), "kind": datasets.ClassLabel(names=NAMES)})
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = [i % 3 for i in range(3 * n)]
        rows = {"img": [stripes(label, rng) for label in labels], "kind": labels}
        splits[split] = datasets.Dataset.from_dict(rows, features=features)
    return datasets.DatasetDict(splits)


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hf") / "saved"
    hf_dataset().save_to_disk(str(out))
    return out


def test_saved_and_parquet_data_sets_load_the_same_images_and_names(hf_dir, tmp_path):
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for split, data in hf_dataset().items():
        data.to_parquet(str(parquet / f"{split}-00000-of-00001.parquet"))
    saved, from_parquet = (build_splits("hf_disk", d, 0.0, image_size=32) for d in (hf_dir, parquet))
    assert saved.info.num_classes == from_parquet.info.num_classes == 3
    assert saved.class_names == from_parquet.class_names == NAMES  # the ClassLabel feature's names, label order
    assert dataset_spec("hf_disk").class_names(hf_dir) == dataset_spec("hf_disk").class_names(parquet) == NAMES
    for a, b in ((saved.train, from_parquet.train), (saved.test, from_parquet.test)):
        assert len(a) == len(b) and all(torch.equal(a[i][0], b[i][0]) and a[i][1] == b[i][1] for i in range(len(a)))
    image, label = saved.test[4]
    assert image.dtype == torch.uint8 and image.shape == (3, 40, 40) and label == 1


def test_hf_data_set_errors_are_one_line(tmp_path):
    cases = [
        (None, "hf_disk needs --data-dir"),
        (tmp_path / "missing", "no such folder"),
        (tmp_path, "no dataset_dict.json (save_to_disk) and no train-*.parquet files"),
    ]
    only_train = tmp_path / "only_train"
    datasets.DatasetDict({"train": hf_dataset()["train"]}).save_to_disk(str(only_train))
    cases.append((only_train, "needs a train and a test (or validation) split; has train"))
    no_labels = tmp_path / "no_labels"
    datasets.DatasetDict(
        {s: d.cast_column("kind", datasets.Value("int64")) for s, d in hf_dataset().items()}
    ).save_to_disk(str(no_labels))
    cases.append((no_labels, "needs an Image feature and a ClassLabel feature; has img (Image), kind (Value)"))
    for data_dir, message in cases:
        with pytest.raises((ValueError, FileNotFoundError)) as info:
            build_splits("hf_disk", data_dir, 0.0)
        assert message in str(info.value) and "\n" not in str(info.value), data_dir


class Stop(Exception):
    pass


def metrics(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for r in records:  # timings differ between runs; everything else must not
        for key in TIMING_KEYS:
            r.pop(key, None)
    return records


def test_hf_data_set_trains_evaluates_resumes_exactly_and_exports(hf_dir, tmp_path, capsys, one_thread):
    overrides = {**TINY, "dataset": "hf_disk", "data_dir": str(hf_dir), "image_size": 32, "epochs": 2}
    cfg = load_config("FashionMNIST-ResNet8-standard-tied", overrides)
    assert cfg.name == "HF-ResNet8-standard-tied" and cfg.data.crop_pct == 0.875
    fit(cfg, tmp_path / "full", log=lambda _: None)

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, tmp_path / "cut", log=stop_after_first_epoch)
    fit(cfg, tmp_path / "cut", resume=True, log=lambda _: None)
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "full")
    full, cut = (load_checkpoint(tmp_path / r / "checkpoint-last.pt")["model"] for r in ("full", "cut"))
    assert all(torch.equal(full[k], cut[k]) for k in full)

    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(tmp_path / "full" / "checkpoint-last.pt")]) == 0
    assert "(9 images)" in capsys.readouterr().out
    assert main(["export", str(tmp_path / "full"), "--out", str(tmp_path / "export")]) == 0
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert config["label_names"] == NAMES and config["accord"]["dataset"] == "hf_disk"


# ------------------------------------------------------------------------------------------------ the registry


def toy_loader(data_dir: Path | None, image_size: int | None) -> object:
    from accord.data import Loaded, TensorImageDataset

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 24, 24), generator=g, dtype=torch.uint8)
    labels = torch.arange(40) % 4
    return Loaded(TensorImageDataset(images, labels), TensorImageDataset(images[:8], labels[:8]), 4, 3)


@pytest.fixture
def toy_spec():
    facts = DatasetFacts((0.5,) * 3, (0.25,) * 3, 24, fixed_size=True, train_crop="resized", autoaugment="svhn",
                         crop_pct=0.75, mixup_alpha=0.4, cutmix_prob=0.3)  # fmt: skip
    spec = DatasetSpec("toy24", toy_loader, facts, class_names=lambda _: ["a", "b", "c", "d"], label="Toy")
    from accord.data import register

    register(spec)
    yield spec
    del REGISTRY["toy24"]


def info_of(name: str, size: int | None = None) -> DataInfo:
    facts = dataset_spec(name).facts
    return DataInfo(name, 3, len(facts.mean), size or facts.image_size, facts.mean, facts.std, facts.fixed_size,
                    facts.crop_pct, train_crop=facts.train_crop, autoaugment=facts.autoaugment)  # fmt: skip


def test_every_registered_data_sets_facts_are_what_config_views_and_evaluation_use(toy_spec):
    for name in dataset_names():
        facts = dataset_spec(name).facts
        cfg = load_config("FashionMNIST-ResNet8-mixup", {"dataset": name, "image_size": facts.image_size})
        assert (cfg.data.crop_pct, cfg.views.mixup_alpha) == (facts.crop_pct, facts.mixup_alpha), name
        cutmix = load_config("FashionMNIST-ResNet8-cutmix", {"dataset": name, "image_size": facts.image_size})
        assert cutmix.views.mix_prob == facts.cutmix_prob, name
        info = info_of(name)
        crop = build_policy("crop-autoaug", info).transforms[1]
        assert isinstance(crop, v2.RandomCrop if facts.train_crop == "pad" else v2.RandomResizedCrop), name
        assert build_policy("crop-autoaug", info).transforms[2].policy.value == facts.autoaugment, name
        resize = math.floor(facts.image_size / facts.crop_pct)
        geometry = [list(op.size) if isinstance(op.size, list | tuple) else [op.size] for op in eval_geometry(info)]
        whole = facts.fixed_size and resize == facts.image_size
        assert geometry == ([] if whole else [[resize], [facts.image_size] * 2]), name
        if facts.fixed_size:
            with pytest.raises(ConfigError, match=f"{name} images are {facts.image_size} px"):
                load_config("FashionMNIST-ResNet8-standard", {"dataset": name, "image_size": facts.image_size + 8})


def test_a_registered_data_set_trains_with_its_names_and_label(toy_spec, tmp_path, one_thread):
    cfg = load_config("FashionMNIST-ResNet8-standard", {**TINY, "dataset": "toy24", "epochs": 1})
    assert cfg.name == "Toy-ResNet8-standard"
    fit(cfg, tmp_path / "run", log=lambda _: None)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "config.json").read_text())["label_names"] == ["a", "b", "c", "d"]


def test_bad_specs_and_names_are_one_line():
    with pytest.raises(ConfigError, match="'dataset': 'svhn' is not one of fashion_mnist, cifar10"):
        load_config("FashionMNIST-ResNet8-standard", {"dataset": "svhn"})
    with pytest.raises(ValueError, match="unknown dataset 'cifar_10' \\(did you mean 'cifar10'\\?\\)"):
        dataset_spec("cifar_10")
    with pytest.raises(ValueError, match="data set name 'my-data'"):
        DatasetSpec("my-data", toy_loader, dataset_spec("cifar10").facts)
    with pytest.raises(ValueError, match="mean and std need one value per channel"):
        DatasetFacts((0.5, 0.5), (0.2,), 32, fixed_size=True)
    with pytest.raises(ValueError, match="crop_pct must be in"):
        DatasetFacts((0.5,), (0.2,), 32, fixed_size=True, crop_pct=1.5)
