"""Stops and resume: a run killed (SIGKILL at random points and during a checkpoint write), signalled (SIGINT,
SIGTERM, SIGHUP, twice) or stopped during its evaluation resumes to exactly the metrics and weights of an
uninterrupted one, and no stop leaves a run file half written. docs/reliability.md tabulates these tests."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from interrupted_runs import (
    NAME,
    OVERRIDES,
    QUIET,
    assert_files_whole,
    assert_same_run,
    config,
    draw_noise,
    metrics,
    plant,
    send,
    temp_files,
)
from tiny_runs import start_long_run, wait_until
from torch.utils.data import DataLoader

import accord.engine.trainer as trainer
from accord.cli import main
from accord.engine import fit, load_checkpoint
from accord.engine.checkpoint import capture_rng, restore_rng, save_atomic
from accord.engine.trainer import EpochSampler, TrainingInterrupted

REPO = Path(__file__).resolve().parents[1]
# CPU results depend on the number of intra-op threads: every run here, in this process or a child, uses one
# (it is also the fastest for these tiny batches on a busy machine).
pytestmark = pytest.mark.usefixtures("one_thread")
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reference(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    fit(config(fmnist_dir), out, log=QUIET)
    return out


# ------------------------------------------------------------------------------------------ data order, RNG


def test_epoch_sampler_is_the_dataloader_shuffle_and_resumes_at_any_batch():
    order = [
        int(i) for b in DataLoader(range(100), batch_size=8, shuffle=True, generator=torch.manual_seed(7)) for i in b
    ]
    assert list(EpochSampler(100, 7)) == order  # runs made before mid-epoch resume keep their data order
    assert list(EpochSampler(100, 7, start=24)) == order[24:]
    assert len(EpochSampler(100, 7, start=24)) == 76


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    rng = np.random.default_rng([3, 1])
    rng.random(5)
    torch.manual_seed(5)
    torch.rand(3)
    save_atomic({"rng": capture_rng(rng, torch.device("cpu"))}, tmp_path / "rng.pt")
    want = rng.random(4), torch.rand(4)
    restored = np.random.default_rng(0)
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"], restored, torch.device("cpu"))
    assert np.array_equal(restored.random(4), want[0]) and torch.equal(torch.rand(4), want[1])


# --------------------------------------------------------------------------------------------- kill, resume


def test_sigint_mid_epoch_saves_and_resume_matches_uninterrupted(fmnist_dir, reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        plant(patch, at_call=3, action=send(signal.SIGINT))  # arrives inside step 3 of epoch 1
        with pytest.raises(TrainingInterrupted, match=r"SIGINT: stopped at step 3 .*--resume") as info:
            fit(config(fmnist_dir), out, log=QUIET)
    assert info.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is handler  # the run's handlers are removed
    ckpt = load_checkpoint(out / "checkpoint-last.pt")
    assert ckpt["global_step"] == 3 and ckpt["partial"]["ranks"][0]["progress"]["steps"] == 3
    assert not (out / "metrics.jsonl").exists()
    fit(config(fmnist_dir), out, resume=True, log=QUIET)
    assert_same_run(out, reference)


def test_mid_epoch_checkpoint_of_the_one_process_format_still_resumes(fmnist_dir, reference, tmp_path, monkeypatch):
    """Checkpoints written before several processes were supported hold one process's partial state at the
    top of ``partial`` (no ``ranks`` list); they resume as before."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=3, action=send(signal.SIGINT))
        with pytest.raises(TrainingInterrupted):
            fit(config(fmnist_dir), out, log=QUIET)
    ckpt = load_checkpoint(out / "checkpoint-last.pt")
    (state,) = ckpt["partial"].pop("ranks")
    ckpt["partial"].update(state)
    save_atomic(ckpt, out / "checkpoint-last.pt")
    fit(config(fmnist_dir), out, resume=True, log=QUIET)
    assert_same_run(out, reference)


def test_global_rng_is_restored_mid_epoch_with_loader_workers(fmnist_dir, tmp_path, monkeypatch):
    """With workers, nothing re-seeds the main process's generator per sample: the checkpoint must hold it."""
    cfg = config(fmnist_dir, workers=2)
    with monkeypatch.context() as patch:
        plant(patch, every=draw_noise)
        fit(cfg, tmp_path / "reference", log=QUIET)
    with monkeypatch.context() as patch:
        plant(patch, at_call=3, action=send(signal.SIGINT), every=draw_noise)
        with pytest.raises(TrainingInterrupted):
            fit(cfg, tmp_path / "run", log=QUIET)
    with monkeypatch.context() as patch:
        plant(patch, every=draw_noise)
        fit(cfg, tmp_path / "run", resume=True, log=QUIET)
    assert_same_run(tmp_path / "run", tmp_path / "reference")


def test_sigterm_at_the_last_step_of_an_epoch_resumes_into_its_evaluation(fmnist_dir, reference, tmp_path, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=5, action=send(signal.SIGTERM))
        with pytest.raises(TrainingInterrupted, match="SIGTERM") as info:
            fit(config(fmnist_dir), out, log=QUIET)
    assert info.value.exit_code == 143
    assert load_checkpoint(out / "checkpoint-last.pt")["partial"]["ranks"][0]["progress"]["steps"] == 5
    assert main(["train", "--resume", str(out)]) == 0
    assert_same_run(out, reference)


# A child whose checkpoint writes pause half way (half the bytes written and flushed to the temporary
# file), so that a SIGKILL can be aimed at the middle of a write.
SLOW_WRITES = """
import io, sys, time, torch
save = torch.save
def half_then_pause(obj, f, *args, **kwargs):
    buffer = io.BytesIO()
    save(obj, buffer, *args, **kwargs)
    data = buffer.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    time.sleep(2.0)
    f.write(data[len(data) // 2 :])
torch.save = half_then_pause
from accord.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli_train(fmnist_dir: Path, out: Path, mode: str, slow_writes: bool = False, **extra) -> subprocess.Popen:
    """``accord train`` as a child process: a new run (``--overwrite``) or ``--resume``."""
    if mode == "resume":
        args = ["--resume", str(out)]
    else:
        sets = [f"--set={k}={json.dumps(v)}" for k, v in {**OVERRIDES, **extra}.items()]
        args = ["--config", NAME, "--data-dir", str(fmnist_dir), *sets, "--out", str(out), "--overwrite"]
    command = [sys.executable, "-c", SLOW_WRITES] if slow_writes else [sys.executable, "-m", "accord"]
    return subprocess.Popen(
        [*command, "train", *args],
        cwd=REPO,
        env=CHILD_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, for signals to the group
    )


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll ``condition`` as fast as possible; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
    raise TimeoutError("the training process made no progress")


def checkpoint_id(out: Path) -> int | None:
    """The inode of checkpoint-last.pt: every atomic save gives it a new one."""
    try:
        return (out / "checkpoint-last.pt").stat().st_ino
    except FileNotFoundError:
        return None


def half_written(out: Path) -> list[Path]:
    """Orphaned temporary checkpoint files that do not load (a write cut short)."""
    partial = []
    for path in out.glob(".checkpoint-*.tmp"):
        try:
            torch.load(path, weights_only=True)
        except Exception:
            partial.append(path)
    return partial


def kill_at_random(proc: subprocess.Popen, out: Path, before: int | None, delay: float) -> str:
    """SIGKILL ``delay`` seconds after the child wrote its first checkpoint (training is under way then)."""
    if not wait_for(lambda: checkpoint_id(out) not in (None, before), proc):
        return "finished"
    time.sleep(delay)
    proc.kill()
    return "killed"


def kill_while_saving(proc: subprocess.Popen, out: Path) -> str:
    """SIGKILL while a checkpoint's temporary file holds half its bytes."""
    if not wait_for(lambda: any(_size(p) > 0 for p in out.glob(".checkpoint-*.tmp")), proc):
        return "finished"
    proc.kill()
    return "killed"


def _size(path: Path) -> int:
    """The file's size, 0 once it is gone: the child renames its temporary file between our listing and stat."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def run_with_kills(
    fmnist_dir: Path, out: Path, kills: list[str], seed: int, max_delay: float = 1.0, **extra
) -> dict[str, int]:
    """Start the run, SIGKILL it at each of ``kills``, resume after each; returns what happened.

    ``early``: at a random moment of start-up (before any checkpoint exists: the run starts again);
    ``random``: at a random moment of training; ``saving``: in the middle of a checkpoint write.
    """
    rng = random.Random(seed)
    out.mkdir(parents=True)
    seen = {"killed": 0, "finished": 0, "mid_write": 0, "restarted": 0}
    mode = "new"
    for kind in kills:
        before = checkpoint_id(out)
        proc = cli_train(fmnist_dir, out, mode, slow_writes=kind == "saving", **extra)
        if kind == "early":
            time.sleep(rng.uniform(0.0, 1.0))
            proc.kill()
            result = "killed"
        elif kind == "saving":
            result = kill_while_saving(proc, out)
        else:
            result = kill_at_random(proc, out, before, rng.uniform(0.0, max_delay))
        proc.wait()
        seen[result] += 1
        seen["mid_write"] += bool(half_written(out))
        assert_files_whole(out)  # under their real names, every file is complete
        mode = "resume" if (out / "checkpoint-last.pt").exists() else "new"
        seen["restarted"] += mode == "new"
    proc = cli_train(fmnist_dir, out, mode, **extra)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert temp_files(out) == []  # orphans of killed writes are removed on resume
    return seen


def test_sigkill_at_random_points_and_during_a_checkpoint_write_then_resume(fmnist_dir, reference, tmp_path):
    seed = int(os.environ.get("ACCORD_FAULT_SEED", random.randrange(1 << 30)))
    seen = run_with_kills(fmnist_dir, tmp_path / "run", ["saving", "random"], seed)
    assert seen["mid_write"] == 1 and seen["killed"] >= 1, (seed, seen)
    assert_same_run(tmp_path / "run", reference)


@pytest.mark.slow
def test_sigkill_many_times_then_resume(fmnist_dir, tmp_path):
    seed = int(os.environ.get("ACCORD_FAULT_SEED", random.randrange(1 << 30)))
    fit(config(fmnist_dir, epochs=8), tmp_path / "reference", log=QUIET)
    kills = ["early", "random", "saving", "random", "random", "saving", "random", "random"]
    seen = run_with_kills(fmnist_dir, tmp_path / "run", kills, seed, max_delay=0.5, epochs=8)
    assert seen["killed"] >= 6 and seen["mid_write"] >= 2, (seed, seen)
    assert_same_run(tmp_path / "run", tmp_path / "reference")


def test_sigterm_to_the_process_group_with_loader_workers_exits_143(fmnist_dir, tmp_path):
    """As a batch system stops a job: SIGTERM to every process; the loader workers leave it to the main one."""
    fit(config(fmnist_dir, workers=2), tmp_path / "reference", log=QUIET)
    out = tmp_path / "run"
    out.mkdir()
    proc = cli_train(fmnist_dir, out, "new", workers=2)
    assert wait_for(lambda: (out / "checkpoint-last.pt").exists(), proc)
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM: stopped at step" in err and f"resume with `accord train --resume {out}`" in err
    assert "Traceback" not in err and "exited unexpectedly" not in err
    assert_files_whole(out)
    fit(config(fmnist_dir, workers=2), out, resume=True, log=QUIET)
    assert_same_run(out, tmp_path / "reference")


def test_signal_during_evaluation_stops_after_the_epoch_checkpoint(fmnist_dir, reference, tmp_path, monkeypatch):
    evaluate, calls = trainer.evaluate, [0]

    def signalled(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:  # during the validation pass of epoch 1
            os.kill(os.getpid(), signal.SIGTERM)
        return evaluate(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "evaluate", signalled)
        with pytest.raises(TrainingInterrupted, match="stopped at the end of epoch 1"):
            fit(config(fmnist_dir), tmp_path, log=QUIET)
    assert load_checkpoint(tmp_path / "checkpoint-last.pt")["partial"] is None and len(metrics(tmp_path)) == 1
    fit(config(fmnist_dir), tmp_path, resume=True, log=QUIET)
    assert_same_run(tmp_path, reference)


def test_second_signal_stops_at_once_without_saving(fmnist_dir, tmp_path, monkeypatch):
    def twice(terms: dict) -> dict:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return terms

    plant(monkeypatch, at_call=3, action=twice)
    with pytest.raises(TrainingInterrupted, match="SIGINT: stopped without saving") as info:
        fit(config(fmnist_dir), tmp_path, log=QUIET)
    assert info.value.exit_code == 130 and not info.value.saved
    assert load_checkpoint(tmp_path / "checkpoint-last.pt")["global_step"] == 2  # the last periodic one


def test_resume_without_a_checkpoint_says_start_again(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(config(fmnist_dir).as_flat()))  # killed before the first checkpoint
    (out / ".checkpoint-last.pt.abc.tmp").write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(out)]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_of_a_run_saved_before_newer_config_keys(fmnist_dir, reference, tmp_path, monkeypatch):
    """A run folder written by an earlier accord lacks the keys added since (augment_on, sync_bn, compile,
    tensorboard): `--resume` gives them their defaults and continues to the same result."""
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=3, action=send(signal.SIGINT))
        with pytest.raises(TrainingInterrupted):
            fit(config(fmnist_dir), out, log=QUIET)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    for key in ("augment_on", "sync_bn", "compile", "tensorboard"):
        saved.pop(key)
    (out / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert main(["train", "--resume", str(out)]) == 0
    assert_same_run(out, reference)


def test_sighup_saves_the_progress_as_sigterm_does(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    child = start_long_run(fmnist_dir, out)
    try:
        wait_until(lambda: (out / "checkpoint-last.pt").is_file(), child)
        child.send_signal(signal.SIGHUP)  # the terminal closed
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 129, err
    assert "SIGHUP: stopped at" in err
    load_checkpoint(out / "checkpoint-last.pt")
    shutil.rmtree(out)
