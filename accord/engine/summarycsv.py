"""``summary.csv``: the run's epochs as a table (timm's ``summary.csv``), beside ``metrics.jsonl``.

One row per line of ``metrics.jsonl``, rewritten from it after every epoch (so a resume that drops the
lines of epochs after its checkpoint drops their rows too); nested values are flattened (``train_loss``,
``raw_val_top1``), and a key that appears from some epoch on gets a column, empty before.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .checkpoint import write_text_atomic
from .runfiles import read_metrics
from .runfolder import RunFolder


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"loss": 1}}`` -> ``{"train_loss": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}_")
        else:
            flat[key if key.startswith(prefix) else f"{prefix}{key}"] = value  # train_top1, not train_train_top1
    return flat


def write_summary_csv(out: Path) -> None:
    """Write ``out/summary.csv`` from ``out/metrics.jsonl``."""
    rows = [flatten(record) for record in read_metrics(out)]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(text.getvalue(), RunFolder(out).summary_csv)
