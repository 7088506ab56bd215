"""ScalarLog: metrics.jsonl records as TensorBoard scalars, read back with TensorBoard's EventAccumulator."""

import math
import re
import sys
from pathlib import Path

import pytest

from accord.engine.tensorboard import TENSORBOARD_DIR, ScalarLog, tensorboard_available

pytestmark = pytest.mark.usefixtures("one_thread")  # its runs have tiny batches: one thread is the fastest


def record(epoch: int, top1: float, val: float = math.nan) -> dict:
    return {
        "epoch": epoch,
        "lr": 0.1 / epoch,
        "train": {"loss": 2.0 / epoch, "ce": 1.5 / epoch, "entropy": -2.3, "l1": 0.1, "train_top1": top1},
        "val_top1": val,
        "val_top5": val,
        "test_top1": top1 + 1,
        "test_top5": 99.0,
        "images_per_s": 1500.0,
        "views_per_s": 3000.0,
        "seconds": 40.0,
    }


def read_scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(out / TENSORBOARD_DIR))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def age_event_files(out: Path) -> None:
    """Give the event files written so far an earlier timestamp in their names, as an interrupted run's would
    have: TensorBoard reads a folder's files in name order, and two writers of one process in the same second
    are otherwise ordered only by a counter compared as text."""
    for path in (out / TENSORBOARD_DIR).iterdir():
        path.rename(path.with_name(re.sub(r"tfevents\.\d+\.", "tfevents.0000000001.", path.name, count=1)))


def test_write_epoch_tags_steps_values_and_nan_skipped(tmp_path: Path):
    pytest.importorskip("tensorboard")
    with ScalarLog(tmp_path) as log:
        log.write_epoch(record(1, 50.0))  # no validation split: val_* are NaN
        log.write_epoch(record(2, 70.0, val=80.5))
    scalars = read_scalars(tmp_path)

    train = {f"train/{k}" for k in ("loss", "ce", "entropy", "l1", "train_top1")}
    other = {"val/top1", "val/top5", "test/top1", "test/top5", "lr", "speed/images_per_s", "speed/views_per_s"}
    assert set(scalars) == train | other
    for tag in train | other - {"val/top1", "val/top5"}:
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    assert scalars["val/top1"] == [(2, pytest.approx(80.5))]
    assert scalars["val/top5"] == [(2, pytest.approx(80.5))]
    assert scalars["train/loss"] == [(1, pytest.approx(2.0)), (2, pytest.approx(1.0))]
    assert scalars["train/entropy"] == [(1, pytest.approx(-2.3)), (2, pytest.approx(-2.3))]
    assert scalars["train/train_top1"] == [(1, pytest.approx(50.0)), (2, pytest.approx(70.0))]
    assert scalars["test/top1"] == [(1, pytest.approx(51.0)), (2, pytest.approx(71.0))]
    assert scalars["lr"] == [(1, pytest.approx(0.1)), (2, pytest.approx(0.05))]
    assert scalars["speed/views_per_s"] == [(1, pytest.approx(3000.0)), (2, pytest.approx(3000.0))]
    assert not any(math.isnan(v) for values in scalars.values() for _, v in values)


def test_write_epoch_flushes_without_close(tmp_path: Path):
    pytest.importorskip("tensorboard")
    log = ScalarLog(tmp_path)
    log.write_epoch(record(1, 50.0))
    assert read_scalars(tmp_path)["train/loss"] == [(1, pytest.approx(2.0))]
    log.close()


@pytest.mark.parametrize("purge", [True, False])
def test_resume_with_purge_step_hides_the_interrupted_runs_later_epochs(tmp_path: Path, purge: bool):
    pytest.importorskip("tensorboard")
    with ScalarLog(tmp_path) as log:  # interrupted after writing epoch 3; resumed from the epoch-2 checkpoint
        for epoch in (1, 2, 3):
            log.write_epoch(record(epoch, 10.0 * epoch))
    age_event_files(tmp_path)
    with ScalarLog(tmp_path, purge_step=3 if purge else None) as log:
        for epoch in (3, 4):
            log.write_epoch(record(epoch, 100.0 + epoch))
    top1 = read_scalars(tmp_path)["train/train_top1"]

    resumed = [(1, pytest.approx(10.0)), (2, pytest.approx(20.0)), (3, pytest.approx(103.0)), (4, pytest.approx(104.0))]
    if purge:
        assert top1 == resumed
    else:  # the check above can fail: without purge_step the stale epoch 3 stays
        assert top1 == resumed[:2] + [(3, pytest.approx(30.0))] + resumed[2:]


def test_missing_tensorboard_raises_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    assert not tensorboard_available()
    with pytest.raises(ModuleNotFoundError, match=r"pip install tensorboard"):
        ScalarLog(tmp_path)
    assert not (tmp_path / TENSORBOARD_DIR).exists()


def test_tensorboard_available_when_installed():
    pytest.importorskip("tensorboard")
    assert tensorboard_available()


def test_training_writes_tensorboard_scalars_beside_metrics(fmnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from test_train import tiny_config

    from accord.engine import fit

    fit(tiny_config("FashionMNIST-ResNet8-standard-agmax", fmnist_dir, tensorboard=True), tmp_path, log=lambda _: None)
    scalars = read_scalars(tmp_path)
    assert {"train/loss", "train/entropy", "train/l1", "val/top1", "test/top1", "lr"} <= scalars.keys()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [step for step, _ in scalars["test/top1"]] == [1, 2] == list(range(1, len(lines) + 1))


def test_tensorboard_key_without_the_package_is_refused_before_the_folder(monkeypatch, tmp_path):
    from accord.config import ConfigError, load_config
    from accord.engine import fit

    cfg = load_config("FashionMNIST-ResNet8-standard", {"tensorboard": True})  # a config does not probe packages
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match="pip install tensorboard"):
        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
