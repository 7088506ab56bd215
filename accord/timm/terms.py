"""The loss terms of a view method in timm's log and in ``terms.csv`` beside timm's ``summary.csv``.

timm's loop logs and summarises one number, the total loss, which for AgMax (whose entropy term is negative) can read
as a bug ("Loss: -0.162"). The terms say what it is made of: one line in the log, one row per epoch in the file. The
epoch's means are those of every process (averaged over the process group, as timm's ``reduce_tensor`` averages its
loss), so the file written by the primary process holds the whole run's numbers.

``terms.csv`` goes through accord's one writer (:func:`accord.engine.writer.write_output`): each epoch rewrites the
file atomically with its rows so far, and replaces a ``terms.csv`` only when accord wrote it (a user's file, a
symlink, a FIFO or a folder there is left as it is, with one warning, and the run goes on).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import torch
import torch.distributed as dist

from ..engine.checkpoint import OutputInTheWay, node_kind
from ..engine.writer import OutputExistsError, write_text_output, written_by_accord

TERMS_FILE = "terms.csv"

_logger = logging.getLogger(__name__)


def log_terms(means: dict[str, float], step: int | None = None, epoch: int | None = None) -> str:
    """``Terms (step 50): loss -0.162  ce 2.301  entropy -2.30  l1 0.01``."""
    where = f"epoch {epoch}" if epoch is not None else f"step {step}"
    return f"Terms ({where}): " + "  ".join(f"{name} {value:#.4g}" for name, value in means.items())


def group_means(means: dict[str, float], device: torch.device | None = None) -> dict[str, float]:
    """``means`` averaged over the process group (every process must call this; alone: as they are)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not means:
        return means
    values = torch.tensor(list(means.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    values /= dist.get_world_size()
    return dict(zip(means, values.tolist(), strict=True))


def write_terms(means: dict[str, float], epoch: int, output_dir: str | Path) -> Path | None:
    """Add the epoch's row to ``output_dir/terms.csv`` (rows of later epochs, from a run resumed earlier, are
    dropped); returns the file, or ``None`` when a file accord did not write is in the way (one warning)."""
    path = Path(output_dir) / TERMS_FILE
    try:
        rows = [row for row in _own_rows(path) if int(str(row["epoch"])) < epoch]
        rows.append({"epoch": epoch, **means})
        names = ["epoch", *dict.fromkeys(name for row in rows for name in row if name != "epoch")]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return write_text_output(path, text.getvalue(), option="")
    except (OutputExistsError, OutputInTheWay):
        kind = node_kind(path)
        _logger.warning(f"{path} is {kind} that accord did not write: left as it is, the terms go to the log only")
        return None


def _own_rows(path: Path) -> list[dict[str, object]]:
    """The rows of the ``terms.csv`` accord wrote at ``path`` (none if there is none; a file accord did not write is
    left to :func:`write_terms`'s check)."""
    if not (path.is_file() and not path.is_symlink() and written_by_accord(path)):
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
