"""Every file name of a run folder, in one place: :class:`RunFolder` owns the paths of a run.

A run folder holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one line per epoch; the same
as a table in ``summary.csv``), ``checkpoint-last.pt`` and ``checkpoint-best.pt`` (best validation top-1),
``checkpoint-epochE.pt`` (``checkpoint_keep``), ``skipped-images.txt`` when some images could not be read
and, once finished, ``summary.json``; beside them ``.accord-run.json`` (the run's id, written first),
``.accord.lock`` (held while a process trains there) and ``tensorboard/``. No other module spells these names:
they ask a :class:`RunFolder` for the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


@dataclass(frozen=True)
class RunFolder:
    """The paths of the run in ``path``."""

    path: Path

    CONFIG: ClassVar[str] = "config.yaml"
    METRICS: ClassVar[str] = "metrics.jsonl"
    LAST: ClassVar[str] = "checkpoint-last.pt"
    BEST: ClassVar[str] = "checkpoint-best.pt"
    SUMMARY: ClassVar[str] = "summary.json"
    SKIPPED: ClassVar[str] = "skipped-images.txt"  # one "path<TAB>reason" line per unreadable image
    SUMMARY_CSV: ClassVar[str] = "summary.csv"  # the epochs of metrics.jsonl as a table (.summarycsv)
    MARKER: ClassVar[str] = ".accord-run.json"  # the run's id, written first: proof the run files are accord's
    LOCK: ClassVar[str] = ".accord.lock"  # held (flock) by the process training in the folder; see .lock
    TENSORBOARD: ClassVar[str] = "tensorboard"
    STEPS: ClassVar[str] = "steps"  # <run>/tensorboard/steps: the scalars of every log_interval updates
    #: The kept epoch-end checkpoints (:mod:`.history`).
    HISTORY: ClassVar[re.Pattern[str]] = re.compile(r"checkpoint-epoch(\d+)\.pt")
    #: The files a run writes (besides the marker, the lock and the kept epoch checkpoints).
    FILES: ClassVar[tuple[str, ...]] = (CONFIG, METRICS, LAST, BEST, SUMMARY, SKIPPED, SUMMARY_CSV)

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def last(self) -> Path:
        return self.path / self.LAST

    @property
    def best(self) -> Path:
        return self.path / self.BEST

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def skipped(self) -> Path:
        return self.path / self.SKIPPED

    @property
    def summary_csv(self) -> Path:
        return self.path / self.SUMMARY_CSV

    @property
    def marker(self) -> Path:
        return self.path / self.MARKER

    @property
    def lock(self) -> Path:
        return self.path / self.LOCK

    @property
    def tensorboard(self) -> Path:
        return self.path / self.TENSORBOARD

    def epoch_checkpoint(self, epoch: int) -> Path:
        """``checkpoint-epochE.pt``: the checkpoint kept at the end of ``epoch`` (1-based)."""
        return self.path / f"checkpoint-epoch{epoch}.pt"

    def is_finished(self) -> bool:
        """Whether the run wrote its ``summary.json``."""
        return self.summary.is_file()

    def can_resume(self) -> bool:
        """Whether the folder holds a run that ``--resume`` continues: its config and last checkpoint."""
        return self.last.is_file() and self.config.is_file()
