"""Bad data is one line before anything is written (issue 17, items 7, 8 and 10): truncated or random
``.gz`` files, labels outside the classes, an empty test set (valid JSON, no NaN), huge images, a class
whose only image is unreadable, more loader workers than CPUs."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_idx
from reliability_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def data(fmnist_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the Fashion-MNIST-format folder, to damage."""
    return Path(shutil.copytree(fmnist_dir, tmp_path / "data"))


def one_line_before_the_run(main_args: list[str], out: Path, capsys, *needles: str) -> str:
    assert main(main_args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()  # no folder, so no config.yaml either
    return err


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_truncated_or_random_gz_data_is_one_line_naming_the_file(data, tmp_path, damage, capsys):
    path = data / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] if damage == "truncated" else np.random.default_rng(0).bytes(4096))
    out = tmp_path / "run"
    one_line_before_the_run(train_args(data, out), out, capsys, str(path), "truncated or corrupt")


@pytest.mark.parametrize("split", ["train", "t10k"])
def test_a_label_outside_the_classes_is_refused_before_config_yaml(data, tmp_path, split, capsys):
    labels = np.arange(400 if split == "train" else 100) % 10
    labels[7] = 200
    write_idx(data / f"{split}-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "run"
    path = data / f"{split}-labels-idx1-ubyte.gz"
    one_line_before_the_run(
        train_args(data, out), out, capsys, f"{path}: label 200 at index 7 is outside the 10 classes (0-9)"
    )


def test_an_empty_test_set_leaves_valid_json_without_nan(data, tmp_path):
    write_idx(data / "t10k-images-idx3-ubyte.gz", np.zeros((0, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", np.zeros((0,), dtype=np.uint8))
    fit(tiny_config(data), tmp_path / "run", log=QUIET)

    def refuse(constant: str):
        raise AssertionError(f"summary.json holds {constant}, which is not JSON")

    summary = json.loads((tmp_path / "run" / "summary.json").read_text(), parse_constant=refuse)
    assert summary["test_top1"] is None and summary["last_test_top1"] is None
    assert summary["best_val_top1"] is not None


def test_gzip_reader_errors_are_value_errors(tmp_path):
    from accord.data.idx import read_idx

    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\0\0\x08\x01" + b"\0\0\0\x05" + b"abcde")
    path.write_bytes(path.read_bytes()[:-6])  # cut into the trailer
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(path)
