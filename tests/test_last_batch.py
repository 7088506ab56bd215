"""``drop_last``: the epoch's incomplete last batch dropped or kept as one smaller update, in one process and
shared over several, with the step count, the schedule and mid-epoch resume following it."""

from __future__ import annotations

import json
import math
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interrupted_runs import assert_same_run, plant, send
from tiny_runs import QUICK, QUIET
from torch.utils.data import DataLoader

from accord.config import load_config
from accord.engine import fit, load_checkpoint
from accord.engine.sampling import EpochSampler, check_last_batch, epoch_permutation, epoch_steps

pytestmark = pytest.mark.usefixtures("one_thread")


@given(n=st.integers(0, 300), batch=st.integers(1, 64), drop_last=st.booleans())
def test_epoch_steps_is_the_loaders_batch_count(n, batch, drop_last):
    assert epoch_steps(n, batch, drop_last) == len(DataLoader(range(n), batch_size=batch, drop_last=drop_last))


@settings(max_examples=60, deadline=None)
@given(
    world=st.integers(2, 4),
    share=st.integers(1, 8),
    full=st.integers(0, 5),
    rest=st.integers(0, 31),
    start_step=st.integers(0, 6),
    seed=st.integers(0, 1000),
)
def test_ranks_share_the_kept_last_batch(world, share, full, rest, start_step, seed):
    batch = world * share
    rest = rest % batch
    if 0 < rest < world:
        rest = 0  # refused: see test_a_last_batch_smaller_than_the_processes_is_refused
    n = full * batch + rest
    start = min(start_step, epoch_steps(n, batch, False)) * batch
    order = epoch_permutation(n, seed).tolist()
    shards = [
        EpochSampler(n, seed, start, rank=r, world_size=world, batch_size=batch, drop_last=False) for r in range(world)
    ]
    loaders = [list(DataLoader(list(s), batch_size=share)) for s in shards]  # each process's loader batches
    assert [len(list(s)) for s in shards] == [len(s) for s in shards]
    steps = epoch_steps(n, batch, False) - start // batch
    assert all(len(batches) == steps for batches in loaders)
    for step in range(steps):  # the processes' rows of a step are exactly the one-process batch of that step
        joined = [i for batches in loaders for i in batches[step].tolist()]
        first = start + step * batch
        assert joined == order[first : first + batch]
        sizes = [len(batches[step]) for batches in loaders]
        assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_a_last_batch_smaller_than_the_processes_is_refused():
    with pytest.raises(ValueError, match="last batch of 2 images, fewer than the 4 processes.*drop_last: true"):
        check_last_batch(34, 8, False, 4)
    check_last_batch(34, 8, True, 4)  # dropped: nothing to share
    check_last_batch(36, 8, False, 4)  # one image each
    check_last_batch(33, 8, False, 1)  # one process takes it whole


def tiny(fmnist_dir, **extra):
    overrides = {
        **QUICK,
        "epochs": 2,
        "train_subset": 150,  # 4 full batches and one of 22 images
        "drop_last": False,
        "checkpoint_every_steps": 2,
    }
    return load_config("FashionMNIST-ResNet8-standard-agmax", {**overrides, "data_dir": str(fmnist_dir), **extra})


@pytest.fixture(scope="module")
def kept(fmnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("kept")
    fit(tiny(fmnist_dir), out, log=QUIET)
    return out


def test_the_kept_last_batch_is_one_more_update_an_epoch(fmnist_dir, kept, tmp_path):
    assert load_checkpoint(kept / "checkpoint-last.pt")["global_step"] == 10  # 2 epochs x (4 + 1)
    dropped = tmp_path / "dropped"
    fit(tiny(fmnist_dir, drop_last=True), dropped, log=QUIET)
    assert load_checkpoint(dropped / "checkpoint-last.pt")["global_step"] == 8


@pytest.mark.parametrize("at_call", [3, 5])  # inside a full batch, and inside the kept last batch
def test_resume_inside_an_epoch_with_a_kept_last_batch(fmnist_dir, kept, tmp_path, monkeypatch, at_call):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        plant(patch, at_call=at_call, action=send(signal.SIGINT))
        with pytest.raises(Exception, match="SIGINT"):
            fit(tiny(fmnist_dir), out, log=QUIET)
    fit(tiny(fmnist_dir), out, resume=True, log=QUIET)
    assert_same_run(out, kept)


def test_the_schedule_spans_the_kept_updates(kept):
    lrs = [json.loads(line)["lr"] for line in (kept / "metrics.jsonl").read_text().splitlines()]
    base = load_config("FashionMNIST-ResNet8-standard-agmax", {"lr_batch": 32, "batch_size": 32}).optim.lr
    # cosine over 2 x 5 updates: the first epoch's last update is t = 4 of 10 (with the last batch dropped, t = 3
    # of 8 would give 0.69 of the base)
    assert lrs[0] == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * 4 / 10)), rel=1e-6)


@pytest.mark.slow
def test_two_processes_share_the_kept_last_batch_as_one_process_takes_it(fmnist_dir, tmp_path):
    """360 training images at batch 32: 11 full batches and one of 8, 4 per process; the 2-process run's
    losses, accuracies and weights are the 1-process run's to float drift (test_distributed.assert_same_run)."""
    from test_distributed import accord_train, run_args
    from test_distributed import assert_same_run as assert_same_distributed

    args = ("drop_last=false",)
    accord_train(tmp_path, 1, run_args("FashionMNIST-ResNet8-standard-agmax", fmnist_dir, tmp_path / "one", *args))
    accord_train(tmp_path, 2, run_args("FashionMNIST-ResNet8-standard-agmax", fmnist_dir, tmp_path / "two", *args))
    for out in ("one", "two"):
        assert load_checkpoint(tmp_path / out / "checkpoint-last.pt")["global_step"] == 3 * 12
    assert_same_distributed(tmp_path / "one", tmp_path / "two")


def test_a_subset_smaller_than_the_batch_trains_when_the_last_batch_is_kept(fmnist_dir, tmp_path):
    from accord.config import ConfigError

    with pytest.raises(ConfigError, match="train_subset 20 is smaller than batch_size 32.*drop_last: false"):
        tiny(fmnist_dir, train_subset=20, drop_last=True)
    fit(tiny(fmnist_dir, train_subset=20, epochs=1), tmp_path / "run", log=QUIET)
    assert load_checkpoint(tmp_path / "run" / "checkpoint-last.pt")["global_step"] == 1
