"""A grid never counts another budget's cells as its own, never runs twice in one folder, refuses scoped --set
for a method it does not train, and passes a stop signal on to its cells."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from one_line import one_line
from tiny_runs import CHILD_ENV, REPO, TINY

from accord.cli import main
from accord.engine.lock import RunLock
from accord.grid import GRID_LOCK

pytestmark = pytest.mark.usefixtures("one_thread")


def grid_args(data_dir: Path, out: Path, *extra: str, methods: str = "ce", seeds: str = "1") -> list[str]:
    sets = [f"--set={k}={json.dumps(v)}" for k, v in TINY.items() if k != "epochs"]
    return [
        "grid", "--models", "FashionMNIST-ResNet8", "--methods", methods, "--seeds", seeds, "--out", str(out),
        *sets, f"--set=data_dir={json.dumps(str(data_dir))}", *extra,
    ]  # fmt: skip


def test_a_grid_run_again_with_other_epochs_refuses_the_old_cells(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(grid_args(fmnist_dir, out, "--epochs", "1")) == 0
    summary = (out / "FashionMNIST-ResNet8-standard" / "seed0" / "summary.json").read_text()
    capsys.readouterr()
    assert main(grid_args(fmnist_dir, out, "--epochs", "2")) == 2
    one_line(capsys, "trained with other settings than this grid's (epochs 1 there, 2 now)")
    assert (out / "FashionMNIST-ResNet8-standard" / "seed0" / "summary.json").read_text() == summary


def test_a_scoped_set_for_a_method_not_in_methods_is_refused(fmnist_dir, tmp_path, capsys):
    assert main(grid_args(fmnist_dir, tmp_path / "g", "--set", "tide:loss.weight=8", methods="ce,tied")) == 2
    one_line(capsys, "--set tide:...: 'tide' is not one of --methods (ce, tied)")
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize(
    ("methods", "seeds", "message"),
    [("ce,ce", "1", "--methods: ce listed twice"), ("ce", "0", "--seeds 0: "), ("ce", "-2", "--seeds -2: ")],
)
def test_duplicate_methods_and_no_seeds_are_refused(fmnist_dir, tmp_path, methods, seeds, message, capsys):
    assert main(grid_args(fmnist_dir, tmp_path / "g", "--jobs", "2", methods=methods, seeds=seeds)) == 2
    one_line(capsys, message)


def test_a_cell_folder_that_is_a_file_is_one_line_naming_it(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "grid"
    (out / "FashionMNIST-ResNet8-standard").mkdir(parents=True)
    (out / "FashionMNIST-ResNet8-standard" / "seed0").write_text("not a folder")
    assert main(grid_args(fmnist_dir, out, "--epochs", "1")) == 2
    one_line(capsys, f"{out / 'FashionMNIST-ResNet8-standard' / 'seed0'}: a grid cell's folder")


def test_a_second_grid_in_the_same_folder_is_refused(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "grid"
    out.mkdir()
    with RunLock(out, GRID_LOCK):  # as a first grid process holds it
        assert main(grid_args(fmnist_dir, out, "--epochs", "1")) == 2
    one_line(capsys, "another accord process", "is running a grid in this folder")
    assert not (out / "FashionMNIST-ResNet8-standard").exists()


@pytest.mark.slow
def test_sigint_to_the_grid_alone_stops_its_cell_at_the_next_step(fmnist_dir, tmp_path):
    out = tmp_path / "grid"
    cell = out / "FashionMNIST-ResNet8-standard" / "seed0"
    grid = subprocess.Popen(
        [sys.executable, "-m", "accord", *grid_args(fmnist_dir, out, "--epochs", "500")],
        cwd=REPO, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (cell / "checkpoint-last.pt").is_file():
            assert grid.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        sent = time.monotonic()
        grid.send_signal(signal.SIGINT)  # the parent only, as `kill -INT`
        stdout, stderr = grid.communicate(timeout=30)
        waited = time.monotonic() - sent
    finally:
        grid.kill()
    assert grid.returncode == 130, stderr
    assert waited < 15, waited  # before: the whole cell (500 epochs) ran first
    assert "stopped (SIGINT; checkpoint saved)" in stdout
    assert "re-run the same command to continue the grid" in stderr
    assert "SIGINT: stopped at" in (cell / "train.log").read_text()
