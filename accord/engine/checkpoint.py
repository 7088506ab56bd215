"""Atomic checkpoint files, loaded with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file and the reason."""


def save_atomic(obj: Any, path: str | Path) -> None:
    """Write ``obj`` to ``path`` so that a crash leaves either the old file or the new one, never half.

    The data goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed over
    ``path`` (atomic on POSIX); the folder is fsync'ed so the rename itself survives a power cut.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only, no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated, foreign or unsafe files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot load checkpoint ({reason})") from None
    if not isinstance(data, dict) or "model" not in data or "config" not in data:
        raise CheckpointError(f"{path}: not an accord checkpoint (no model state or config)")
    return data
