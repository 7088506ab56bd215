"""Batch statistics over all processes: a loss term that depends on the whole batch (AgMax's batch
marginals) must see the global batch under DistributedDataParallel, not each process's share."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def sum_over_processes(x: Tensor) -> Tensor:
    """``x`` summed over the processes of the default group, differentiably; ``x`` itself in one process.

    The backward of the all-reduce sums the processes' gradients, and DDP then averages the parameter
    gradients over the ``W`` processes, so each process's share gets exactly the gradient of the global term.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(x)
    return x
