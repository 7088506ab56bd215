"""The command that starts a run also resumes it: by hand, under ``torchrun --max-restarts``, after a requeue.

The folder decides (:mod:`accord.engine.startresume`): nothing there starts, the same run resumes, another
run is refused naming what differs. Under torchrun a kill -9 of one rank mid-epoch, half way through a
checkpoint write, or at an epoch's end is survived by torchrun's restart running the same command, and the
run ends with the weights of an uninterrupted one, bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from restart_runs import (
    REPO,
    assert_same_weights,
    c10d_node,
    child_env,
    finish,
    free_port,
    one_node,
    tiny_config,
    torchrun,
    train_args,
)
from tiny_runs import CHILD_ENV, QUIET, wait_until

from accord.cli import main
from accord.config import KEYS, load_config
from accord.engine import fit, load_checkpoint
from accord.engine.identity import RESTART_KEYS, config_differences
from accord.engine.runfiles import RUN_FILES, RUN_MARKER, RunFolderError
from accord.engine.signals import PREEMPTED_EXIT_CODE, STOP_SIGNALS, TrainingInterrupted
from accord.engine.startresume import folder_mode

pytestmark = pytest.mark.usefixtures("one_thread")


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(sorted(KEYS)), value=st.one_of(st.integers(), st.text(max_size=5), st.none()))
def test_every_key_but_the_restart_keys_makes_another_run(key, value):
    """Generated over every config key: a changed value is a difference unless the key may change on a restart."""
    flat = load_config("FashionMNIST-ResNet8-standard").as_flat()
    differ = config_differences(flat, {**flat, key: value})
    extended = key == "epochs" and isinstance(value, int) and value > flat["epochs"]  # more epochs: the same run
    assert differ == ([] if key in RESTART_KEYS or value == flat[key] or extended else [key])


def test_restart_keys_are_config_keys():
    assert RESTART_KEYS <= set(KEYS)


def fake_run(out: Path, cfg, checkpoint: bool = True) -> None:
    """A folder as a run of ``cfg`` leaves it (the checkpoint's contents do not matter to the decision)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_MARKER).write_text('{"run_id": "x"}\n')
    (out / "config.yaml").write_text(yaml.safe_dump(cfg.as_flat()))
    if checkpoint:
        (out / "checkpoint-last.pt").write_bytes(b"")


def test_the_folder_decides_start_resume_restart(fmnist_dir, tmp_path):
    cfg = tiny_config(fmnist_dir)
    assert folder_mode(cfg, tmp_path / "absent") == "start"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("mine")  # not a run file
    assert folder_mode(cfg, tmp_path / "empty") == "start"
    fake_run(tmp_path / "same", cfg)
    assert folder_mode(cfg, tmp_path / "same") == "resume"
    fake_run(tmp_path / "early", cfg, checkpoint=False)  # stopped before its first checkpoint
    assert folder_mode(cfg, tmp_path / "early") == "restart"
    moved = tiny_config(tmp_path, workers=3, checkpoint_every_steps=7, dist_timeout=9)  # data moved here
    assert folder_mode(moved, tmp_path / "same") == "resume"
    assert folder_mode(tiny_config(fmnist_dir, epochs=5), tmp_path / "same") == "resume"  # extended


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"seed": 3}, "seed: 0 there, 3 in this command"),
        ({"lr": 0.5, "epochs": 2}, "lr: 0.1 there, 0.5 in this command"),
        ({"epochs": 0}, None),
    ],
)
def test_another_run_is_refused_naming_each_key_and_both_values(fmnist_dir, tmp_path, changes, shown):
    fake_run(tmp_path / "run", tiny_config(fmnist_dir, epochs=1))
    if changes == {"epochs": 0}:  # fewer epochs than the run has is another run too
        fake_run(tmp_path / "run", tiny_config(fmnist_dir, epochs=3))
        changes, shown = {"epochs": 1}, "epochs: 3 there, 1 in this command"
    with pytest.raises(RunFolderError, match="holds another run") as info:
        folder_mode(tiny_config(fmnist_dir, **changes), tmp_path / "run")
    assert shown in str(info.value)
    assert all(key in str(info.value) for key in changes if key != "epochs" or "epochs:" in shown)


@pytest.mark.parametrize("name", RUN_FILES)
def test_run_files_without_the_marker_are_refused_never_touched(fmnist_dir, tmp_path, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_text("someone else's")
    with pytest.raises(RunFolderError, match=f"no {RUN_MARKER}"):
        folder_mode(tiny_config(fmnist_dir), out)
    assert (out / name).read_text() == "someone else's"


def start(data_dir: Path, out: Path, **extra: object) -> int:
    """The start command, in this process."""
    return main(train_args(data_dir, out, **extra))


def test_the_start_command_resumes_a_stopped_run_and_ends_as_an_uninterrupted_one(fmnist_dir, tmp_path, capsys):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert start(fmnist_dir, whole, epochs=3) == 0

    def stop_after_epoch_1(line: str) -> None:
        if line.startswith("epoch 1/"):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):  # the same run, stopped after its first epoch...
        fit(tiny_config(fmnist_dir, epochs=3), cut, resume=None, log=stop_after_epoch_1)
    capsys.readouterr()
    assert start(fmnist_dir, cut, epochs=3, workers=1) == 0  # ...continued by the start command
    assert "holds this run: resuming it" in capsys.readouterr().out
    assert_same_weights(whole, cut)
    assert start(fmnist_dir, cut, epochs=3) == 0  # a finished run: nothing more to train
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 3
    assert start(fmnist_dir, cut, epochs=3, seed=1) == 2  # another run: refused, nothing written
    assert "seed: 0 there, 1 in this command" in capsys.readouterr().err
    assert load_checkpoint(cut / "checkpoint-last.pt")["config"]["seed"] == 0


def test_resume_flag_still_continues_a_run(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    fit(tiny_config(fmnist_dir, epochs=1), out, log=QUIET)
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_sigusr1_is_a_stop_signal_with_its_own_exit_code():
    assert signal.SIGUSR1 in STOP_SIGNALS and PREEMPTED_EXIT_CODE == 138


def test_sigusr1_saves_and_exits_138_then_the_same_command_finishes(fmnist_dir, tmp_path):
    """A scheduler's warning before preemption: the run saves at the next step and exits 138; the requeued
    start command resumes it to the end."""
    out = tmp_path / "run"
    run = {"epochs": 20, "train_subset": 32, "eval_every": 10, "checkpoint_every_steps": 0}
    proc = subprocess.Popen([sys.executable, "-m", "accord", *train_args(fmnist_dir, out, **run)], cwd=REPO,
                            env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_until(lambda: (out / "checkpoint-last.pt").is_file(), proc)
    proc.send_signal(signal.SIGUSR1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE, err
    assert "SIGUSR1: stopped at" in err
    assert load_checkpoint(out / "checkpoint-last.pt")["epoch"] < 19
    assert start(fmnist_dir, out, **run) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 20


#: kill -9 of one rank: in its 3rd training step (mid-epoch, after the step-2 checkpoint), half way through
#: rank 0's 4th checkpoint write (the step-6 one, in epoch 2), and as the first epoch's evaluation starts.
KILLS = [("step 3", 1), ("save 4", 0), ("evaluation", 1)]


@pytest.fixture(scope="module")
def uninterrupted(fmnist_dir, tmp_path_factory) -> Path:
    """The run torchrun trains with nothing killed."""
    tmp = tmp_path_factory.mktemp("whole")
    output = finish([torchrun(train_args(fmnist_dir, tmp / "run"), child_env(tmp), tmp, *one_node())])
    (tmp / "torchrun.log").write_text(output)
    return tmp / "run"


@pytest.mark.slow
def test_step_lines_under_torchrun_show_the_loss_of_every_process(uninterrupted):
    """The last step line of an epoch shows the epoch line's loss: the running mean over both processes."""
    output = (uninterrupted.parent / "torchrun.log").read_text()
    for epoch in (1, 2):
        step = re.search(rf"^epoch {epoch} step 4/4: .*?loss (\S+)", output, re.M)
        whole = re.search(rf"^epoch {epoch}/2: .*?loss (\S+)", output, re.M)
        assert step and whole and step.group(1) == whole.group(1), output


@pytest.mark.slow
@pytest.mark.parametrize(("kill_at", "rank"), KILLS)
def test_torchrun_restarts_the_start_command_after_a_kill(fmnist_dir, tmp_path, uninterrupted, kill_at, rank):
    out = tmp_path / "run"
    proc = torchrun(train_args(fmnist_dir, out), child_env(tmp_path, kill_at, rank), tmp_path, *one_node())
    output = finish([proc])
    assert (tmp_path / "killed").exists(), output  # the rank was killed, and torchrun restarted the group
    assert "holds this run" in output, output
    assert_same_weights(uninterrupted, out)


@pytest.mark.slow
@pytest.mark.parametrize(("kill_at", "rank"), KILLS[:1])
def test_two_c10d_nodes_restart_the_start_command_after_a_kill(fmnist_dir, tmp_path, uninterrupted, kill_at, rank):
    """Two torchrun "nodes" of one process each meet at a c10d rendezvous on 127.0.0.1; rank 1 is killed."""
    out, port = tmp_path / "run", free_port()
    env = child_env(tmp_path, kill_at, rank)
    nodes = [torchrun(train_args(fmnist_dir, out), env, tmp_path, *c10d_node(port)) for _ in range(2)]
    output = finish(nodes)
    assert (tmp_path / "killed").exists(), output
    assert_same_weights(uninterrupted, out)
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2
