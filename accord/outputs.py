"""Guard the output files of ``accord eval``, ``export`` and ``import-agmax``.

An output path that already holds a file is refused unless ``--overwrite`` is given, and the files of a
run folder (its config, metrics, checkpoints, summary, skipped-images list and lock) are never written
over by these commands, ``--overwrite`` or not: only ``accord train`` writes them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .engine.runfiles import LOCK_FILE, RunFolderError, is_run_file_name, nearest_existing_parent


class OutputExistsError(RunFolderError):
    """An output path that must not be written: an existing file without ``--overwrite``, or a run file."""


def is_run_folder(folder: Path) -> bool:
    """A folder that an ``accord train`` run writes into (it has the run's ``config.yaml`` or a checkpoint)."""
    return any((folder / name).is_file() for name in ("config.yaml", "checkpoint-last.pt", "checkpoint-best.pt"))


def check_output(path: str | Path, overwrite: bool, option: str = "--out") -> Path:
    """Return ``path`` if a command may write its output there; else raise :class:`OutputExistsError`
    (one line naming the path and what to do)."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{option} {path}: is a folder; name a file")
    if (is_run_file_name(path.name) or path.name == LOCK_FILE) and is_run_folder(path.parent):
        raise OutputExistsError(
            f"{option} {path}: is a file of the run in {path.parent}; write the output elsewhere "
            "(only `accord train` writes a run's own files)"
        )
    kind = _not_a_regular_file(path)
    if kind:  # --overwrite replaces a regular file only: never a device, FIFO, socket or a link's target
        raise OutputExistsError(f"{option} {path}: is {kind}, not a regular file; name a file to write")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{option} {path}: already exists; use --overwrite to replace it")
    parent = nearest_existing_parent(path)
    if not parent.is_dir():
        raise OutputExistsError(f"{option} {path}: {parent} is a file, not a folder")
    return path


def _not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a plain file (``a symlink``, ``a device``...), else None."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"
