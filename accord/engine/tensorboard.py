"""TensorBoard scalars beside a run's ``metrics.jsonl`` (optional: needs ``pip install tensorboard``).

:class:`ScalarLog` writes each ``metrics.jsonl`` record as scalars in ``<run>/tensorboard/``, with the
record's (1-based) ``epoch`` as the global step, and (``write_step``, in ``<run>/tensorboard/steps/``) the
running scalars every ``log_interval`` updates, with the update as the global step.

A resumed run re-writes the epochs after its checkpoint;
opening the log with ``purge_step`` set to the first of them makes TensorBoard hide the events an
interrupted run wrote at those steps, as ``metrics.jsonl`` is truncated to the checkpoint's epoch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .runfolder import RunFolder

TENSORBOARD_DIR = RunFolder.TENSORBOARD
STEPS_DIR = RunFolder.STEPS  # <run>/tensorboard/steps: the scalars of every log_interval updates, by global step

MISSING_MESSAGE = (
    "TensorBoard logging needs the tensorboard package: pip install tensorboard (or pip install accord[tensorboard])"
)

# metrics.jsonl key -> TensorBoard tag, besides the "train" terms (logged as train/<term>)
_TAGS = {
    "val_top1": "val/top1",
    "val_top5": "val/top5",
    "test_top1": "test/top1",
    "test_top5": "test/top5",
    "lr": "lr",
    "images_per_s": "speed/images_per_s",
    "views_per_s": "speed/views_per_s",
}


def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` imports (the tensorboard package is installed and recent enough)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class ScalarLog:
    """Write ``metrics.jsonl`` records as TensorBoard scalars in ``out / TENSORBOARD_DIR``.

    Args:
        out: the run folder.
        purge_step: when resuming, the first epoch that will be written again; TensorBoard then hides the
            events at steps ``>= purge_step`` left by the interrupted run. ``None`` for a fresh run.
    """

    def __init__(self, out: str | Path, purge_step: int | None = None, folder: str = "") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ModuleNotFoundError(MISSING_MESSAGE) from e
        self.log_dir = Path(out) / TENSORBOARD_DIR / folder
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    def write_epoch(self, record: dict[str, Any]) -> None:
        """Write one ``metrics.jsonl`` record at ``global_step=record["epoch"]``; NaN values are skipped."""
        step = record["epoch"]
        scalars = {f"train/{term}": value for term, value in record.get("train", {}).items()}
        scalars |= {tag: record[key] for key, tag in _TAGS.items() if key in record}
        for tag, value in scalars.items():
            if not _is_nan(value):
                self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()

    def write_step(self, step: int, values: dict[str, float], lr: float) -> None:
        """The scalars of update ``step`` (:mod:`.steplog`): loss terms as ``train/<term>``, the lr, images/s,
        data-wait and compute seconds as ``speed/...``."""
        speed = ("images_per_s", "data_wait_s", "compute_s")
        scalars = {f"speed/{k}" if k in speed else f"train/{k}": v for k, v in values.items()} | {"lr": lr}
        for tag, value in scalars.items():
            if not _is_nan(value):
                self.writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> ScalarLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
