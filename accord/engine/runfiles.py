"""The files of a run folder: preparing it, the metrics lines, the skipped-images list and the summary.

The folder's files are named by :class:`~.runfolder.RunFolder`. Every file is written atomically
(see :mod:`.checkpoint`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from torch.utils.data import Dataset

from ..config import Config, load_saved_config
from ..data.datasets import image_folders
from ..data.files import escape_path, unescape_path
from ..errors import UserError
from .checkpoint import node_kind, remove_stale_temps, write_text_atomic
from .history import history_files
from .runfolder import RunFolder

SKIP_REPORT = RunFolder.SKIPPED  # one "path<TAB>reason" line per unreadable image (escape_path: any name)
SUMMARY_CSV = RunFolder.SUMMARY_CSV
RUN_FILES = RunFolder.FILES
RUN_MARKER = RunFolder.MARKER
LOCK_FILE = RunFolder.LOCK
TENSORBOARD_DIR, STEPS_DIR = RunFolder.TENSORBOARD, RunFolder.STEPS
MAX_LISTED_PATHS = 100  # summary.json lists at most this many skipped image paths (the count is exact)
#: The keys of a metrics.jsonl record that are timings (they differ between identical runs).
TIMING_KEYS = ("seconds", "images_per_s", "views_per_s", "eval_seconds")
#: The val/test numbers of an epoch that ``eval_every`` skips: NaN, as for a split without images.
NOT_EVALUATED: dict[str, Any] = {"top1": float("nan"), "top5": float("nan"), "n": 0}


class RunFolderError(RuntimeError):
    """The output folder holds another run and neither resume nor overwrite was asked for."""


def prepare_folder(out: Path, resume: bool, overwrite: bool, write: bool = True) -> None:
    """Check that ``out`` can take the run; with ``write`` (rank 0 of several processes, holding the
    folder's lock) also create it, clear it for ``overwrite`` and delete the temporary files of run files
    that a killed process left behind. Files accord did not name itself are never deleted."""
    check_folder_path(out)
    check_run_paths(out)
    if resume:
        if not RunFolder(out).last.is_file():
            raise RunFolderError(nothing_to_resume(out))
        if write:
            remove_stale_temps(out, RUN_FILES)
        return
    existing = run_files_in(out)
    if existing and not overwrite:
        raise RunFolderError(
            f"{out} already holds a run ({', '.join(existing)}); use --resume to continue it "
            "or --overwrite to replace it"
        )
    marker = out / RUN_MARKER
    if not existing and marker.exists() and not (overwrite and is_marker(marker)):
        raise RunFolderError(f"{marker}: already exists; use --overwrite to replace it (if accord wrote it)")
    if existing and (marker.is_symlink() or not marker.is_file()):
        raise RunFolderError(
            f"{out}: holds {', '.join(existing)} but no {RUN_MARKER}, so accord cannot tell that a run of its "
            "own wrote them and --overwrite leaves them; move them away or delete them yourself"
        )
    if not write:
        return
    make_folder(out)
    for name in existing:
        (out / name).unlink()
    if existing:  # a run of accord was here: its own TensorBoard events go, any other file stays
        remove_event_files(out / TENSORBOARD_DIR)
        remove_event_files(out / TENSORBOARD_DIR / STEPS_DIR)
        remove_stale_temps(out, RUN_FILES)
        (out / RUN_MARKER).unlink()


def is_marker(path: Path) -> bool:
    """Whether ``path`` is a run marker accord wrote: a regular file of JSON ``{"run_id": "..."}``."""
    try:
        value = json.loads(path.read_text()) if node_kind(path) == "a file" else None
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and isinstance(value.get("run_id"), str)


def check_run_paths(out: Path) -> None:
    """Refuse, before any work, anything but a regular file where the run writes one of its files (and
    anything but a folder at ``tensorboard``): a symlink, FIFO, socket, device or folder is never replaced,
    written through or opened."""
    for name in (RUN_MARKER, *RUN_FILES, LOCK_FILE):
        kind = node_kind(out / name)
        if kind not in (None, "a file"):
            raise RunFolderError(f"{out / name}: is {kind}, not a regular file; accord writes only regular files")
    kind = node_kind(out / TENSORBOARD_DIR)
    if kind not in (None, "a folder"):
        raise RunFolderError(f"{out / TENSORBOARD_DIR}: is {kind}, not a folder (the run's TensorBoard folder)")


def check_outside_data(out: Path, data_dir: str | None) -> None:
    """Refuse a run folder in the data set's folder (or the data set's folder itself): its files would be read
    as data (an image folder's extra class), so the run could never be resumed or evaluated as it trained."""
    if not data_dir:
        return
    data = Path(data_dir).resolve()
    where = out.resolve()
    if where == data or data in where.parents:
        raise RunFolderError(f"--out {out}: is inside the data folder {data_dir}; put the run folder elsewhere")


def extension(out: Path, cfg: Config, log: Callable[[str], None]) -> Callable[[], None] | None:
    """When ``cfg`` has more epochs than the run in ``out`` (``--resume DIR --epochs N``): say so, and return
    what makes the run one of ``cfg.optim.epochs``: its config says so and its summary, of the shorter run,
    goes. It runs just before the extension's first checkpoint: a resume stopped before that leaves the run
    exactly as it was."""
    folder = RunFolder(out)
    epochs = load_saved_config(folder.config).optim.epochs
    if cfg.optim.epochs == epochs:
        return None
    log(
        f"extending {out} from {epochs} to {cfg.optim.epochs} epochs: the lr and loss-weight schedules now span "
        f"{cfg.optim.epochs} epochs from the checkpoint on (the epochs trained keep the numbers they had)"
    )

    def extend() -> None:
        folder.summary.unlink(missing_ok=True)
        write_text_atomic(yaml.safe_dump(cfg.as_flat(), sort_keys=False), folder.config)

    return extend


def run_files_in(out: Path) -> list[str]:
    """The run files ``out`` holds: :data:`RUN_FILES` and the kept epoch checkpoints (:mod:`.history`)."""
    return [name for name in RUN_FILES if (out / name).exists()] + [p.name for p in history_files(out)]


def is_run_file_name(name: str) -> bool:
    """Whether a file called ``name`` is one of a run's files."""
    return name in RUN_FILES or RunFolder.HISTORY.fullmatch(name) is not None


def nothing_to_resume(out: Path) -> str:
    """Why ``out`` cannot be resumed: it has no ``checkpoint-last.pt``."""
    last, best = RunFolder.LAST, RunFolder.BEST
    if RunFolder(out).best.is_file():
        return (
            f"{out}: nothing to resume (no {last}; {best} alone cannot continue training, "
            "but `accord eval` and `accord export` take it); --overwrite would delete it, so use another --out"
        )
    return (
        f"{out}: nothing to resume (no {last}: the run stopped before its first checkpoint); "
        "start it again with --overwrite"
    )


def remove_event_files(folder: Path) -> None:
    """Delete the TensorBoard event files a run wrote directly in ``folder``; sub-folders are never touched."""
    if folder.is_symlink() or not folder.is_dir():
        return
    for path in folder.glob("events.out.tfevents.*"):
        if path.is_file() and not path.is_symlink():
            path.unlink()


def nearest_existing_parent(path: Path) -> Path:
    """The closest folder or file above ``path`` that exists (``/`` at the latest; ``.`` has its own)."""
    return next(parent for parent in path.absolute().parents if parent.exists())


def check_folder_path(out: Path) -> None:
    """Refuse, before any work, a run folder path that is a file, lies under a file or cannot be written."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out}: is a file, not a folder")
    parent = nearest_existing_parent(out)
    if not parent.is_dir():
        raise RunFolderError(f"--out {out}: {parent} is a file, not a folder")
    existing = out if out.is_dir() else parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunFolderError(f"--out {out}: {existing} is not writable")


def make_folder(out: Path) -> None:
    """Create the run folder ``out``; a path that cannot be one is a :class:`RunFolderError` (one line)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"--out {out}: is a file, not a folder") from None
    except NotADirectoryError:
        raise RunFolderError(f"--out {out}: a part of this path is a file, not a folder") from None
    except OSError as e:
        raise RunFolderError(f"--out {out}: cannot create the run folder ({e.strerror})") from None


def epoch_record(
    epoch: int, lr: float, stats: dict[str, float], val: dict[str, Any], test: dict[str, Any]
) -> dict[str, Any]:
    """One line of ``metrics.jsonl``."""
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train": {k: v for k, v in stats.items() if k not in ("images_per_s", "views_per_s", "seconds")},
        "val_top1": val["top1"],
        "val_top5": val["top5"],
        "test_top1": test["top1"],
        "test_top5": test["top5"],
        "images_per_s": stats["images_per_s"],
        "views_per_s": stats["views_per_s"],
        "seconds": stats["seconds"],
    }


def epoch_line(record: dict[str, Any], epochs: int, improved: bool, evaluated: bool) -> str:
    """The log's line for one epoch; ``evaluated`` False for an epoch that ``eval_every`` skipped."""
    terms = " ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in record["train"].items() if k != "train_top1"
    )
    accuracy = f"val {record['val_top1']:.2f} test {record['test_top1']:.2f}" if evaluated else "not evaluated"
    return (
        f"epoch {record['epoch']}/{epochs}: {terms} | {accuracy}"
        + (f" (EMA; raw val {raw['val_top1']:.2f} test {raw['test_top1']:.2f})" if (raw := record.get("raw")) else "")
        + " | "
        f"{record['images_per_s']:.0f} img/s ({record['views_per_s']:.0f} views/s) {record['seconds']:.1f}s"
        + (" *" if improved else "")
    )


def record_skipped(
    datasets: Iterable[Dataset], skipped: list[tuple[str, str]], out: Path, log: Callable[[str], None]
) -> None:
    """List the images dropped up front in ``out/skipped-images.txt`` (with those found lazily before) and
    point the image folders' lazy reports at that file."""
    for dataset in datasets:
        for folder in image_folders(dataset):
            folder.report = out / SKIP_REPORT
    if not skipped:
        return
    known = read_skipped(out)
    lines = dict(known) | dict(skipped)
    write_text_atomic("".join(f"{escape_path(p)}\t{escape_path(r)}\n" for p, r in lines.items()), out / SKIP_REPORT)
    first = "; ".join(f"{p} ({r})" for p, r in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    log(f"skipping {len(skipped)} unreadable images (listed in {out / SKIP_REPORT}): {first}{more}")


def read_skipped(out: Path) -> list[tuple[str, str]]:
    path = Path(out) / SKIP_REPORT
    if not path.is_file():
        return []
    pairs = (line.partition("\t") for line in path.read_text(encoding="utf-8").split("\n") if line.strip())
    return list({unescape_path(p): unescape_path(r) for p, _, r in pairs}.items())


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drop metric lines written after the checkpoint we resume from (a run killed mid-epoch)."""
    if not path.is_file():
        return
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        check_record(record, path, number)
        if record["epoch"] <= last_epoch + 1:
            kept.append(line)
    write_text_atomic("".join(line + "\n" for line in kept), path)


def check_metrics_cover(out: Path, last_epoch: int) -> None:
    """Refuse a resume whose ``metrics.jsonl`` lacks an epoch that ``checkpoint-last.pt`` has trained (the
    file deleted, emptied or cut): the run's summary would cover the epochs trained after it only. One line."""
    done = last_epoch + 1
    if done <= 0:
        return
    path = RunFolder(out).metrics
    epochs = [record["epoch"] for record in read_metrics(out)]
    if epochs != list(range(1, done + 1)):
        have = "no epoch recorded" if not epochs else f"records epochs {_span(epochs)}"
        raise UserError(
            f"{path}: {have}, but {RunFolder.LAST} has trained epochs 1-{done}; the run's summary would be "
            "wrong without them: restore the file from a copy"
        )


def _span(epochs: list[int]) -> str:
    if epochs == list(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}-{epochs[-1]}"
    return ", ".join(map(str, epochs))


#: What every line of ``metrics.jsonl`` holds (``epoch_record``); numbers may be NaN (not evaluated).
RECORD_KEYS: dict[str, type | tuple[type, ...]] = {
    "epoch": int,
    "train": dict,
    "val_top1": (int, float),
    "test_top1": (int, float),
}


def check_record(record: Any, path: Path, line: int) -> None:
    """Raise a ValueError naming the file and line when ``record`` is not an epoch record."""
    if not isinstance(record, dict) or not all(isinstance(record.get(k), t) for k, t in RECORD_KEYS.items()):
        raise UserError(
            f"{path}, line {line}: not an epoch record (each line needs {', '.join(RECORD_KEYS)}); "
            "was the file edited? remove that line"
        )


def read_metrics(out: Path) -> list[dict[str, Any]]:
    """The epoch records of ``out/metrics.jsonl``; a line that is not one is a ValueError naming it."""
    path = RunFolder(out).metrics
    if not path.is_file():  # missing, or a FIFO that would block the read
        raise UserError(f"{path}: missing or not a regular file, so the run's epochs cannot be read")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}, line {number}: not valid JSON ({e.msg})") from None
        check_record(record, path, number)
        records.append(record)
    return records


def summarize(
    out: Path, environments: Sequence[dict[str, Any]] = (), data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Test accuracy at the best-validation epoch (the selected model) and at the last epoch, and where the run
    trained: ``environment`` (the last of ``environments``, :mod:`.environment`), and ``earlier_environments``
    when a resume moved it; ``data``, the run's data identity (:mod:`accord.data.identity`: class names in
    label order, split sizes, fingerprints), when given.

    Without a validation split (``val_fraction: 0``) ``test_top1`` is the last epoch's, and the epoch of the
    best test top-1 (what the AgMax authors report) is written too, as ``test_selected_epoch`` and
    ``test_selected_top1``: selected on the test set, so optimistic. Epochs that ``eval_every`` skipped (NaN
    numbers) are never selected; the last epoch is always evaluated."""
    cfg = load_saved_config(RunFolder(out).config)
    records = read_metrics(out)
    if not records:
        raise UserError(f"{RunFolder(out).metrics}: no epoch recorded, so there is nothing to summarize")
    skipped = read_skipped(out)
    with_val = [r for r in records if not math.isnan(r["val_top1"])]  # NaN: no val split, or not evaluated
    best = max(with_val, key=lambda r: r["val_top1"]) if with_val else records[-1]
    last = records[-1]
    selected = {}
    if not with_val:  # no validation split (the paper protocols): the primary number is the last epoch's
        with_test = [r for r in records if not math.isnan(r["test_top1"])] or [last]
        top = max(with_test, key=lambda r: r["test_top1"])  # the authors' number, chosen by the test set itself
        selected = {
            "test_selected_epoch": top["epoch"],
            "test_selected_top1": top["test_top1"],
            "selection": "no validation split: test_top1 is the last epoch's; test_selected_top1 is the best "
            "test epoch's, selected on the test set (optimistic)",
        }
    return json_safe(
        {
            "name": cfg.name,
            "method": cfg.method.method,
            "model": cfg.model.model,
            "dataset": cfg.data.dataset,
            "seed": cfg.run.seed,
            "selected_by": "ema" if cfg.optim.ema else "weights",  # ema: every val/test number is the EMA's
            "epochs": last["epoch"],
            "best_epoch": best["epoch"],
            "best_val_top1": best["val_top1"],
            "test_top1": best["test_top1"],
            "test_top5": best["test_top5"],
            "last_val_top1": last["val_top1"],
            "last_test_top1": last["test_top1"],
            **selected,
            "train_seconds": sum(r["seconds"] for r in records),
            "images_per_s": sorted(r["images_per_s"] for r in records)[len(records) // 2],
            "skipped_images": {"count": len(skipped), "paths": [p for p, _ in skipped[:MAX_LISTED_PATHS]]},
            **({"environment": environments[-1]} if environments else {}),
            **({"earlier_environments": list(environments[:-1])} if len(environments) > 1 else {}),
            **({"data": data} if data else {}),
        }
    )


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, so that it is valid JSON (``null``):
    an accuracy over no images (an empty test set) has no value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
