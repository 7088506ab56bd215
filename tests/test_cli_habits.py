"""Command-line habits: --version, no prefix abbreviations, progress lines off a terminal, --json on stdout
with the human lines on stderr, --train-subset on train, an auto-named run folder, run files readable under
the umask; and the export of such a run (plain-string metadata, EMA weights, the accord-only CIFAR models)."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from accord.cli import auto_run_folder, build_parser, main, package_version
from accord.config import load_config
from accord.engine import load_checkpoint
from accord.engine.checkpoint import write_text_atomic
from accord.engine.progress import ProgressLines, duration, eval_progress
from accord.export import read_metadata

CONFIG = "FashionMNIST-ResNet8-standard"
SETS = ["batch_size=32", "lr_batch=32", "eval_batch_size=100", "workers=0", "log_interval=1", "ema=true"]


def test_version_comes_from_the_package_metadata(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"accord {package_version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


@pytest.mark.parametrize(
    "argv", [["train", "--epoch", "1"], ["grid", "--model", "x", "--out", "o"], ["eval", "--check", "c"]]
)
def test_option_prefixes_are_not_taken_for_options(argv, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err  # the prefix is refused, not read as --epochs/--models/--checkpoint
    assert done.value.code == 2 and ("unrecognized arguments" in err or "arguments are required" in err)


def test_train_takes_train_subset_as_grid_does():
    args = build_parser().parse_args(["train", "--train-subset", "64", "--set", "lr=0.2"])
    from accord.cli_flags import train_overrides

    assert train_overrides(args) == {"lr": 0.2, "train_subset": 64}


def test_auto_run_folder_is_named_after_the_config_and_never_reused(tmp_path):
    first = auto_run_folder(CONFIG, tmp_path)
    assert re.fullmatch(rf"{CONFIG}-\d{{8}}-\d{{6}}", first.name) and first.parent == tmp_path
    first.mkdir()
    assert auto_run_folder(CONFIG, tmp_path).name in (f"{first.name}-2", auto_run_folder(CONFIG, tmp_path).name)


def test_several_processes_need_out(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--config", CONFIG]) == 2
    assert "several processes need --out DIR" in capsys.readouterr().err


def test_the_run_name_follows_set_model():
    assert load_config(CONFIG, {"model": "ResNet20"}).name == "FashionMNIST-ResNet20-standard"
    assert load_config("ResNet50-standard-agmax", {"model": "resnet18"}).name == "resnet18-standard-agmax"
    assert load_config(CONFIG, {"model": "ResNet20", "name": "mine"}).name == "mine"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_take_the_umasks_mode(umask, mode, tmp_path):
    old = os.umask(umask)
    try:
        write_text_atomic("x", tmp_path / "f.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode


def test_progress_lines_by_hand():
    lines: list[str] = []
    progress = ProgressLines("epoch 1", total=10, every=2, first=0, write=lines.append)
    progress.start -= 4.0  # 4 s for the first 4 steps of 10: 6 steps left, 6 s
    progress.update(3, 99, {"loss": 1.0})  # not a multiple of every: silent
    progress.update(4, 400, {"loss": 1.23456, "ce": 0.5})
    assert len(lines) == 1 and re.fullmatch(
        r"epoch 1 step 4/10: loss 1\.235 ce 0\.500 \| 100 img/s \| ETA 6s", lines[0]
    )
    assert duration(3 * 3600 + 125) == "3h02m" and duration(245) == "4m05s"
    said: list[str] = []
    assert list(eval_progress(list(range(20)), "evaluating", said.append)) == list(range(20))
    assert (
        len(said) == 10 and said[0].startswith("evaluating: 2/20 batches") and said[-1].startswith("evaluating: 20/20")
    )


@pytest.fixture(scope="module")
def cli_run(fmnist_dir, tmp_path_factory):
    """One tiny run trained as a user would from a shell: no --out, --json, off a terminal, umask 027."""
    cwd = tmp_path_factory.mktemp("cwd")
    here, old = Path.cwd(), os.umask(0o027)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        os.chdir(cwd)
        args = ["train", "--config", CONFIG, "--data-dir", str(fmnist_dir), "--epochs", "1", "--train-subset", "64"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args, *(f"--set={s}" for s in SETS), "--json"])
    finally:
        os.chdir(here)
        os.umask(old)
    assert code == 0, err.getvalue()
    (folder,) = (cwd / "runs").iterdir()
    return folder, out.getvalue(), err.getvalue()


def test_train_json_on_stdout_progress_and_folder_on_stderr(cli_run):
    folder, out, err = cli_run
    summary = json.loads(out)  # stdout is the JSON alone
    assert summary["name"] == CONFIG and summary["selected_by"] == "ema"
    assert re.fullmatch(rf"{CONFIG}-\d{{8}}-\d{{6}}", folder.name)
    assert f"run folder {Path('runs') / folder.name}" in err
    assert re.search(r"epoch 1 step 1/2: loss \d+\.\d{3} ce \d+\.\d{3} \| \d+ img/s \| ETA \S+", err), err
    assert "epoch 1/1: loss" in err and "(EMA; raw val" in err
    for name in ("config.yaml", "metrics.jsonl", "checkpoint-last.pt", "summary.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o640, name  # readable by the group


def test_eval_json_on_stdout_and_progress_on_stderr(cli_run, fmnist_dir, capsys):
    folder, _, _ = cli_run
    assert (
        main(["eval", "--checkpoint", str(folder / "checkpoint-last.pt"), "--data-dir", str(fmnist_dir), "--json"]) == 0
    )
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert result["n"] == 100 and 0 <= result["clean"]["top1"] <= 100
    assert "evaluating: 1/1 batches" in printed.err and "test top-1" in printed.err


def test_export_holds_the_ema_as_plain_strings_and_says_it_needs_accord(cli_run, tmp_path, capsys):
    folder, _, _ = cli_run
    out = tmp_path / "model.safetensors"
    assert main(["export", str(folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(EMA weights)" in printed and "pip install accord" in printed
    with safe_open(str(out), framework="pt") as f:
        raw = f.metadata()
    assert raw["architecture"] == "cifar_resnet8" and raw["config"] == CONFIG and raw["weights"] == "ema"
    assert raw["num_classes"] == "10" and "pip install accord" in raw["requires"]
    meta = read_metadata(out)
    assert meta["num_classes"] == 10 and meta["input_size"] == [1, 28, 28] and meta["architecture"] == "cifar_resnet8"
    ckpt = load_checkpoint(folder / "checkpoint-best.pt")
    exported = load_file(str(out))
    assert all(torch.equal(exported[k], ckpt["ema"][k]) for k in exported)
    assert any(not torch.equal(exported[k], ckpt["model"][k]) for k in exported)


def test_compare_json_is_one_summary_per_method(monkeypatch, tmp_path, capsys):
    import accord.engine

    logs = []

    def fake_fit(cfg, out, overwrite=False, log=print):
        log(f"training {cfg.name}")
        logs.append(log)
        return {"name": cfg.name, "test_top1": 50.0, "last_test_top1": 49.0, "images_per_s": 100.0}

    monkeypatch.setattr(accord.engine, "fit", fake_fit)
    args = ["compare", "--config", CONFIG, "--methods", "ce,tied", "--epochs", "1", "--out", str(tmp_path)]
    assert main([*args, "--json"]) == 0
    printed = capsys.readouterr()
    rows = json.loads(printed.out)
    assert [r["method"] for r in rows] == ["ce", "tied"] and rows[1]["name"] == f"{CONFIG}-tied"
    assert "training FashionMNIST-ResNet8-standard-tied" in printed.err
    assert main(args) == 0  # without --json: the table, as before
    assert "| method | test top-1 (best val epoch)" in capsys.readouterr().out


def test_compare_without_out_trains_into_a_fresh_folder_each_time(monkeypatch, tmp_path, capsys):
    import accord.engine

    folders = []

    def fake_fit(cfg, out, overwrite=False, log=print):
        assert not overwrite
        folders.append(Path(out))
        return {"name": cfg.name, "test_top1": 50.0, "last_test_top1": 49.0, "images_per_s": 100.0}

    monkeypatch.setattr(accord.engine, "fit", fake_fit)
    monkeypatch.chdir(tmp_path)
    args = ["compare", "--config", CONFIG, "--methods", "ce,tied", "--epochs", "1"]
    assert main(args) == 0
    for folder in folders:  # what a real run leaves: a folder that holds a run
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text("name: x\n")
    assert main(args) == 0  # the quick start again: no refusal, no --overwrite needed
    first, second = {f.parent for f in folders[:2]}, {f.parent for f in folders[2:]}
    assert len(first) == len(second) == 1 and first != second
    assert next(iter(first)).name.startswith(f"compare-{CONFIG}-")
    assert f"runs go to {next(iter(second))}" in capsys.readouterr().out
