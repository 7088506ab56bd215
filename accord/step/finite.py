"""The non-finite stop of every training path: the first step whose loss terms are NaN or infinite, agreed on by
every process, as one error naming the step and the terms."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the terms."""


class Agreement(Protocol):
    """What the check needs of the processes training together (``accord.engine.Distributed`` has it)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def world_size(self) -> int: ...

    def max(self, value: int) -> int: ...

    def gather(self, obj: Any) -> list[Any]: ...


class NonFiniteGuard:
    """Find the first update whose loss terms are not finite, exactly, without a host sync per step.

    :meth:`update` records on the device, for each term, the first (1-based) global step at which it was
    NaN or infinite; :meth:`check` reads that back (one sync) and raises :class:`NonFiniteLossError`
    naming the step and the terms that went bad there. On the CPU a read costs nothing, so callers check
    every step; on a GPU they check every ``log_interval`` steps and before any checkpoint is written.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.first: Tensor | None = None  # per term: first bad step, 0 while finite
        self.values: Tensor | None = None  # per term: its value at that step

    @staticmethod
    def bad_terms(terms: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        return values, ~torch.isfinite(values)

    def update(self, terms: dict[str, Tensor], step: int) -> None:
        values, bad = self.bad_terms(terms)
        if self.first is None or self.values is None or self.names != list(terms):
            self.names = list(terms)
            self.first = torch.zeros(len(values), dtype=torch.long, device=values.device)
            self.values = torch.zeros_like(values)
        new = bad & (self.first == 0)
        self.first = torch.where(new, step, self.first)
        self.values = torch.where(new, values, self.values)

    def check(self, epoch: int | None = None, dist: Agreement | None = None) -> None:
        """Raise :class:`NonFiniteLossError` if a term went non-finite; under several processes (``dist``)
        every process raises when any one saw it, each with the message of the first such rank: a rank that
        left alone would leave the others waiting in their next collective (gloo: a reset connection)."""
        message = self._message(epoch)
        if dist is not None and dist.enabled and dist.max(int(message is not None)):
            messages = dist.gather(message)
            rank = next(r for r, m in enumerate(messages) if m is not None)
            message = f"{messages[rank]} (on rank {rank} of {dist.world_size})"
        if message is not None:
            raise NonFiniteLossError(message)

    def _message(self, epoch: int | None) -> str | None:
        if self.first is None or not bool((self.first > 0).any()):
            return None
        first, values = self.first.tolist(), self.values.tolist() if self.values is not None else []
        step = min(s for s in first if s > 0)
        detail = ", ".join(f"{n}={v}" for n, s, v in zip(self.names, first, values, strict=True) if s == step)
        where = f" (epoch {epoch + 1})" if epoch is not None else ""
        return f"non-finite loss by step {step}{where}: {detail} first went non-finite there"


class TorchAgreement:
    """:class:`Agreement` over torch's default process group, for loops that have no ``Distributed`` of their
    own (timm's ``train.py``): one all-reduce per check when a group of more than one process is active."""

    @property
    def enabled(self) -> bool:
        import torch.distributed as dist

        return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    @property
    def world_size(self) -> int:
        import torch.distributed as dist

        return dist.get_world_size() if self.enabled else 1

    def max(self, value: int) -> int:
        import torch.distributed as dist

        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
        flag = torch.tensor([value], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def gather(self, obj: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(out, obj)
        return out
