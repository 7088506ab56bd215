"""The loss terms of a view method in timm's log and in ``terms.csv`` beside timm's ``summary.csv``.

timm's loop logs and summarises one number, the total loss, which for AgMax (whose entropy term is negative) can read
as a bug ("Loss: -0.162"). The terms say what it is made of: one line in the log, one row per epoch in the file.
"""

from __future__ import annotations

import csv
from pathlib import Path

TERMS_FILE = "terms.csv"


def log_terms(means: dict[str, float], step: int | None = None, epoch: int | None = None) -> str:
    """``Terms (step 50): loss -0.162  ce 2.301  entropy -2.30  l1 0.01``."""
    where = f"epoch {epoch}" if epoch is not None else f"step {step}"
    return f"Terms ({where}): " + "  ".join(f"{name} {value:#.4g}" for name, value in means.items())


def write_terms(means: dict[str, float], epoch: int, output_dir: str | Path) -> Path:
    """Append the epoch's row to ``output_dir/terms.csv`` (the header first when the file is new); returns it."""
    path = Path(output_dir) / TERMS_FILE
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *means])
        if new:
            writer.writeheader()
        writer.writerow({"epoch": epoch, **means})
    return path
