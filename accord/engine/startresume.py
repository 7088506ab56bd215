"""Start or resume: the command that starts a run in a folder also continues it there.

``accord train --config X --out D`` run again (by hand, by ``torchrun --max-restarts``, by a scheduler's
requeue) looks at ``D`` before training:

- nothing of a run there (no folder, an empty one, only files that are not accord's run files): **start**;
- the same run (its marker, and a ``config.yaml`` equal to the command's resolved config but for
  :data:`~.identity.RESTART_KEYS`, and ``epochs`` that may grow) with a ``checkpoint-last.pt``: **resume**
  from it, exactly as ``--resume D`` does;
- the same run stopped before its first checkpoint: **start it again** (its own files are replaced);
- another run (another config, or files without accord's marker): refuse, naming each key that differs
  and both values.

Under several processes rank 0 decides from the folder and every process takes its answer, so all agree on
start or resume before any of them trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..config import Config, ConfigError, load_saved_config
from .distributed import Distributed
from .identity import config_differences
from .runfiles import RUN_MARKER, RunFolderError, run_files_in
from .runfolder import RunFolder

Mode = Literal["start", "resume", "restart"]


def folder_mode(cfg: Config, out: Path) -> Mode:
    """What the start command does with ``out``: start, resume or restart (start again over its own files);
    :class:`RunFolderError` when ``out`` holds another run."""
    existing = run_files_in(out)
    if not existing:
        return "start"
    marker = out / RUN_MARKER
    if marker.is_symlink() or not marker.is_file():
        raise RunFolderError(
            f"{out}: holds {', '.join(existing)} but no {RUN_MARKER}, so accord cannot tell that a run of its own "
            "wrote them; use another --out, or move them away"
        )
    if not RunFolder(out).config.is_file():  # killed between its marker and its config: nothing trained
        return "restart"
    try:
        saved = load_saved_config(RunFolder(out).config).as_flat()
    except ConfigError as e:
        raise RunFolderError(f"{out} holds a run whose config cannot be read ({e}); use another --out") from None
    differ = config_differences(saved, cfg.as_flat())
    if differ:
        raise RunFolderError(another_run(out, differ, saved, cfg.as_flat()))
    return "resume" if RunFolder(out).last.is_file() else "restart"


def another_run(out: Path, keys: list[str], saved: dict[str, Any], new: dict[str, Any]) -> str:
    """The refusal of a folder that holds another run: every differing key, its value there and here."""
    shown = "; ".join(f"{k}: {saved.get(k)!r} there, {new.get(k)!r} in this command" for k in keys)
    return (
        f"{out} holds another run ({shown}); the same command resumes only its own run - use another --out, "
        f"--overwrite to replace it, or `accord train --resume {out}` to continue that one"
    )


def agree_on_mode(cfg: Config, out: Path, dist: Distributed) -> Mode:
    """:func:`folder_mode` as rank 0 sees it, on every process (a refusal raises on every process)."""
    answer: tuple[str, str] = ("", "")
    if dist.is_main:
        try:
            answer = (folder_mode(cfg, out), "")
        except RunFolderError as e:
            answer = ("", str(e))
    mode, error = dist.gather(answer)[0]
    if error:
        raise RunFolderError(error)
    return mode


def start_or_resume(
    cfg: Config, out: Path, dist: Distributed, resume: bool | None, overwrite: bool, log: Any
) -> tuple[bool, bool]:
    """``(resume, overwrite)`` for :func:`~.trainer.fit`: as given, or (``resume`` None) as the folder says."""
    if resume is not None:
        return resume, overwrite
    if overwrite:
        return False, True
    mode = agree_on_mode(cfg, out, dist)
    if mode == "resume":
        log(f"{out} holds this run: resuming it")
    elif mode == "restart":
        log(f"{out} holds this run, stopped before its first checkpoint: starting it again")
    return mode == "resume", mode == "restart"
