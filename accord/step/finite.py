"""Every non-finite check of training, in one module: the first step whose loss terms are NaN or infinite
(:class:`NonFiniteGuard`), a step skipped under ``nonfinite: skip`` (:func:`skip_if_nonfinite`), the epoch's
means (:func:`check_finite_means`) and the weights and buffers before a checkpoint is written
(:func:`check_finite_state`); under several processes every process stops together, with one error.

A finite loss does not mean finite weights: an enormous learning rate can turn BatchNorm's ``running_var``
infinite in a forward pass whose loss is still a number, and that state would be saved as the "last good"
checkpoint. :func:`check_finite_state` reads every floating-point parameter and buffer of the given modules as one
infinity norm each (``torch.linalg.vector_norm``, which propagates NaN and Inf; measured as fast as the private
fused ``_foreach_norm`` on ResNet-50's tensors on the CPU), then one ``isfinite`` over the stacked norms (one host
sync), and names the bad tensors only when there are some.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch
from torch import Tensor, nn

MAX_NAMED = 5  # a state error names at most this many tensors (and counts the rest)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the terms."""


class NonFiniteStateError(NonFiniteLossError):
    """A weight or buffer became NaN or infinite; no checkpoint was written from that state."""


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


def skip_if_nonfinite(
    terms: dict[str, Tensor], model: nn.Module, buffers: list[Tensor], step: int, log: Callable[[str], None]
) -> bool:
    """``nonfinite: skip``: if a term is NaN/Inf, restore the BatchNorm buffers and report the step."""
    values, bad = NonFiniteGuard.bad_terms(terms)
    if not bool(bad.any()):
        return False
    with torch.no_grad():
        for b, saved in zip(model.buffers(), buffers, strict=True):
            b.copy_(saved)
    names = [f"{n}={v}" for n, v, b in zip(terms, values.tolist(), bad.tolist(), strict=True) if b]
    log(f"step {step}: non-finite loss ({', '.join(names)}); step skipped")
    return True


def check_finite_means(terms: dict[str, float], step: int) -> None:
    """Raise :class:`NonFiniteLossError` if an epoch's mean loss term is not finite."""
    bad = {k: v for k, v in terms.items() if not math.isfinite(v)}
    if bad:
        detail = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(f"non-finite loss by step {step}: {detail}")


def _float_tensors(modules: Mapping[str, nn.Module]) -> dict[str, Tensor]:
    tensors = {}
    for prefix, module in modules.items():
        for name, value in module.state_dict(keep_vars=True).items():
            if isinstance(value, Tensor) and value.is_floating_point() and value.numel():
                tensors[f"{prefix}{name}"] = value.detach()
    return tensors


def nonfinite_tensors(modules: Mapping[str, nn.Module]) -> list[str]:
    """Names (``prefix + state-dict key``) of the tensors of ``modules`` that hold a NaN or an Inf."""
    tensors = _float_tensors(modules)
    if not tensors:
        return []
    norms = [torch.linalg.vector_norm(t, float("inf")).float() for t in tensors.values()]
    finite = torch.isfinite(torch.stack(norms))
    if bool(finite.all()):
        return []
    return [name for name, ok in zip(tensors, finite.tolist(), strict=True) if not ok]


def check_finite_state(modules: Mapping[str, nn.Module], where: str, dist: Agreement | None = None) -> None:
    """Raise :class:`NonFiniteStateError` if a weight or buffer of ``modules`` is not finite; under ``dist``
    on every process when any one found one, so that all stop together."""
    bad = nonfinite_tensors(modules)
    if dist is not None and dist.enabled and dist.max(int(bool(bad))) and not bad:
        bad = ["(on another process)"]
    if bad:
        named = ", ".join(bad[:MAX_NAMED]) + (f" and {len(bad) - MAX_NAMED} more" if len(bad) > MAX_NAMED else "")
        total = len(_float_tensors(modules))
        raise NonFiniteStateError(
            f"non-finite weights or buffers {where} ({len(bad)} of {total} tensors: {named}); not saved"
        )


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
