"""Several processes with torch.distributed, launched by ``torchrun``: who am I, and the few collectives
the trainer needs.

``torchrun --nproc_per_node N -m accord train ...`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`process_group` joins the group with NCCL when CUDA is available and gloo
otherwise, and leaves it at the end. In one process (no ``WORLD_SIZE``, or 1) every collective here is
the identity, so the trainer has a single code path.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from .rendezvous import join_group

DEFAULT_TIMEOUT = 300.0  # seconds; the config's dist_timeout


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group; ``device`` is where its collectives' tensors live."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run's files and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def on_main(self, fn: Callable[[], None], failed: Callable[[str], Exception]) -> None:
        """Call ``fn`` on rank 0 while the other processes wait for it, as a barrier does; if it raises, every
        process raises: rank 0 its own exception, the others ``failed(message)``. (A bare barrier would leave
        them waiting for a rank that has left, until the process group's timeout.)"""
        error: Exception | None = None
        if self.is_main:
            try:
                fn()
            except Exception as e:  # every kind: the others must hear of it before this rank leaves
                error = e
        message = self.gather(None if error is None else str(error) or type(error).__name__)[0]
        if error is not None:
            raise error
        if message is not None:
            raise failed(message)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of ``tensor`` over the processes (a new tensor; no gradient)."""
        if not self.enabled:
            return tensor
        total = tensor.detach().to(self.device, copy=True)
        dist.all_reduce(total)
        return total.to(tensor.device)

    def max(self, value: int) -> int:
        """The largest of the processes' ``value`` (e.g. 'did any process get a stop signal')."""
        if not self.enabled:
            return value
        t = torch.tensor(value, dtype=torch.long, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t)

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order (picklable objects)."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out


def launched_world_size() -> int:
    """The number of processes ``torchrun`` started (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launch_command() -> str:
    """How this process was started, as a command a hint can name: ``accord``, or under ``torchrun`` the
    ``torchrun`` command line with this launch's process count (and node count, across nodes)."""
    world = launched_world_size()
    if world <= 1:
        return "accord"
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    nodes = f"--nnodes {world // per_node} " if per_node < world else ""
    return f"torchrun {nodes}--nproc_per_node {per_node} -m accord"


#: Every process of the group joined last, in rank order: ``(host name, process id)``; what names a lost process.
PEERS: list[tuple[str, int]] = []


def _remember_peers() -> None:
    PEERS[:] = Distributed(dist.get_rank(), dist.get_world_size()).gather((socket.gethostname(), os.getpid()))


@contextlib.contextmanager
def process_group(timeout: float = DEFAULT_TIMEOUT) -> Iterator[Distributed]:
    """Join the process group ``torchrun`` set up (a group already initialised by the caller is reused and
    left open); in one process yield the single-process :class:`Distributed`.

    Joining waits at most ``timeout`` seconds for every process (and so does each collective after it):
    rank 0 says so in one line first, and a group that does not form is a :class:`~.rendezvous.GroupError`
    naming the rendezvous, instead of a silent wait (see :mod:`.rendezvous`)."""
    if launched_world_size() <= 1 and not (dist.is_available() and dist.is_initialized()):
        yield Distributed()
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        join_group("nccl" if cuda else "gloo", int(os.environ.get("RANK", "0")), launched_world_size(), timeout)
    _remember_peers()
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), local_rank, device)
    finally:
        if owned:
            dist.destroy_process_group()
