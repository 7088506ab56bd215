"""The data order of an epoch: a pure function of (seed, epoch), shardable over processes, resumable at any batch.

With ``world_size`` processes and a global batch of ``B`` images, process ``r`` takes rows
``[r*B/W, (r+1)*B/W)`` of every global batch of the one shuffled order. The processes' batches of a step
are therefore exactly the single-process batch of that step, split in ``W`` parts: a run on ``W``
processes sees the same images in the same steps as a run on one. Samples are sharded, not views: the
views of an image are made by the process that loads it, so the agreement term always sees its pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's data order (and of its torch and worker streams)."""
    return seed * 100_003 + epoch


def epoch_permutation(n: int, seed: int) -> torch.Tensor:
    """The epoch's data order: exactly the one ``DataLoader(shuffle=True, generator=manual_seed(seed))``
    draws (the loader takes its workers' base seed from the generator first, then ``randperm``)."""
    g = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g)


class EpochSampler(Sampler[int]):
    """An epoch's shuffled order (:func:`epoch_permutation`) from position ``start`` on.

    With ``world_size > 1``, only this ``rank``'s share of each full global batch of ``batch_size``
    images (the last, incomplete global batch is dropped, as ``drop_last`` does in one process).
    ``start`` is a position in the global order and must fall on a global batch boundary then.
    """

    def __init__(
        self, n: int, seed: int, start: int = 0, *, rank: int = 0, world_size: int = 1, batch_size: int = 1
    ) -> None:
        if world_size > 1 and (batch_size % world_size or start % batch_size):
            raise ValueError(
                f"a global batch of {batch_size} does not split over {world_size} processes from position {start}"
            )
        self.n, self.seed, self.start = n, seed, start
        self.rank, self.world_size, self.batch_size = rank, world_size, batch_size

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, self.seed)[self.start :]
        if self.world_size > 1:
            steps = len(order) // self.batch_size
            share = self.batch_size // self.world_size  # not -1: a run stopped after its last step has 0 steps
            order = order[: steps * self.batch_size].view(steps, self.world_size, share)[:, self.rank].reshape(-1)
        yield from order.tolist()

    def __len__(self) -> int:
        remaining = max(self.n - self.start, 0)
        if self.world_size == 1:
            return remaining
        return remaining // self.batch_size * (self.batch_size // self.world_size)
