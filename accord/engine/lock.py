"""One writer per run folder: an OS file lock (``fcntl.flock``) held while a process trains in it.

The lock is taken on ``.accord.lock`` in the run folder, which records the holder's pid. The kernel
releases it when the holder exits in any way (SIGKILL included), so a stale lock never blocks a resume.
A second process that tries to train in the folder meanwhile is refused with one line naming the pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .runfiles import LOCK_FILE, RunFolderError


class RunLocked(RunFolderError):
    """Another process is training in the run folder."""


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock; :class:`RunLocked` if another process holds it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunFolderError(f"{self.folder}: cannot write in this folder ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLocked(
                f"{self.folder}: another accord process (pid {holder}) is training in this folder; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
