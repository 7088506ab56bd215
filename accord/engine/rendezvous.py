"""Joining a torchrun group: a bounded wait, a line saying what it waits for, and a fresh key space per start.

torchrun's workers meet in a key-value store (``MASTER_ADDR:MASTER_PORT``). After ``--max-restarts`` (or a
c10d re-rendezvous) the restarted workers find the same store holding the keys of the previous round: a
rank that reads its peer's address before the peer wrote the new one connects to a dead port, and the
round fails after gloo's connect timeout. So the processes first agree on a *generation* number, new at
every start, and the process group keeps its keys under it:

- rank 0 takes the next number from a counter in the store (never one of an earlier round);
- every other rank writes a hello with an id of its own (a uuid: never stale) and waits for rank 0's
  answer under that id; rank 0 answers every hello it sees until each rank confirms under the new number.

Every wait is bounded by ``timeout`` seconds; a group that does not form is a :class:`GroupError` naming the
rendezvous and the ranks that did not answer.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
import uuid

import torch.distributed as dist

POLL_S = 0.05


class GroupError(ConnectionError):
    """The processes of a torchrun group did not all join (or answer) within the timeout."""


def rendezvous() -> str:
    """Where the processes meet: torchrun's ``MASTER_ADDR:MASTER_PORT``."""
    return f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"


def join_group(backend: str, rank: int, world: int, timeout: float) -> None:
    """``init_process_group`` under a fresh generation of keys, bounded by ``timeout`` seconds (announced
    by rank 0 on stderr)."""
    if rank == 0:
        print(f"accord: waiting up to {timeout:g} s for {world} processes (rendezvous {rendezvous()})", file=sys.stderr)
    limit = datetime.timedelta(seconds=timeout)
    try:
        agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's agent serves the store
        store = dist.TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, rank == 0 and not agent, limit
        )
        generation = agree_on_generation(store, rank, world, timeout)
        dist.init_process_group(
            backend, store=dist.PrefixStore(f"accord/{generation}", store), rank=rank, world_size=world, timeout=limit
        )
    except (RuntimeError, TimeoutError) as e:  # torch's DistStoreError, gloo's connect errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GroupError(
            f"rank {rank}: the {world} processes did not all join within {timeout:g} s "
            f"(rendezvous {rendezvous()}): {first}; check that every node started, or raise dist_timeout"
        ) from None


def agree_on_generation(store: dist.Store, rank: int, world: int, timeout: float) -> int:
    """A number new at this start, the same on every rank (see the module docstring)."""
    if rank != 0:
        me = uuid.uuid4().hex
        store.set(f"accord/hello/{rank}", me)
        generation = int(store.get(f"accord/answer/{me}"))  # waits up to the store's timeout
        store.set(f"accord/ready/{generation}/{rank}", "1")
        return generation
    generation = store.add("accord/generation", 1)
    answered: set[bytes] = set()
    waiting = list(range(1, world))
    deadline = time.monotonic() + timeout
    while waiting:
        for r in waiting:
            if store.check([f"accord/hello/{r}"]) and (hello := store.get(f"accord/hello/{r}")) not in answered:
                store.set(f"accord/answer/{hello.decode()}", str(generation))
                answered.add(hello)
        waiting = [r for r in waiting if not store.check([f"accord/ready/{generation}/{r}"])]
        if waiting and time.monotonic() > deadline:
            raise GroupError(
                f"rank 0: ranks {', '.join(map(str, waiting))} of {world} did not join within {timeout:g} s "
                f"(rendezvous {rendezvous()}); check that every node started, or raise dist_timeout"
            )
        time.sleep(POLL_S if waiting else 0)
    return generation
