"""Differentiable sums over processes, for batch statistics of the global batch under DistributedDataParallel
(AgMax's batch marginals in :mod:`accord.losses`, global-batch BatchNorm in :mod:`accord.models`)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def distributed() -> bool:
    """A process group of more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient: every process's input gets the sum over
    processes of the gradients of the (identical) outputs. Written here because torch's differentiable
    ``torch.distributed.nn.functional.all_reduce`` is deprecated and its successor is private."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def sum_over_processes(x: Tensor) -> Tensor:
    """``x`` summed over the processes of the default group, differentiably; ``x`` itself in one process.

    The backward of the all-reduce sums the processes' gradients, and DDP then averages the parameter
    gradients over the ``W`` processes, so each process's share gets exactly the gradient of the global term.
    """
    return _SumOverProcesses.apply(x) if distributed() else x
