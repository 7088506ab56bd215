"""Run a grid of configs x seeds, one run folder per cell, resumable.

A cell is ``<model>-<augmentation>[-<method>]`` at one seed, trained into ``DIR/<config>/seed<k>/``.
A cell with a ``summary.json`` is finished and skipped; one with a checkpoint resumes from it; so a
stopped grid continues where it was when run again with the same arguments. A method written
``NAME@2x`` trains ``NAME`` for twice the epochs: with ``<baseline>@2x`` the baseline gets as many image
forward passes as a two-view method (the equal-compute control).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, config_name, load_config, load_saved_config
from .engine.checkpoint import node_kind, read_json
from .engine.lock import RunLock, check_pid_file
from .engine.progress import duration
from .engine.runfiles import check_outside_data, prepare_folder
from .engine.runfolder import RunFolder
from .engine.writer import check_output, open_append, write_text_output
from .errors import UserError

GRID_FILE = "grid.json"
CELL_LOG = "train.log"  # in each cell's folder: the output of its `accord train`, added to by each session
GRID_LOCK = ".accord-grid.lock"  # one grid process per folder (a flock on the folder; see engine.lock)


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    config: str  # built-in config name
    label: str  # method column label (``NAME`` or ``NAME@Kx``)
    aug: str
    seed: int
    epoch_factor: int

    @property
    def folder(self) -> str:
        suffix = f"@{self.epoch_factor}x" if self.epoch_factor > 1 else ""
        return f"{self.config}{suffix}/seed{self.seed}"


def parse_method(method: str) -> tuple[str, int]:
    """``NAME`` -> (``NAME``, 1); ``NAME@2x`` -> (``NAME``, 2)."""
    name, _, factor = method.partition("@")
    if factor and (not factor.endswith("x") or not factor[:-1].isdigit() or int(factor[:-1]) < 1):
        raise ConfigError(f"method {method!r}: the epoch factor is written NAME@Kx, e.g. {name}@2x")
    return name, int(factor[:-1]) if factor else 1


def check_listed(items: list[str], option: str) -> list[str]:
    """``items`` of a comma-separated option (``--models``, ``--augs``, ``--methods``); a ConfigError naming the
    option when it lists nothing or an item twice (each cell or run is trained once, into its own folder)."""
    if not items:
        raise ConfigError(f"{option}: lists nothing; give at least one comma-separated name")
    twice = sorted({item for item in items if items.count(item) > 1})
    if twice:
        raise ConfigError(f"{option}: {', '.join(twice)} listed twice (each cell is trained once)")
    return items


def make_cells(models: list[str], augs: list[str], methods: list[str], seeds: int) -> list[Cell]:
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: the number of seeds of each cell must be at least 1")
    for items, option in ((models, "--models"), (augs, "--augs"), (methods, "--methods")):
        check_listed(items, option)
    cells = []
    for model in models:
        for aug in augs:
            for method in methods:
                name, factor = parse_method(method)
                config = config_name(model, aug, name)
                load_config(config)  # every name is checked before anything runs
                cells += [Cell(config, method, aug, seed, factor) for seed in range(seeds)]
    return cells


def cell_overrides(
    cell: Cell, base: dict[str, Any], per_method: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``--set`` values of a cell: the common ones, then its method's own (``NAME:loss.weight=8``). A seed
    among them is refused: a grid's seeds are 0..N-1 of ``--seeds``, and the cell folders are named by them."""
    for scope, values in (("", base), *((f"{m}:", v) for m, v in (per_method or {}).items())):
        if "seed" in values:
            raise ConfigError(f"--set {scope}seed: a grid's seeds come from --seeds N (seeds 0..N-1); drop it")
    overrides = dict(base, seed=cell.seed)
    for key, value in (per_method or {}).get(parse_method(cell.label)[0], {}).items():
        overrides[key] = dict(overrides.get(key, {}), **value) if key == "loss" else value
    epochs = overrides.get("epochs") or load_config(cell.config).optim.epochs
    overrides["epochs"] = epochs * cell.epoch_factor
    return overrides


def check_cells(cells: list[Cell], out: Path, overrides: dict[str, Any], per_method: dict[str, Any]) -> None:
    """Refuse, before anything trains, a cell folder that is a file, or one that holds a run trained with
    other settings than this grid's (other ``--epochs``, ``--set``...): it is neither finished nor resumed
    as if it were this grid's cell."""
    for cell in cells:
        run_dir = out / cell.folder
        if run_dir.exists() and not run_dir.is_dir() or any(p.is_file() for p in run_dir.parents if out in p.parents):
            raise ConfigError(f"{run_dir}: a grid cell's folder, but it (or a folder above it) is a file")
        check_outside_data(run_dir, load_config(cell.config, cell_overrides(cell, overrides, per_method)).data.data_dir)
        folder = RunFolder(run_dir)
        summary = folder.summary
        if not os.path.lexists(summary):  # to be trained: checked as its `accord train` will be
            check_cell_folder(run_dir)
        elif node_kind(summary) != "a file" or not folder.config.is_file():
            raise ConfigError(f"{summary}: not a finished cell's summary (a regular file beside its {folder.CONFIG})")
        if not folder.config.is_file():
            continue
        want = load_config(cell.config, cell_overrides(cell, overrides, per_method)).as_flat()
        have = load_saved_config(folder.config).as_flat()
        keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        if keys:
            shown = ", ".join(f"{k} {have.get(k)!r} there, {want.get(k)!r} now" for k in keys[:3])
            raise ConfigError(
                f"{run_dir}: trained with other settings than this grid's ({shown}); "
                "use another --out, or delete that cell's folder to train it again"
            )


def check_cell_folder(run_dir: Path) -> None:
    """Refuse, in one line, a cell folder its `accord train` would refuse or harm: anything but a regular
    file at a path the cell writes, a run without accord's marker, a lock file of someone else's, or a
    ``checkpoint-best.pt`` without ``checkpoint-last.pt`` (``--overwrite`` would delete it)."""
    check_output(run_dir / CELL_LOG, overwrite=True, option="")  # a regular file (appended to) or none
    folder = RunFolder(run_dir)
    resume = folder.can_resume()
    prepare_folder(run_dir, resume=resume, overwrite=not resume, write=False)
    check_pid_file(folder.lock)
    if folder.best.exists() and not folder.last.exists():
        raise ConfigError(
            f"{run_dir}: holds {folder.BEST} but no {folder.LAST}, so the cell can neither resume nor "
            "start again without losing it; move it away (or the cell's folder) first"
        )


def cell_command(cell: Cell, out: Path, overrides: dict[str, Any]) -> list[str]:
    """The ``accord train`` command line of a cell (resuming when a checkpoint exists)."""
    run_dir = out / cell.folder
    cmd = [sys.executable, "-m", "accord", "train"]
    if RunFolder(run_dir).can_resume():
        return [*cmd, "--resume", str(run_dir)]
    sets = [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]
    return [*cmd, "--config", cell.config, *sets, "--out", str(run_dir), "--overwrite"]


SESSION_KEYS: dict[str, type | tuple[type, ...]] = {"argv": list, "cells_run": int, "wall_seconds": (int, float)}


def read_grid_record(path: Path) -> dict[str, Any]:
    """A grid folder's ``grid.json``: its sessions (argv, cells run, wall seconds); a ValueError that names
    the file when it is not valid JSON or lacks those keys (a record edited by hand, a truncated copy)."""
    record = read_json(path)
    sessions = record.get("sessions") if isinstance(record, dict) else None
    if not isinstance(sessions, list) or not all(
        isinstance(s, dict) and all(isinstance(s.get(k), t) for k, t in SESSION_KEYS.items()) for s in sessions
    ):
        raise UserError(f"{path}: not a grid record (a 'sessions' list, each with {', '.join(SESSION_KEYS)})")
    return record


def run_grid(
    cells: list[Cell],
    out: Path,
    overrides: dict[str, Any],
    jobs: int = 1,
    per_method: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every unfinished cell, ``jobs`` at a time, each in its own process; return the grid record.

    One grid process per folder (a second is refused). SIGINT, SIGTERM or SIGHUP to the grid is passed on
    to the running cells, which checkpoint and stop at their next step; no further cell starts."""
    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out, GRID_LOCK, "is running a grid in this folder"), CellProcesses() as running:
        check_cells(cells, out, overrides, per_method or {})
        record = out / GRID_FILE  # accord's own when it reads as a grid record (read before it is written)
        check_output(record, overwrite=False, option="", ours=record.is_file() and bool(read_grid_record(record)))
        return _run_cells(cells, out, overrides, jobs, per_method, log, running)


class CellProcesses:
    """The cells' processes; a stop signal to the grid is sent on to each of them, and stops new ones."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.procs: set[subprocess.Popen] = set()
        self.signum = 0
        self._lock = threading.Lock()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> CellProcesses:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._forward) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _forward(self, signum: int, frame: object) -> None:
        self.signum = signum
        with self._lock:
            for proc in self.procs:
                proc.send_signal(signum)

    def call(self, cmd: list[str], logfile: Any, env: dict[str, str]) -> int | None:
        """Run ``cmd`` to its end; None if the grid was stopped before it started."""
        with self._lock:
            if self.signum:
                return None
            # its own process group: a Ctrl-C in the terminal reaches it once, through the grid, not twice
            proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env, process_group=0)
            self.procs.add(proc)
        try:
            return proc.wait()
        finally:
            with self._lock:
                self.procs.discard(proc)


def cell_threads(jobs: int) -> str:
    """The threads of each cell: ``OMP_NUM_THREADS`` when the user set it, else the CPUs shared by ``jobs``."""
    return os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // jobs))


class GridClock:
    """Cell k of N, and the grid's ETA from the mean time of the cells finished here (``jobs`` at a time)."""

    def __init__(self, total: int, jobs: int) -> None:
        self.total, self.jobs, self.started, self.done, self.seconds = total, jobs, 0, 0, 0.0
        self._lock = threading.Lock()

    def start(self) -> str:
        with self._lock:
            self.started += 1
            return f"cell {self.started} of {self.total}"

    def finished(self, seconds: float) -> str:
        with self._lock:
            self.done += 1
            self.seconds += seconds
            left = self.total - self.done
            eta = self.seconds / self.done * math.ceil(left / self.jobs) if left else 0.0
            return f"{self.done} of {self.total} done, grid ETA {duration(eta)}"


def _run_cells(
    cells: list[Cell],
    out: Path,
    overrides: dict[str, Any],
    jobs: int,
    per_method: dict[str, dict[str, Any]] | None,
    log: Callable[[str], None],
    running: CellProcesses,
) -> dict[str, Any]:
    todo = [c for c in cells if not RunFolder(out / c.folder).is_finished()]
    log(f"grid: {len(cells)} cells, {len(cells) - len(todo)} finished, {len(todo)} to run, {jobs} at a time")
    record_path = out / GRID_FILE
    if not todo and record_path.is_file():  # nothing trained: the record of the sessions that did stays as it is
        return read_grid_record(record_path)
    env = dict(os.environ, OMP_NUM_THREADS=cell_threads(jobs), PYTHONUNBUFFERED="1")
    threads = env["OMP_NUM_THREADS"]
    log(f"grid: {out}: each cell in its folder (train.log, {RunFolder.METRICS}, ...), {threads} threads each")
    eta = GridClock(len(todo), jobs)
    record = read_grid_record(record_path) if record_path.is_file() else {"sessions": []}
    record.update(overrides=overrides, per_method_overrides=per_method or {})
    session: dict[str, Any] = {"argv": sys.argv[1:], "cells_run": 0, "wall_seconds": 0, "jobs": jobs}
    record["sessions"].append(session)
    start = time.time()
    failures: list[str] = []
    lock = threading.Lock()

    def save_record() -> None:  # after every cell, so a stopped grid still accounts for its time
        with lock:
            session["wall_seconds"] = round(time.time() - start)
            write_text_output(record_path, json.dumps(record, indent=2) + "\n", option="", ours=True)

    def run(cell: Cell) -> None:
        run_dir = out / cell.folder
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = cell_command(cell, out, cell_overrides(cell, overrides, per_method))
        t0 = time.time()
        log(f"{cell.folder}: started ({eta.start()}; its log: {run_dir / CELL_LOG})")
        with open_append(run_dir / CELL_LOG) as logfile:
            code = running.call(cmd, logfile, env)
        if code is None:  # the grid was stopped before this cell started
            return
        status = "done" if code == 0 else f"FAILED (exit {code}, see {run_dir / 'train.log'})"
        if running.signum and code == 128 + running.signum:
            status = f"stopped ({signal.Signals(running.signum).name}; checkpoint saved)"
        elif code:
            failures.append(cell.folder)
        session["cells_run"] += 1
        save_record()
        log(f"{cell.folder}: {status} in {time.time() - t0:.0f}s ({eta.finished(time.time() - t0)})")

    save_record()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, todo))
    save_record()
    if failures:
        log(f"grid: {len(failures)} cells failed: {', '.join(failures)}")
    if running.signum:
        raise KeyboardInterrupt  # the command line's hint: run the same grid command again
    return record
