"""The non-finite stop of timm's loop is agreed over torch's own process group (timm's train.py has no accord
``Distributed``): a NaN on one rank stops every rank with that rank's message, before any backward pass."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from accord.step import NonFiniteGuard, NonFiniteLossError, TorchAgreement


def _rank(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        guard = NonFiniteGuard()
        guard.update({"loss": torch.tensor(float("nan") if rank == 1 else 1.0)}, 5)
        try:
            guard.check(dist=TorchAgreement())
            message = "no stop"
        except NonFiniteLossError as e:
            message = str(e)
        torch.save(message, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_both_with_its_message(tmp_path):
    assert not TorchAgreement().enabled  # no process group: each process checks alone
    out = str(tmp_path / "message")
    mp.spawn(_rank, args=(f"file://{tmp_path / 'init'}", out), nprocs=2, join=True)
    messages = [torch.load(f"{out}.{r}") for r in (0, 1)]
    assert (
        messages[0] == messages[1] == "non-finite loss by step 5: loss=nan first went non-finite there (on rank 1 of 2)"
    )


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_one_process_stops_alone(value):
    guard = NonFiniteGuard()
    guard.update({"loss": torch.tensor(1.0), "ce": torch.tensor(value)}, 2)
    with pytest.raises(NonFiniteLossError, match=rf"by step 2: ce={value} first went non-finite there$"):
        guard.check(dist=TorchAgreement())
