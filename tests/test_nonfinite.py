"""A non-finite loss stops the run naming the step and the term and keeps the last good checkpoint (or, with
``nonfinite: skip``, skips the step); under several processes a non-finite loss on one rank stops every rank with
its message, and rank 0's epoch-end writes hand a failure to the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from child_hooks import hook_env
from interrupted_runs import NAME, OVERRIDES, QUIET, config, metrics, plant, poison
from tiny_runs import train_args

from accord.cli import main
from accord.engine import fit, load_checkpoint
from accord.engine.loop import NonFiniteGuard, NonFiniteLossError

pytestmark = pytest.mark.usefixtures("one_thread")


class TwoRanks:
    """A stand-in for :class:`~accord.engine.distributed.Distributed`: this process is ``rank`` of two, and
    ``other`` is what the other rank holds (its message, or None)."""

    enabled, world_size = True, 2

    def __init__(self, rank: int, other: str | None) -> None:
        self.rank, self.other = rank, other

    def max(self, value: int) -> int:
        return max(value, int(self.other is not None))

    def gather(self, obj):
        return [obj, self.other] if self.rank == 0 else [self.other, obj]


def test_a_finite_rank_stops_with_the_other_ranks_message():
    guard = NonFiniteGuard()
    guard.update({"loss": torch.tensor(1.0)}, 1)
    guard.check(0, TwoRanks(0, None))  # nobody saw one: no stop
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss by step 2 .*: loss=nan .* \(on rank 1 of 2\)"):
        guard.check(0, TwoRanks(0, "non-finite loss by step 2 (epoch 1): loss=nan first went non-finite there"))


def test_the_rank_that_saw_it_names_itself():
    guard = NonFiniteGuard()
    guard.update({"loss": torch.tensor(float("inf"))}, 3)
    with pytest.raises(NonFiniteLossError, match=r"step 3 \(epoch 1\): loss=inf .* \(on rank 1 of 2\)"):
        guard.check(0, TwoRanks(1, None))


#: Makes rank 1's loss NaN from its third update on, in the processes torchrun starts.
NAN_ON_RANK_1 = """
import os


def poison_the_step(module):
    forward, calls = module.ViewStep.forward, [0]

    def poisoned(self, x, target, *args, **extra):
        terms, logits = forward(self, x, target, *args, **extra)
        calls[0] += 1
        if calls[0] >= 3:
            terms["loss"] = terms["loss"] * float("nan")
        return terms, logits

    module.ViewStep.forward = poisoned


if os.environ.get("RANK") == "1":
    patch_on_import("accord.step.module", poison_the_step)
"""


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_with_the_real_message(fmnist_dir, tmp_path):
    env = hook_env(tmp_path / "hook", NAN_ON_RANK_1, {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    args = train_args(fmnist_dir, tmp_path / "run", epochs=3, train_subset=128)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "accord", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "non-finite loss by step 3" in output and "(on rank 1 of 2)" in output, output
    assert output.count("stopped, the last good checkpoint is kept") == 2, output  # both ranks, the same line
    assert "Connection reset" not in output, output  # torchrun's own report of a failed child follows


def test_planted_nan_stops_the_run_naming_step_and_term(fmnist_dir, tmp_path, monkeypatch):
    plant(monkeypatch, at_call=4, action=poison)  # step 4; the last checkpoint was written after step 2
    with pytest.raises(NonFiniteLossError, match=r"by step 4 \(epoch 1\): loss=nan, ce=nan first went") as info:
        fit(config(fmnist_dir), tmp_path, log=QUIET)
    assert "entropy" not in str(info.value)
    ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_planted_nan_through_the_cli_exits_1(fmnist_dir, tmp_path, monkeypatch, capsys):
    plant(monkeypatch, at_call=7, action=poison)
    sets = [f"--set={k}={json.dumps(v)}" for k, v in OVERRIDES.items()]
    args = ["train", "--config", NAME, "--data-dir", str(fmnist_dir), *sets, "--out", str(tmp_path)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "non-finite loss by step 7 (epoch 2)" in err and "last good checkpoint is kept" in err
    assert load_checkpoint(tmp_path / "checkpoint-last.pt")["global_step"] == 6
    assert len(metrics(tmp_path)) == 1


def test_nonfinite_skip_skips_the_step_and_keeps_batchnorm_clean(fmnist_dir, tmp_path, monkeypatch):
    plant(monkeypatch, at_call=4, action=poison)
    lines: list[str] = []
    fit(config(fmnist_dir, nonfinite="skip", epochs=1), tmp_path, log=lines.append)
    assert any(line.startswith("step 4: non-finite loss (loss=nan, ce=nan)") for line in lines)
    (record,) = metrics(tmp_path)
    assert record["train"]["skipped_steps"] == 1 and np.isfinite(record["train"]["loss"])
    ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_guard_finds_the_first_bad_step_from_accumulated_flags():
    guard = NonFiniteGuard()  # on a GPU, flags accumulate on the device and are read every log_interval
    finite = {"loss": torch.tensor(1.0), "ce": torch.tensor(0.5), "l1": torch.tensor(0.1)}
    guard.update(finite, 1)
    guard.update({**finite, "l1": torch.tensor(float("inf"))}, 2)
    guard.update({**finite, "loss": torch.tensor(float("nan")), "ce": torch.tensor(float("nan"))}, 3)
    guard.update(finite, 4)
    with pytest.raises(NonFiniteLossError, match=r"by step 2: l1=inf first went non-finite there"):
        guard.check()
