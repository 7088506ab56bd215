"""What a run tells its user: summary.csv beside metrics.jsonl, the evaluation's time, a line per step
checkpoint, evaluation progress off a terminal, and the grid's cell k of N, ETA and thread count."""

from __future__ import annotations

import csv
import json

import pytest
from reliability_runs import tiny_config
from test_grid import fake_run

from accord.cli import main
from accord.engine import fit
from accord.engine.progress import eval_progress
from accord.engine.runfiles import LOCK_FILE, RUN_FILES, RUN_MARKER, read_metrics
from accord.engine.summarycsv import flatten
from accord.grid import GridClock, cell_threads

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(fmnist_dir, tmp_path_factory):
    """A 2-epoch run with a checkpoint after every step; its folder and its log lines."""
    out = tmp_path_factory.mktemp("logging") / "run"
    lines: list[str] = []
    fit(tiny_config(fmnist_dir, epochs=2, checkpoint_every_steps=1), out, log=lines.append)
    return out, lines


def test_every_file_a_run_writes_is_a_run_file(run):
    """So that resume, overwrite and the start command's rules cover each of them."""
    out, _ = run
    assert {p.name for p in out.iterdir()} - {RUN_MARKER, LOCK_FILE} <= set(RUN_FILES)
    assert "summary.csv" in RUN_FILES


def test_summary_csv_holds_every_epoch_of_metrics_jsonl(run):
    out, _ = run
    with open(out / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = [flatten(r) for r in read_metrics(out)]
    assert len(rows) == len(records) == 2
    for row, record in zip(rows, records, strict=True):
        assert row.keys() == record.keys()
        assert {k: float(v) for k, v in row.items()} == pytest.approx({k: float(v) for k, v in record.items()})
    assert {"epoch", "train_loss", "train_top1", "val_top1", "test_top1", "lr", "eval_seconds"} <= rows[0].keys()


def test_metrics_record_the_evaluation_time(run):
    out, _ = run
    assert all(r["eval_seconds"] > 0 for r in read_metrics(out))


def test_each_step_checkpoint_says_so_in_one_line(run):
    out, lines = run
    saved = [line for line in lines if line.startswith("saved ")]
    # 2 steps an epoch: step checkpoints after steps 1 and 3 (the epoch ends write their own, silently)
    assert saved == [f"saved {out / 'checkpoint-last.pt'} at step {s} (epoch {e})" for s, e in ((1, 1), (3, 2))]


@pytest.mark.parametrize(("every_s", "expected"), [(0.0, 10), (3600.0, 0)])
def test_evaluation_progress_lines_at_most_every_so_often(monkeypatch, every_s, expected):
    monkeypatch.setattr("accord.engine.progress.on_terminal", lambda: False)
    lines: list[str] = []
    assert list(eval_progress(list(range(20)), "val", lines.append, every_s=every_s)) == list(range(20))
    assert len(lines) == expected
    assert all(line.startswith("val: ") and "/20 batches" in line for line in lines)


def test_grid_respects_the_users_thread_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cell_threads(jobs=4) == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert cell_threads(jobs=1) == str(max(1, __import__("os").cpu_count() or 1))


def test_grid_clock_counts_cells_and_estimates_the_rest():
    clock = GridClock(total=5, jobs=2)
    assert [clock.start() for _ in range(2)] == ["cell 1 of 5", "cell 2 of 5"]
    assert clock.finished(60.0) == "1 of 5 done, grid ETA 2m00s"  # 4 left, 2 at a time: 2 rounds of 60 s
    assert clock.finished(120.0) == "2 of 5 done, grid ETA 3m00s"  # 3 left: 2 rounds of 90 s
    for _ in range(3):
        last = clock.finished(90.0)
    assert last == "5 of 5 done, grid ETA 0s"


def test_report_says_where_it_wrote(tmp_path, capsys):
    for seed in (0, 1):
        fake_run(tmp_path, "FashionMNIST-ResNet8-standard", seed, 80.0, 79.0)
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert f"wrote report.md, results.csv and the figures in {tmp_path}" in err
    assert (tmp_path / "report.md").is_file()


def test_summary_csv_flattens_nested_values():
    record = {"epoch": 1, "train": {"loss": 1.0, "train_top1": 50.0}, "raw": {"val_top1": 3.0}}
    assert flatten(record) == {"epoch": 1, "train_loss": 1.0, "train_top1": 50.0, "raw_val_top1": 3.0}
    assert json.loads(json.dumps(flatten(record))) == flatten(record)
