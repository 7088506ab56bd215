"""Every ``log_interval`` updates: where the time went (waiting for data, computing) and the step scalars.

:class:`TimedBatches` wraps an epoch's loader and counts the seconds spent waiting for its batches;
:class:`StepTimer` turns that into the data-wait and compute seconds of each interval. The trainer's
``on_log`` callback receives the interval's scalars (the epoch's running loss means over every process,
images/s over every process, data-wait and compute seconds) and writes them to TensorBoard.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sized
from typing import Generic, TypeVar

T = TypeVar("T")


class TimedBatches(Generic[T]):
    """``batches``, counting in :attr:`wait` the seconds spent waiting for the next one."""

    def __init__(self, batches: Iterable[T]) -> None:
        self.batches, self.wait = batches, 0.0

    def __len__(self) -> int:
        if not isinstance(self.batches, Sized):
            raise TypeError("the batches have no length")
        return len(self.batches)

    def __iter__(self) -> Iterator[T]:
        batches = iter(self.batches)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            self.wait += time.perf_counter() - start
            yield batch


class StepTimer:
    """The data-wait and compute seconds of each interval between two calls of :meth:`interval`."""

    def __init__(self, batches: TimedBatches) -> None:
        self.batches = batches
        self.last, self.last_wait = time.perf_counter(), 0.0

    def interval(self) -> tuple[float, float]:
        """``(data_wait_s, compute_s)`` since the previous call (or the start)."""
        now, wait = time.perf_counter(), self.batches.wait
        waited = wait - self.last_wait
        compute = max(now - self.last - waited, 0.0)
        self.last, self.last_wait = now, wait
        return waited, compute
