"""The faults that stop a command from outside its own code, each recognised in one place.

A data loader worker that dies (killed, out of memory) or stalls (stopped, hung in I/O; bounded by
``loader_timeout``, see :mod:`accord.data.loading`), a process of a ``torchrun`` group that is lost (killed,
its host gone), and an interrupt reach accord as torch's ``RuntimeError`` (raised wherever the main process
happens to be: torch reports a dead worker from its SIGCHLD handler) or as ``KeyboardInterrupt``.
:func:`classify` turns each into a :class:`Fault`: what happened in one line and the exit code; the command
line adds what the command leaves behind and how to go on (:mod:`accord.stops`). Every other error is not a
fault and passes through unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
import time
from dataclasses import dataclass

from .distributed import PEERS

#: The kinds of fault, in the order :func:`classify` tries them.
FAULT_KINDS: tuple[str, ...] = ("worker died", "worker stalled", "lost process", "interrupted")

_WORKER = re.compile(r"DataLoader worker \(pids?(?:\(s\))? ([\d, ]+)\) (.*)", re.DOTALL)
_STALLED = re.compile(r"DataLoader timed out after ([\d.]+) seconds")
_PEER_REASON = re.compile(r"Connection (?:reset|closed) by peer|Broken pipe|Socket Timeout|Connection refused")
_PEER_LOST = re.compile(rf"{_PEER_REASON.pattern}|NCCL communicator was aborted|ProcessGroupGloo|gloo/transport")

#: How long a process whose peer closed the connection waits to see which process of this host has ended.
PEER_EXIT_SECONDS = 3.0


@dataclass(frozen=True)
class Fault:
    """A recognised fault: its kind (one of :data:`FAULT_KINDS`), what happened (one line) and the exit code."""

    kind: str
    what: str
    exit_code: int


def classify(error: BaseException) -> Fault | None:
    """The :class:`Fault` ``error`` reports, or None when it is not one of :data:`FAULT_KINDS`."""
    if isinstance(error, KeyboardInterrupt):
        return Fault("interrupted", "interrupted", 130)
    if not isinstance(error, RuntimeError):
        return None
    message = str(error)
    if match := _WORKER.search(message):
        pids, detail = match.group(1).strip(), _first_sentence(match.group(2))
        worker = "workers" if "," in pids else "worker"
        return Fault("worker died", f"a data loader {worker} (pid {pids}) {_died(detail)}{_on_rank()}", 1)
    if match := _STALLED.search(message):
        seconds = float(match.group(1))
        what = f"no batch from the data loader's workers in {seconds:g} s (config key loader_timeout): a worker stalled"
        return Fault("worker stalled", what + _on_rank(), 1)
    if is_lost_process(error):
        return Fault("lost process", _lost_process(message), 1)
    return None


def is_lost_process(error: BaseException) -> bool:
    """Whether ``error`` says that a process of this process's ``torchrun`` group is gone (a cheap test)."""
    return bool(PEERS) and isinstance(error, RuntimeError) and _PEER_LOST.search(str(error)) is not None


def end_loader_workers() -> None:
    """Kill this process's loader workers, at the end of a command a fault stopped: a stopped one would keep the
    interpreter's exit waiting for it (torch's polite SIGTERM stays pending in a stopped process). torch's SIGCHLD
    handler goes first (it would raise again, anywhere, for each worker ended here)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in multiprocessing.active_children():
        child.kill()
        child.join()


def _first_sentence(text: str) -> str:
    return text.strip().split(". ")[0].rstrip(". ")


def _died(detail: str) -> str:
    """torch's 'is killed by signal: Killed' / 'exited unexpectedly with exit code 1' as a clause."""
    if detail.startswith("is killed by signal"):
        return "was" + detail[2:]
    return detail or "exited unexpectedly"


def _on_rank() -> str:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return f" on rank {os.environ.get('RANK', '0')} of {world}" if world > 1 else ""


def _lost_process(message: str) -> str:
    """Which process of the group is gone: those on this host whose process has ended, by rank."""
    world, me = len(PEERS), os.getpid()
    host = next((h for h, pid in PEERS if pid == me), None)
    deadline = time.monotonic() + PEER_EXIT_SECONDS
    while True:  # a killed process closes its connections a moment before it has ended
        gone = [rank for rank, (h, pid) in enumerate(PEERS) if h == host and pid != me and not _alive(pid)]
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    reason = _PEER_REASON.search(message)
    seen = f" ({reason.group(0)})" if reason else ""
    if gone:
        ranks = ", ".join(str(r) for r in gone)
        return f"lost rank {ranks} of {world}: its process ended{seen}"
    return f"lost another process of the group of {world}{seen}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its parent, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
