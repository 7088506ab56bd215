"""Round three: `accord report` trusts no hand-edited number, names a stray folder, and never sets runs of
different budgets side by side."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from accord.cli import main


def cell(root: Path, config: str, seed: int, top1=80.0, epochs=1, **extra) -> Path:
    run = root / config / f"seed{seed}"
    run.mkdir(parents=True)
    summary = {"seed": seed, "test_top1": top1, "last_test_top1": 79.0, "train_seconds": 60.0, "epochs": epochs}
    (run / "summary.json").write_text(json.dumps({**summary, **extra}))
    return run


def one_line(capsys, *parts: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for part in parts:
        assert part in err, err


@pytest.mark.parametrize("value", ["true", "NaN", "Infinity", '"85.5"', "-Infinity"])
def test_hand_edited_summary_values_are_one_line_naming_the_file(tmp_path, value, capsys):
    cell(tmp_path, "FashionMNIST-ResNet8-standard", 0)
    path = cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 0) / "summary.json"
    path.write_text(path.read_text().replace('"test_top1": 80.0', f'"test_top1": {value}'))
    assert main(["report", str(tmp_path)]) == 2
    one_line(capsys, f"{path}: not a run summary (test_top1 must be finite numbers")


def test_a_stray_copy_of_a_cell_folder_is_named(tmp_path, capsys):
    run = cell(tmp_path, "FashionMNIST-ResNet8-standard", 0)
    shutil.copytree(run.parent, tmp_path / "FashionMNIST-ResNet8-standard.bak")
    assert main(["report", str(tmp_path)]) == 2
    one_line(capsys, f"{tmp_path / 'FashionMNIST-ResNet8-standard.bak'}: not a grid cell folder")


def test_runs_of_different_budgets_are_not_compared(tmp_path, capsys):
    cell(tmp_path, "FashionMNIST-ResNet8-standard", 0, epochs=1)
    cell(tmp_path, "FashionMNIST-ResNet8-standard@2x", 0, epochs=2)  # the equal-compute control: same budget
    cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 0, epochs=2)
    assert main(["report", str(tmp_path)]) == 2
    one_line(capsys, "trained different numbers of epochs", "agmax seed 0: 2 epochs")
    shutil.rmtree(tmp_path / "FashionMNIST-ResNet8-standard-agmax")
    assert main(["report", str(tmp_path)]) == 0


def test_a_fifo_named_summary_json_is_named_not_read(tmp_path, capsys):
    cell(tmp_path, "FashionMNIST-ResNet8-standard", 0)
    fifo = tmp_path / "FashionMNIST-ResNet8-standard-agmax" / "seed0" / "summary.json"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    assert main(["report", str(tmp_path)]) == 2  # before: blocked forever in open()
    one_line(capsys, f"{fifo}: not a regular file")
