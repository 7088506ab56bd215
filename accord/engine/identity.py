"""A run's identity: a run id made when the run starts, kept in the folder's marker and in every checkpoint.

``.accord-run.json`` (``{"run_id": ...}``) is written into a run folder before anything else of the run.
It proves that the folder's run files are accord's own (so ``--overwrite`` may remove them; a folder
without it is refused), and it ties the checkpoints to the run: ``--resume`` refuses a checkpoint, best or
last, whose run id or config differs from the folder's, naming what differs, instead of continuing
another run's weights or a hand-edited config as if they were this run's.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from ..config import ConfigError, config_from_saved
from .checkpoint import CheckpointError, write_text_atomic
from .runfiles import RUN_MARKER, RunFolderError
from .runfolder import RunFolder


def new_run_id() -> str:
    return uuid.uuid4().hex


def write_marker(out: Path, run_id: str) -> None:
    write_text_atomic(json.dumps({"run_id": run_id}) + "\n", out / RUN_MARKER)


def read_run_id(out: Path) -> str | None:
    """The folder's run id; None in a folder without a marker (a run of an accord before run ids)."""
    path = out / RUN_MARKER
    if path.is_symlink() or not path.exists():
        return None
    try:
        run_id = json.loads(path.read_text()).get("run_id")
    except (OSError, ValueError, AttributeError):
        run_id = None
    if not isinstance(run_id, str):
        raise RunFolderError(f"{path}: damaged (no run id); accord cannot tell which run this folder holds")
    return run_id


#: Keys a restarted run may change without becoming another run: where the data is found (the same images
#: at another path, e.g. a node's local disk after a requeue), how many loader processes read it, how often
#: the run logs, checkpoints and waits for its processes, and how many images an evaluation batch holds.
#: None of them changes a trained weight.
RESTART_KEYS = frozenset(
    {
        "data_dir",
        "workers",
        "eval_batch_size",
        "log_interval",
        "tensorboard",
        "wandb",
        "checkpoint_every_steps",
        "checkpoint_keep",
        "dist_timeout",
    }
)


def config_differences(checkpoint: dict[str, Any], folder: dict[str, Any]) -> list[str]:
    """The keys whose values differ between a checkpoint's flat config and the folder's, sorted; the
    :data:`RESTART_KEYS` never differ. More ``epochs`` in the folder's is no difference: the run was
    extended (``--resume DIR --epochs N``)."""
    keys = sorted(
        k for k in set(checkpoint) | set(folder) if k not in RESTART_KEYS and checkpoint.get(k) != folder.get(k)
    )
    extended = isinstance(folder.get("epochs"), int) and folder["epochs"] > checkpoint.get("epochs", 0)
    return [k for k in keys if not (k == "epochs" and extended)]


def check_identity(path: Path, ckpt: dict[str, Any], run_id: str | None, config: dict[str, Any]) -> None:
    """Refuse the checkpoint ``ckpt`` (read from ``path``) unless it belongs to the run of this folder:
    the same run id (``run_id``, from the marker) and the same config (``config``, from ``config.yaml``)."""
    if ckpt.get("run_id") != run_id:
        raise CheckpointError(
            f"{path}: belongs to another run (run id {ckpt.get('run_id')}, this folder's is {run_id}); "
            "a checkpoint copied from elsewhere is never resumed: restore this run's own or start again"
        )
    try:
        saved = config_from_saved(dict(ckpt["config"]), f"{path}: config").as_flat()
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    keys = config_differences(saved, config)
    if keys:
        shown = ", ".join(f"{k} ({saved.get(k)!r} in the checkpoint, {config.get(k)!r} there)" for k in keys[:4])
        raise CheckpointError(
            f"{RunFolder(path.parent).config}: differs from the config its checkpoint trained with: {shown}"
            f"{' and more' if len(keys) > 4 else ''}; the checkpoint's config is the run's - undo the edit"
        )
