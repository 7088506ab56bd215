"""Round three: under several processes a non-finite loss on one rank stops every rank with its message,
and rank 0's epoch-end writes hand a failure to the others."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from tiny_runs import REPO, train_args

from accord.engine.loop import NonFiniteGuard, NonFiniteLossError


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


#: Makes rank 1's loss NaN from its third update on, in the processes torchrun starts (a .pth-free hook:
#: this folder goes first on PYTHONPATH, and Python imports ``sitecustomize`` at start-up).
NAN_ON_RANK_1 = """
import os, sys, importlib.abc, importlib.util

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "accord.step.module" or os.environ.get("RANK") != "1":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            forward, calls = module.ViewStep.forward, [0]

            def poisoned(self, x, target, *args, **extra):
                terms, logits = forward(self, x, target, *args, **extra)
                calls[0] += 1
                if calls[0] >= 3:
                    terms["loss"] = terms["loss"] * float("nan")
                return terms, logits

            module.ViewStep.forward = poisoned

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Hook())
"""


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_with_the_real_message(fmnist_dir, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(NAN_ON_RANK_1))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{hook}:{REPO}", "PYTHONUNBUFFERED": "1"}
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
