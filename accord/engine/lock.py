"""One writer per run folder: an OS file lock (``fcntl.flock``) held while a process trains in it.

The lock is taken on the run folder itself (a file descriptor of the directory), so deleting or replacing
the ``.accord.lock`` file that records the holder's pid cannot let a second writer in. The pid file is
opened with ``O_NOFOLLOW`` and must be a regular file: a symlink there never leads accord to write into
another file. The kernel releases the lock when the holder exits in any way (SIGKILL included), so a
stale lock never blocks a resume. A second process that tries to train in the folder meanwhile is refused
with one line naming the pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from .checkpoint import node_kind
from .runfiles import LOCK_FILE, RUN_MARKER, RunFolderError


def check_pid_file(path: Path) -> None:
    """Refuse (one line naming it) anything at a lock's pid-file path but nothing or a regular file that holds
    a pid (accord's own, left by an earlier holder) or nothing: a symlink, FIFO, socket, device or folder, or a
    file of someone else's."""
    kind = node_kind(path)
    if kind == "a symlink":
        raise RunFolderError(f"{path}: is a symlink; accord's lock file must be a regular file")
    if kind not in (None, "a file"):
        raise RunFolderError(f"{path}: is {kind}, not a regular file; accord's lock file must be one")
    if kind == "a file" and not _holds_a_pid(path):
        raise RunFolderError(f"{path}: is not accord's lock file (it holds something else than a pid)")


def _holds_a_pid(path: Path) -> bool:
    """Whether the regular file ``path`` is a lock's pid file: empty, or a number and a newline."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return True  # gone meanwhile, or unreadable: the open that follows says why
    try:
        text = os.pread(fd, 64, 0)
    finally:
        os.close(fd)
    return text.strip().isdigit() or not text.strip()


class RunLocked(RunFolderError):
    """Another process is training in the run folder."""


class RunLock:
    """``with RunLock(folder):`` holds the folder's lock; :class:`RunLocked` if another process holds it.

    ``doing`` names what the holder does there, for the refusal (``training in this folder``)."""

    def __init__(self, folder: str | Path, name: str = LOCK_FILE, doing: str = "is training in this folder") -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.doing = doing
        self._dir_fd: int | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise RunFolderError(f"{self.folder}: cannot write in this folder ({e.strerror})") from None
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(dir_fd)
            raise RunLocked(
                f"{self.folder}: another accord process (pid {self._holder()}) {self.doing}; "
                "wait for it to finish or stop it first"
            ) from None
        try:
            self._fd = self._open_pid_file()
        except BaseException:
            os.close(dir_fd)  # closing the descriptor releases its lock
            raise
        self._dir_fd = dir_fd
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _open_pid_file(self) -> int:
        """The pid file, created if missing; never through a symlink (:func:`check_pid_file`)."""
        check_pid_file(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as e:
            if os.path.islink(self.path):
                raise RunFolderError(f"{self.path}: is a symlink; accord's lock file must be a regular file") from None
            raise RunFolderError(f"{self.folder}: cannot write in this folder ({e.strerror})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunFolderError(f"{self.path}: is not a regular file; accord's lock file must be one")
        return fd

    def _holder(self) -> str:
        """The pid recorded by the holder, or ``unknown`` (its pid file deleted or unreadable)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return "unknown"
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return "unknown"
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)

    def release(self) -> None:
        for fd in (self._fd, self._dir_fd):
            if fd is not None:
                os.close(fd)  # the directory's lock goes with its descriptor
        self._fd = self._dir_fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def forget_failed_start(folder: Path, created: bool) -> None:
    """Undo a start that failed before the run wrote its marker (``.accord-run.json``): remove this process's
    pid file and, if this process created ``folder`` and nothing else is in it, the folder. A folder that
    holds a run (its marker) is left as it is."""
    if os.path.lexists(folder / RUN_MARKER):
        return
    pid_file = folder / LOCK_FILE
    if node_kind(pid_file) == "a file" and pid_file.read_bytes().strip() == str(os.getpid()).encode():
        pid_file.unlink()
    if created:
        with contextlib.suppress(OSError):  # not empty: someone else's files stay
            folder.rmdir()
