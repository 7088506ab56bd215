"""``checkpoint_keep: N``: the epoch-end checkpoints of the last N epochs, as ``checkpoint-epochE.pt``.

Each is a hard link to the ``checkpoint-last.pt`` written at the end of epoch E (no copy: a later save
replaces ``checkpoint-last.pt`` by a new file and the link keeps the old one), made atomically; older ones
beyond N are deleted. They are run files (:func:`~.runfiles.run_files_in`): ``--overwrite`` removes them
with the rest of the run, and a folder holding them without accord's marker is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

from .runfolder import RunFolder

HISTORY = RunFolder.HISTORY


def history_files(out: Path) -> list[Path]:
    """The folder's ``checkpoint-epochE.pt`` files, oldest epoch first."""
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if (m := HISTORY.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def keep_history(out: Path, epoch: int, keep: int) -> None:
    """Link ``checkpoint-last.pt`` (the end of ``epoch``, 1-based) as ``checkpoint-epoch{epoch}.pt`` and
    delete all but the newest ``keep`` of them; ``keep`` 0 does nothing."""
    if keep <= 0:
        return
    target = RunFolder(out).epoch_checkpoint(epoch)
    temporary = out / f".{target.name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    os.link(RunFolder(out).last, temporary)
    os.replace(temporary, target)
    for old in history_files(out)[:-keep]:
        old.unlink()
