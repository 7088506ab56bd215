"""`accord plot`: loss terms and top-1 per epoch of a run folder."""

from __future__ import annotations

import builtins
import json
from importlib.util import find_spec
from pathlib import Path

import pytest
from tiny_runs import QUICK

from accord.cli import main
from accord.config import load_config
from accord.engine import fit
from accord.plot import loss_terms, plot_run, read_records

needs_matplotlib = pytest.mark.skipif(find_spec("matplotlib") is None, reason="matplotlib is not installed")

TINY = {**QUICK, "epochs": 2, "train_subset": 128}


@pytest.fixture(scope="module")
def agmax_run(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    out = tmp_path_factory.mktemp("plot_run")
    fit(
        load_config("FashionMNIST-ResNet8-standard-agmax", {**TINY, "data_dir": str(fmnist_dir)}),
        out,
        log=lambda _: None,
    )
    return out


@needs_matplotlib
def test_plot_run_writes_a_png_of_every_term(agmax_run, tmp_path):
    records = read_records(agmax_run)
    assert loss_terms(records) == ["loss", "ce", "entropy", "l1"]
    out = plot_run(agmax_run, tmp_path / "curves.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 420)


@needs_matplotlib
def test_plot_cli_defaults_to_the_run_folder(agmax_run, capsys):
    assert main(["plot", str(agmax_run)]) == 0
    assert capsys.readouterr().out.strip() == str(agmax_run / "curves.png")
    assert (agmax_run / "curves.png").is_file()


@needs_matplotlib
def test_plot_handles_terms_missing_in_some_epochs(tmp_path):
    """A metrics file whose epochs log different terms (e.g. edited by hand) still plots, with gaps."""
    lines = [
        {"epoch": 1, "train": {"loss": 2.0, "ce": 2.0, "train_top1": 10.0}, "val_top1": 20.0, "test_top1": 21.0},
        {"epoch": 2, "train": {"loss": 1.0, "mse": 0.1, "train_top1": 30.0}, "val_top1": 40.0, "test_top1": 41.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert loss_terms(read_records(tmp_path)) == ["loss", "ce", "mse"]
    assert plot_run(tmp_path).is_file()


def test_plot_errors(tmp_path, capsys, monkeypatch):
    assert main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl: no such file" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text("")
    assert main(["plot", str(tmp_path)]) == 2
    assert "no epochs recorded yet" in capsys.readouterr().err

    record = {"epoch": 1, "train": {"loss": 1.0}, "val_top1": 50.0, "test_top1": 50.0}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["plot", str(tmp_path)]) == 2
    assert "accord plot needs matplotlib: pip install matplotlib" in capsys.readouterr().err
