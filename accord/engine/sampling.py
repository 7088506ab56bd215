"""The data order of an epoch: a pure function of (seed, epoch), shardable over processes, resumable at any batch.

With ``world_size`` processes and a global batch of ``B`` images, process ``r`` takes rows
``[r*B/W, (r+1)*B/W)`` of every global batch of the one shuffled order. The processes' batches of a step
are therefore exactly the single-process batch of that step, split in ``W`` parts: a run on ``W``
processes sees the same images in the same steps as a run on one. Samples are sharded, not views: the
views of an image are made by the process that loads it, so the agreement term always sees its pairs.

The epoch's last, incomplete batch is dropped (``drop_last``) or kept as one smaller update; kept, it is
split over the processes in ``W`` contiguous parts whose sizes differ by at most one image, so it needs at
least one image per process (:func:`check_last_batch`). Each process's loss is a mean over its own part, so
when the parts differ DDP's average of them weighs that one update's images slightly unevenly (a part of
``k`` images against one of ``k + 1``); the images and their order are still one process's.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from ..errors import UserError


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's data order (and of its torch and worker streams)."""
    return seed * 100_003 + epoch


def epoch_permutation(n: int, seed: int) -> torch.Tensor:
    """The epoch's data order: exactly the one ``DataLoader(shuffle=True, generator=manual_seed(seed))``
    draws (the loader takes its workers' base seed from the generator first, then ``randperm``)."""
    g = torch.Generator().manual_seed(seed)
    torch.empty((), dtype=torch.int64).random_(generator=g)
    return torch.randperm(n, generator=g)


def epoch_steps(n: int, batch_size: int, drop_last: bool = True) -> int:
    """Updates in an epoch of ``n`` images: the full batches, and the incomplete last one unless ``drop_last``."""
    full, rest = divmod(n, batch_size)
    return full + (0 if drop_last or rest == 0 else 1)


def check_last_batch(n: int, batch_size: int, drop_last: bool, world_size: int) -> None:
    """ValueError when a kept last batch has fewer images than there are processes to share it."""
    rest = n % batch_size
    if not drop_last and world_size > 1 and 0 < rest < world_size:
        raise UserError(
            f"drop_last: false keeps a last batch of {rest} images, fewer than the {world_size} processes; "
            "set drop_last: true, or a batch_size that leaves none or at least one image per process"
        )


class EpochSampler(Sampler[int]):
    """An epoch's shuffled order (:func:`epoch_permutation`) from position ``start`` on.

    With ``world_size > 1``, only this ``rank``'s share of each full global batch of ``batch_size``
    images, and with ``drop_last=False`` its contiguous part of the incomplete last batch (in one process the
    loader's ``drop_last`` drops or keeps that batch). ``start`` is a position in the global order and must
    fall on a global batch boundary then.
    """

    def __init__(
        self,
        n: int,
        seed: int,
        start: int = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int = 1,
        drop_last: bool = True,
    ) -> None:
        if world_size > 1 and (batch_size % world_size or start % batch_size):
            raise ValueError(
                f"a global batch of {batch_size} does not split over {world_size} processes from position {start}"
            )
        check_last_batch(n, batch_size, drop_last, world_size)
        self.n, self.seed, self.start = n, seed, start
        self.rank, self.world_size, self.batch_size, self.drop_last = rank, world_size, batch_size, drop_last

    def __iter__(self) -> Iterator[int]:
        yield from self._rows(epoch_permutation(self.n, self.seed)[self.start :]).tolist()

    def _rows(self, order: torch.Tensor) -> torch.Tensor:
        """This process's rows of the global ``order``."""
        if self.world_size == 1:
            return order
        steps = len(order) // self.batch_size
        share = self.batch_size // self.world_size  # not -1: a run stopped after its last step has 0 steps
        rows = order[: steps * self.batch_size].view(steps, self.world_size, share)[:, self.rank].reshape(-1)
        rest = order[steps * self.batch_size :]
        if self.drop_last or len(rest) == 0:
            return rows
        return torch.cat([rows, torch.tensor_split(rest, self.world_size)[self.rank]])

    def __len__(self) -> int:
        return len(self._rows(torch.arange(max(self.n - self.start, 0))))
