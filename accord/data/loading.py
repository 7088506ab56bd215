"""Every data loader accord makes, with a bound on how long a batch may take.

A loader worker that stops (SIGSTOP, a hung network file system, a deadlock in a decoder) would leave the main
process waiting for its batch forever: torch checks that workers are alive, not that they make progress. So
every loader with workers gets ``timeout`` (the config key ``loader_timeout``): a batch that has not come after
that many seconds raises torch's ``DataLoader timed out`` error, which the command line reports in one line
(:mod:`accord.engine.faults`). A worker that dies is reported by torch itself, at once.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader, Dataset

#: Seconds a loader worker may take to deliver one batch (the default of the config key ``loader_timeout``):
#: far more than any batch of a classification data set takes, even on a loaded machine.
DEFAULT_LOADER_TIMEOUT = 300.0
#: The largest ``loader_timeout`` accepted: a day.
MAX_LOADER_TIMEOUT = 86_400.0


def data_loader(
    dataset: Dataset, *, workers: int, timeout: float = DEFAULT_LOADER_TIMEOUT, **kwargs: Any
) -> DataLoader:
    """torch's ``DataLoader`` of ``dataset`` with ``workers`` worker processes; with workers, a batch that takes
    longer than ``timeout`` seconds raises instead of waiting forever (in one process there is no one to wait
    for: torch allows no timeout there)."""
    if not 0 < timeout <= MAX_LOADER_TIMEOUT:
        raise ValueError(f"loader timeout must be in (0, {MAX_LOADER_TIMEOUT:.0f}] seconds, got {timeout}")
    return DataLoader(dataset, num_workers=workers, timeout=timeout if workers > 0 else 0, **kwargs)
