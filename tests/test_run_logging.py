"""What a run tells its user: summary.csv beside metrics.jsonl, the evaluation's time, a line per step
checkpoint, evaluation progress off a terminal, and the grid's cell k of N, ETA and thread count."""

from __future__ import annotations

import csv
import json
import sys

import pytest
import torch
from test_grid import fake_run
from tiny_runs import QUIET, tiny_config, train_args

from accord.cli import main
from accord.engine import fit, load_checkpoint
from accord.engine.history import history_files
from accord.engine.progress import eval_progress
from accord.engine.runfiles import LOCK_FILE, RUN_FILES, RUN_MARKER, RunFolderError, is_run_file_name, read_metrics
from accord.engine.summarycsv import flatten
from accord.engine.tensorboard import STEPS_DIR, TENSORBOARD_DIR, tensorboard_available
from accord.grid import GridClock, cell_threads
from accord.outputs import OutputExistsError, check_output

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(fmnist_dir, tmp_path_factory):
    """A 2-epoch run with a checkpoint after every step; its folder and its log lines."""
    out = tmp_path_factory.mktemp("logging") / "run"
    lines: list[str] = []
    tensorboard = tensorboard_available()
    fit(tiny_config(fmnist_dir, epochs=2, checkpoint_every_steps=1, tensorboard=tensorboard), out, log=lines.append)
    return out, lines


def test_tensorboard_has_a_point_every_log_interval_updates(run):
    """log_interval 1, 2 epochs of 2 steps: the running loss terms, lr, images/s, data-wait and compute
    seconds at updates 1-4 (the epoch's scalars stay at epochs 1-2)."""
    events = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out, _ = run
    steps = events.EventAccumulator(str(out / TENSORBOARD_DIR / STEPS_DIR))
    steps.Reload()
    scalars = {tag: [e.step for e in steps.Scalars(tag)] for tag in steps.Tags()["scalars"]}
    expected = {"train/loss", "train/ce", "lr", "speed/images_per_s", "speed/data_wait_s", "speed/compute_s"}
    assert expected <= scalars.keys()
    assert all(scalars[tag] == [1, 2, 3, 4] for tag in expected)
    epochs = events.EventAccumulator(str(out / TENSORBOARD_DIR))
    epochs.Reload()
    assert [e.step for e in epochs.Scalars("train/loss")] == [1, 2]


def test_step_lines_give_the_epoch_and_the_run_eta(run):
    _, lines = run
    steps = [line for line in lines if " step " in line and line.startswith("epoch ")]
    assert [line.split(":")[0] for line in steps] == ["epoch 1 step 1/2", "epoch 1 step 2/2", "epoch 2 step 1/2",
                                                       "epoch 2 step 2/2"]  # fmt: skip
    assert ", run " in steps[0] and ", run " not in steps[-1]  # the run's ETA while later epochs remain


def test_every_file_a_run_writes_is_a_run_file(run):
    """So that resume, overwrite and the start command's rules cover each of them."""
    out, _ = run
    assert {p.name for p in out.iterdir()} - {RUN_MARKER, LOCK_FILE, TENSORBOARD_DIR} <= set(RUN_FILES)
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


def test_checkpoint_keep_holds_the_last_epochs_and_they_are_run_files(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(fmnist_dir, epochs=3, checkpoint_keep=2), out, log=QUIET)
    kept = history_files(out)
    assert [p.name for p in kept] == ["checkpoint-epoch2.pt", "checkpoint-epoch3.pt"]
    assert [load_checkpoint(p)["epoch"] for p in kept] == [1, 2]  # 0-based in the checkpoint
    last = load_checkpoint(out / "checkpoint-last.pt")["model"]
    assert all(torch.equal(v, load_checkpoint(kept[-1])["model"][k]) for k, v in last.items())
    assert all(is_run_file_name(p.name) for p in kept)
    with pytest.raises(OutputExistsError, match="is a file of the run"):
        check_output(kept[0], overwrite=True)
    fit(tiny_config(fmnist_dir, epochs=1), out, overwrite=True, log=QUIET)  # another run replaces them
    assert history_files(out) == []


def test_a_kept_checkpoint_without_the_marker_is_not_accords_to_replace(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint-epoch7.pt").write_text("someone's")
    with pytest.raises(RunFolderError, match="no .accord-run.json"):
        fit(tiny_config(fmnist_dir, epochs=1), out, overwrite=True, log=QUIET)
    assert (out / "checkpoint-epoch7.pt").read_text() == "someone's"


def test_log_wandb_writes_an_offline_run_of_the_same_id(fmnist_dir, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main([*train_args(fmnist_dir, out, epochs=1), "--log-wandb"]) == 0
    assert load_checkpoint(out / "checkpoint-last.pt")["config"]["wandb"] is True
    run_id = json.loads((out / RUN_MARKER).read_text())["run_id"]
    (events,) = (out / "wandb").glob(f"offline-run-*/run-{run_id}.wandb")
    assert events.stat().st_size > 0


class FakeWandb:
    """Records what a run sends to ``wandb``."""

    def __init__(self) -> None:
        self.init_kwargs: dict = {}
        self.logged: list[tuple[int, dict]] = []
        self.finished = False

    def init(self, **kwargs):
        self.init_kwargs = kwargs
        return self

    def log(self, values, step):
        self.logged.append((step, values))

    def finish(self):
        self.finished = True


def test_wandb_gets_the_step_scalars_and_the_epoch_records(fmnist_dir, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = tmp_path / "run"
    fit(tiny_config(fmnist_dir, epochs=2, wandb=True), out, log=QUIET)
    assert fake.init_kwargs["id"] == json.loads((out / RUN_MARKER).read_text())["run_id"]
    assert fake.init_kwargs["dir"] == str(out) and fake.init_kwargs["resume"] == "allow" and fake.finished
    steps = [step for step, values in fake.logged if "train/loss" in values]
    assert steps == [1, 2, 3, 4]  # log_interval 1
    epochs = [values for _, values in fake.logged if "epoch/epoch" in values]
    assert [e["epoch/epoch"] for e in epochs] == [1, 2]
    assert {"epoch/val_top1", "epoch/train_loss", "epoch/eval_seconds"} <= epochs[0].keys()
    assert all("lr" in values and "train/data_wait_s" in values for _, values in fake.logged if "train/loss" in values)
