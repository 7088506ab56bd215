"""Reports say what they leave out and trust nothing they read: unfinished cells are marked, a damaged or
hand-edited ``summary.json`` or a FIFO in its place is named, a stray copy of a cell folder is named, runs of
different budgets are never set side by side, and an interrupted grid says which command continues it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from one_line import one_line

import accord.grid
from accord.cli import main
from accord.config import load_config
from accord.report import write_report


def fake_cell(root: Path, config: str, seed: int, top1: float | None) -> Path:
    run = root / config / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(load_config(config, {"seed": seed}).as_flat()))
    if top1 is not None:
        summary = {"seed": seed, "test_top1": top1, "last_test_top1": top1, "train_seconds": 60.0}
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_report_marks_unfinished_cells_instead_of_a_silent_n_1(tmp_path):
    for seed, value in enumerate([80.0, 82.0]):
        fake_cell(tmp_path, "FashionMNIST-ResNet8-standard", seed, value)
    fake_cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 0, 83.0)
    fake_cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 1, None)  # stopped: no summary.json
    text = write_report(tmp_path)
    assert "Unfinished cells: 1, marked (n=finished seeds) where the grid has 2 seeds; 1 run folder(s)" in text
    row = next(line for line in text.splitlines() if line.startswith("| standard |"))
    assert row == "| standard | 81.00 ± 1.41 | 83.00 (n=1) |"


def test_a_run_without_test_images_counts_as_unfinished(tmp_path):
    for seed, value in enumerate([80.0, 82.0]):
        fake_cell(tmp_path, "FashionMNIST-ResNet8-standard", seed, value)
    fake_cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 0, 83.0)
    empty = fake_cell(tmp_path, "FashionMNIST-ResNet8-standard-agmax", 1, 0.0) / "summary.json"
    empty.write_text(json.dumps({"seed": 1, "test_top1": None, "last_test_top1": None, "train_seconds": 1.0}))
    row = next(line for line in write_report(tmp_path).splitlines() if line.startswith("| standard |"))
    assert row == "| standard | 81.00 ± 1.41 | 83.00 (n=1) |"


def test_an_empty_summary_json_is_one_line_naming_the_file(tmp_path, capsys):
    fake_cell(tmp_path, "FashionMNIST-ResNet8-standard", 0, 80.0)
    empty = fake_cell(tmp_path, "FashionMNIST-ResNet8-standard", 1, None) / "summary.json"
    empty.write_text("")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accord: error: {empty}: empty file") and err.count("\n") == 1


def test_a_missing_or_empty_grid_folder_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err == f"accord: error: {tmp_path / 'nothing'}: no such folder\n"
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"accord: error: {tmp_path}: no finished runs (*/seed*/summary.json)\n"


@pytest.mark.parametrize(
    "text",
    ['{"sessions": [{"cells_run": 1, "wall_seconds": 5}]}', '{"sessions": {}}', "[]", '{"sessions": [', ""],
    ids=["session-without-argv", "sessions-not-a-list", "not-an-object", "truncated", "empty"],
)
def test_a_damaged_grid_json_is_one_line_naming_the_file(tmp_path, capsys, text):
    fake_cell(tmp_path, "FashionMNIST-ResNet8-standard", 0, 80.0)
    (tmp_path / "grid.json").write_text(text)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"accord: error: {tmp_path / 'grid.json'}: not ") and err.count("\n") == 1


def test_an_interrupted_grid_names_the_grid_command_to_run_again(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(accord.grid, "run_grid", interrupted)
    argv = ["grid", "--models", "FashionMNIST-ResNet8", "--methods", "ce", "--seeds", "1", "--out", str(tmp_path)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "re-run the same command to continue the grid: `accord grid --models FashionMNIST-ResNet8" in err
    assert "train --resume" not in err


@pytest.mark.parametrize("command", [["train", "--out", "RUN"], ["train", "--resume", "RUN"]])
def test_an_interrupted_train_names_its_folder(command, monkeypatch, capsys):
    import accord.engine

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(accord.engine, "fit", interrupted)
    monkeypatch.setattr("accord.cli.load_saved_config", lambda path: {})
    monkeypatch.setattr("accord.cli.load_config", lambda *args: {})
    monkeypatch.setattr("accord.cli.config_notes", lambda cfg: [])
    monkeypatch.setattr(
        Path, "is_file", lambda self: self.name in ("config.yaml", "checkpoint-last.pt")
    )  # RUN holds a run
    assert main(command) == 130
    assert "resume with `accord train --resume RUN`" in capsys.readouterr().err


def cell(root: Path, config: str, seed: int, top1=80.0, epochs=1, **extra) -> Path:
    run = root / config / f"seed{seed}"
    run.mkdir(parents=True)
    summary = {"seed": seed, "test_top1": top1, "last_test_top1": 79.0, "train_seconds": 60.0, "epochs": epochs}
    (run / "summary.json").write_text(json.dumps({**summary, **extra}))
    return run


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
