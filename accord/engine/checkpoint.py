"""Atomic run files and checkpoints, loaded with ``torch.load(weights_only=True)``.

Every file of a run folder is written through :func:`replace_atomic`: the bytes go to a temporary file
``.<name>.<random>.tmp`` in the same folder, are flushed and fsync'ed, and the temporary file is renamed
over the real name. A process killed at any moment (SIGKILL included) leaves either the old file or the
new one under the real name, never half of one; at worst an orphaned ``.tmp`` file, which
:func:`remove_stale_temps` deletes when the run is resumed or overwritten.
"""

from __future__ import annotations

import argparse
import errno
import glob
import json
import os
import pickle
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from ..errors import UserError
from .runfolder import RunFolder
from .timm_checkpoint import from_timm, is_timm_checkpoint


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file and the reason."""


class RunFileWriteError(OSError):
    """A file could not be written (a full disk, a read-only folder); the file under its name is intact."""

    def __init__(self, path: Path, error: BaseException) -> None:
        reason = os.strerror(error.errno) if isinstance(error, OSError) and error.errno else str(error)
        reason = reason.strip().splitlines()[0] if reason.strip() else type(error).__name__
        if isinstance(error, RuntimeError):  # torch.save reports a failed write as "enforce fail at ..."
            reason = f"the write failed; {_free_space(path.parent)}"
        elif isinstance(error, OSError) and error.errno == errno.ENOSPC:
            reason = f"{reason}; {_free_space(path.parent)}"
        super().__init__(f"{path}: cannot write ({reason}); the file under that name is unchanged")


class OutputInTheWay(OSError):
    """Something other than a regular file (a symlink, FIFO, socket, device or folder) where accord would write
    a file: it is never replaced, written through or opened; the message names it."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path}: is {kind}, not a regular file; accord writes only regular files, move it away")


def node_kind(path: str | Path) -> str | None:
    """What is at ``path``, not following a symlink: None (nothing), ``a file`` (regular), ``a folder``,
    ``a symlink``, ``a FIFO``, ``a socket``, ``a device``."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    kinds = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symlink"),
             (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a file")


def _failed_write(error: BaseException) -> bool:
    """An error of the file system (not of the data being written): an OSError, or torch's report of one."""
    if isinstance(error, RunFileWriteError):
        return False
    if isinstance(error, OSError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("inline_container" in text or "write failed" in text)


def _free_space(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "is the disk full?"
    return f"{free / 2**20:.1f} MiB free on that disk"


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, as any umask read)
    os.umask(mask)
    return mask


def replace_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync it, then rename it over ``path``.

    The file gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask), so run files
    on a shared file system are readable by the group and others as the user's umask allows. The rename is
    atomic on POSIX; the folder is fsync'ed afterwards so the rename itself survives a
    power cut. On any exception (a signal's included) the temporary file is removed and ``path`` is untouched.
    Anything but a regular file at ``path`` (a symlink, FIFO, socket, device, folder) is never replaced:
    :class:`OutputInTheWay`, naming it.
    """
    path = Path(path)
    kind = node_kind(path)
    if kind not in (None, "a file"):
        raise OutputInTheWay(path, kind)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise RunFileWriteError(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # as open() would create it: mkstemp's 0600 hides run files
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if _failed_write(e):
            raise RunFileWriteError(path, e) from None  # a full disk, a read-only or vanished folder
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` to ``path`` so that a crash leaves either the old file or the new one, never half."""
    replace_atomic(path, lambda f: torch.save(obj, f))


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`save_atomic` does."""
    data = text.encode()
    replace_atomic(path, lambda f: f.write(data))


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``; a ValueError that names the file and the place when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno})") from None


def append_line_atomic(line: str, path: str | Path) -> None:
    """Append one line to a small text file (``metrics.jsonl``) by rewriting it atomically."""
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_text_atomic(old + line.rstrip("\n") + "\n", path)


def remove_stale_temps(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files that a process killed inside :func:`replace_atomic` left for the files
    ``names`` (``.<name>.<random>.tmp``); returns them. Other files, hidden or not, are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted({p for name in names for p in folder.glob(f".{glob.escape(name)}.*.tmp") if p.is_file()})
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_weights_only(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU; any failure becomes one line naming the file and the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: cannot load checkpoint (empty file)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):  # timm's checkpoints hold train.py's args
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated, foreign or unsafe files
        raise CheckpointError(f"{path}: cannot load checkpoint ({_load_failure(e)})") from None


def _load_failure(error: Exception) -> str:
    """torch's reason in one line. Its weights-only message opens by suggesting ``weights_only=False``;
    that is not a fix for a file of unknown origin, so only the unpickler's own reason is kept."""
    text = str(error).strip()
    if "WeightsUnpickler error:" in text:
        detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].strip()
        if detail.startswith("Unsupported global"):  # a pickled object or function: refused, never run
            return f"it holds Python objects, which weights-only loading refuses: {detail.split(' by default')[0]}"
        return f"not a PyTorch checkpoint file: {detail}"
    if isinstance(error, KeyError | EOFError | pickle.UnpicklingError):  # bytes that are no pickle at all
        return f"not a PyTorch checkpoint file: {type(error).__name__} {text}".strip()
    if text.startswith("PytorchStreamReader failed"):  # torch's zip reader: a cut or damaged file
        return f"truncated or damaged file: {text.split('. ')[0]}"
    return text.splitlines()[0] if text else type(error).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an accord checkpoint with ``weights_only=True`` (tensors and plain containers only, no code); a timm
    ``train.py`` checkpoint is taken as one (:mod:`.timm_checkpoint`)."""
    data = load_weights_only(path)
    if is_timm_checkpoint(data):
        data = from_timm(data)
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise CheckpointError(f"{path}: not an accord checkpoint (no model state or config)")
    model, cfg = data["model"], data["config"]
    if not isinstance(model, dict) or not model or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise CheckpointError(f"{path}: not an accord checkpoint (its model state is empty or not tensors)")
    missing = [key for key in ("model", "dataset") if not isinstance(cfg, dict) or key not in cfg]
    if missing:
        raise CheckpointError(f"{path}: not an accord checkpoint (its config has no {' or '.join(missing)})")
    return data


def load_state_checked(
    module: torch.nn.Module | torch.optim.Optimizer, state: Any, path: str | Path, what: str
) -> None:
    """``module.load_state_dict(state)``; a state of another model or method is one line naming the file,
    what it is (``what``: ``this run's ResNet8``) and how the keys differ."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: does not fit {what} (not a state dict)") from None
        own = module.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        shapes = sorted(
            k for k in set(own) & set(state)
            if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
        )  # fmt: skip
        parts = [
            f"{label} {len(keys)} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
            if keys
        ]
        detail = "; ".join(parts) or str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: does not fit {what}: {detail}; is it a checkpoint of another model or method?"
        ) from None


def repair_best_checkpoint(folder: str | Path, last: dict[str, Any]) -> bool:
    """Make ``checkpoint-best.pt`` hold the weights that ``last`` (the loaded ``checkpoint-last.pt``) names
    as the best, when they are ``last``'s own: a run stopped between the two writes of an improving epoch
    by an older accord (which wrote ``last`` first) kept the previous best. Returns whether it rewrote it."""
    best_epoch, epoch = last.get("best_epoch"), last.get("epoch")
    if last.get("partial") is not None or epoch is None or epoch < 0 or best_epoch != epoch:
        return False
    path = RunFolder(folder).best
    try:
        best = load_checkpoint(path) if path.is_file() else None
    except CheckpointError:
        best = None
    if best is not None and best.get("epoch") == epoch and best.get("global_step") == last.get("global_step"):
        return False
    save_atomic(last, path)
    return True


def capture_rng(numpy_rng: np.random.Generator | None, device: torch.device) -> dict[str, Any]:
    """The random states a mid-epoch resume needs, in a ``weights_only``-safe form.

    torch's CPU (and CUDA) generator states are uint8 tensors; a NumPy generator's
    ``bit_generator.state`` is a dict of strings and Python ints (128-bit ints pickle as plain ints).
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": None, "cuda": None}
    if numpy_rng is not None:
        state["numpy"] = numpy_rng.bit_generator.state
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], numpy_rng: np.random.Generator | None, device: torch.device) -> None:
    """Undo :func:`capture_rng`: set torch's (and CUDA's) generators and ``numpy_rng`` to the saved states."""
    torch.set_rng_state(state["torch"])
    if numpy_rng is not None and state.get("numpy") is not None:
        numpy_rng.bit_generator.state = state["numpy"]
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])
