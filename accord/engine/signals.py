"""Stop a run cleanly on SIGINT/SIGTERM/SIGHUP/SIGUSR1: finish the step, write a checkpoint, exit with the
shell's code (128 + the signal's number).

SIGHUP (the terminal closed) is treated as SIGTERM: the progress since the last checkpoint is saved. SIGUSR1
is a scheduler's warning before it preempts or times out a job (Slurm's ``--signal=USR1@120``): the run
saves and exits with 138, which a requeue script can tell from a failure."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from .distributed import launch_command
from .faults import is_lost_process
from .runfolder import RunFolder

if TYPE_CHECKING:
    from .distributed import Distributed

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)
PREEMPTED_EXIT_CODE = 128 + signal.SIGUSR1  # 138: stopped by a scheduler's warning, saved, to be requeued


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run at a step boundary, after writing ``checkpoint-last.pt``.

    ``exit_code`` is the shell convention for a process ended by that signal (130 for SIGINT, 143 for SIGTERM,
    138 for SIGUSR1).
    """

    def __init__(self, signum: int, out: Path, where: str | None) -> None:
        name = signal.Signals(signum).name
        saved = f"stopped at {where}; saved {RunFolder(out).last}" if where else "stopped without saving"
        super().__init__(f"{name}: {saved}; resume with `{launch_command()} train --resume {out}`")
        self.signum, self.out, self.saved = signum, out, where is not None
        self.exit_code = 128 + signum


class StopSignals:
    """While active, the first SIGINT/SIGTERM only sets :attr:`signum` (the loop stops at the next step
    boundary after saving); a second one stops at once with :class:`TrainingInterrupted` (the files on disk
    stay whole: every write is atomic). Previous handlers are restored on exit. Handlers can only be set from
    the main thread; elsewhere this does nothing.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        # a process of the group is lost: torchrun sends the others SIGTERM, which must not end this one before
        # it has said which process was lost (it ends anyway; torchrun's SIGKILL follows if it does not)
        ending = error is not None and is_lost_process(error) and int(os.environ.get("WORLD_SIZE", "1")) > 1
        for s, handler in self._previous.items():  # only torchrun's SIGTERM, only in a torchrun process
            signal.signal(s, signal.SIG_IGN if ending and s == signal.SIGTERM else handler)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            return
        raise TrainingInterrupted(signum, self.out, None)


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave SIGINT/SIGTERM to the main process, which stops the run cleanly."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


class AgreedStop:
    """Whether any process got SIGINT/SIGTERM, agreed on by every process so that all stop at one step.

    Under several processes asking is a collective (every process must ask at the same steps); on GPUs
    it also syncs the host, so :meth:`due` asks only every ``every`` updates.
    """

    def __init__(self, signals: StopSignals, dist: Distributed, every: int = 1) -> None:
        self.signals, self.dist, self.every = signals, dist, every
        self.signum = 0  # the signal every process agreed on (0: none)

    def requested(self) -> bool:
        self.signum = self.dist.max(self.signals.signum or 0)
        return self.signum != 0

    def due(self, step: int) -> bool:
        """After update ``step``: is a stop agreed on? (Asked every ``every`` updates.)"""
        return step % self.every == 0 and self.requested()

    def raise_if_stopped(self, where: str, agreed: bool = False) -> None:
        """Raise :class:`TrainingInterrupted` if a stop is agreed on (``agreed``: already asked)."""
        if (agreed or self.requested()) and self.signum:
            raise TrainingInterrupted(self.signum, self.signals.out, where)
