"""The one writer of every file a command writes besides a run's own: checked, atomic, never a surprise.

:func:`write_output` is how ``accord eval``, ``export``, ``import-agmax``, ``plot``, ``report``, ``bench``
and ``grid`` write their files (a run's own files go through :func:`.checkpoint.replace_atomic` alone, which
refuses the same nodes). Before a byte is written, :func:`check_output` refuses, in one line naming the path:

- a symlink, FIFO, socket, device or folder at the path (``--overwrite`` or not: it replaces regular files only,
  and never writes through a link or blocks on a FIFO);
- a run's own files (``config.yaml``, the checkpoints, ``.accord-run.json``...) in a run folder: only
  ``accord train`` writes those;
- a regular file that accord did not write, unless ``--overwrite``;
- a path under a file, or in a folder it cannot write.

A file accord wrote is one whose name and SHA-256 are recorded in the folder's ``.accord-outputs.json``
(written by :func:`write_output` after each file): re-running ``accord plot RUN`` replaces its own
``curves.png``, but a ``curves.png`` the user put there, or edited since, needs ``--overwrite``. The file
itself is written by :func:`.checkpoint.replace_atomic`: a temporary file in the same folder, renamed over
the name, with the mode the user's umask gives.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .checkpoint import OutputInTheWay, node_kind, replace_atomic
from .runfiles import LOCK_FILE, RUN_FILES, RUN_MARKER, RunFolderError, is_run_file_name, nearest_existing_parent
from .runfolder import RunFolder
from .tensorboard import TENSORBOARD_DIR

OUTPUTS_RECORD = ".accord-outputs.json"  # in each folder accord wrote outputs to: name -> SHA-256 of its bytes
#: The names in a run folder that only ``accord train`` writes (and the record of outputs, which only this
#: module writes).
RUN_OWNED = (*RUN_FILES, RUN_MARKER, LOCK_FILE, TENSORBOARD_DIR, OUTPUTS_RECORD)


class OutputExistsError(RunFolderError):
    """An output path that must not be written: an existing file without ``--overwrite``, or a run file."""


def is_run_folder(folder: Path) -> bool:
    """A folder that an ``accord train`` run writes into (its marker, config or a checkpoint is there)."""
    names = (RUN_MARKER, RunFolder.CONFIG, RunFolder.LAST, RunFolder.BEST)
    return any(os.path.lexists(folder / name) for name in names)


def check_output(path: str | Path, overwrite: bool, option: str = "--out", ours: bool = False) -> Path:
    """Return ``path`` if a command may write its output there; else raise :class:`OutputExistsError`
    (one line naming the path and what to do). ``ours``: the caller has its own proof that a file there is
    accord's (a grid record it has read), so it is replaced without ``--overwrite``."""
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    kind = node_kind(path)
    if kind == "a folder":
        raise OutputExistsError(f"{where}: is a folder; name a file")
    if path.name == OUTPUTS_RECORD or (
        (path.name in RUN_OWNED or is_run_file_name(path.name)) and is_run_folder(path.parent)
    ):
        raise OutputExistsError(
            f"{where}: is a file of the run in {path.parent}; write the output elsewhere "
            "(only `accord train` writes a run's own files)"
        )
    if kind is not None and kind != "a file":  # --overwrite replaces a regular file only, never a link's target
        raise OutputExistsError(f"{where}: is {kind}, not a regular file; name a file to write")
    if kind == "a file" and not (overwrite or ours or written_by_accord(path)):
        raise OutputExistsError(f"{where}: already exists; use --overwrite to replace it (accord did not write it)")
    parent = nearest_existing_parent(path)
    if not parent.is_dir():
        raise OutputExistsError(f"{where}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputExistsError(f"{where}: {parent} is not writable")
    return path


def write_output(
    path: str | Path,
    write: Callable[[IO[bytes]], object],
    *,
    overwrite: bool = False,
    option: str = "--out",
    ours: bool = False,
) -> Path:
    """Check ``path`` (:func:`check_output`), create its folder, write it atomically with ``write(f)`` and
    record it as accord's in the folder's ``.accord-outputs.json``. Returns ``path``."""
    path = check_output(path, overwrite, option, ours)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputExistsError(f"{path}: cannot create its folder ({e.strerror})") from None
    replace_atomic(path, write)
    _record(path)
    return path


def write_text_output(path: str | Path, text: str, **options: object) -> Path:
    """:func:`write_output` of ``text`` in UTF-8."""
    data = text.encode()
    return write_output(path, lambda f: f.write(data), **options)  # type: ignore[arg-type]


def open_append(path: str | Path) -> IO[str]:
    """``open(path, "a")`` for a log accord keeps adding to (a grid cell's ``train.log``), but never through a
    symlink and only onto a regular file: anything else at the path is :class:`.checkpoint.OutputInTheWay`."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError:
        kind = node_kind(path)
        if kind not in (None, "a file"):
            raise OutputInTheWay(path, kind) from None
        raise
    kind = node_kind(path)
    if kind != "a file":
        os.close(fd)
        raise OutputInTheWay(path, kind or "gone")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a")


def written_by_accord(path: Path) -> bool:
    """Whether ``path`` holds the bytes accord last wrote there (recorded in the folder's outputs record)."""
    digest = _read_record(path.parent).get(path.name)
    return isinstance(digest, str) and digest == _sha256(path)


def _sha256(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_record(folder: Path) -> dict[str, object]:
    path = folder / OUTPUTS_RECORD
    if node_kind(path) != "a file":
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    files = record.get("files") if isinstance(record, dict) else None
    return files if isinstance(files, dict) else {}


def _record(path: Path) -> None:
    """Note ``path``'s bytes as accord's in its folder's record (a record in the way is left alone)."""
    record_path = path.parent / OUTPUTS_RECORD
    if node_kind(record_path) not in (None, "a file"):
        return
    files = _read_record(path.parent) | {path.name: _sha256(path)}
    text = json.dumps({"files": dict(sorted(files.items()))}, indent=1) + "\n"
    replace_atomic(record_path, lambda f: f.write(text.encode()))
