"""Every file each command writes, in one list, and the check of an output path (:mod:`.engine.writer`).

:data:`COMMAND_OUTPUTS` names, for each command, the files (and folders) it writes and what their names are
relative to. Each of them is written through the one writer: a run's own files through
:func:`.engine.checkpoint.replace_atomic` (which never replaces a symlink, FIFO, socket, device or folder),
every other output through :func:`.engine.writer.write_output` (which also never replaces a file accord did
not write, unless ``--overwrite``). The tests plant each hostile kind of node at each listed path and run the
command; an output added here is tested with them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .engine.runfiles import LOCK_FILE, RUN_FILES, RUN_MARKER
from .engine.tensorboard import TENSORBOARD_DIR
from .engine.writer import OUTPUTS_RECORD, OutputExistsError, check_output, is_run_folder
from .grid import CELL_LOG, GRID_FILE, GRID_LOCK
from .plot import PLOT_NAME
from .report import REPORT_FILES
from .report_figures import FIGURE_NAMES

__all__ = [
    "COMMAND_OUTPUTS",
    "OUTPUTS_RECORD",
    "Output",
    "OutputExistsError",
    "check_output",
    "is_run_folder",
    "overwrite_arg",
]

BENCH_NAME = "bench.json"  # ``accord bench`` without --out: in the working folder
ROBUSTNESS_NAME = "robustness.json"  # ``accord eval --corruptions`` without --out: next to the checkpoint


@dataclass(frozen=True)
class Output:
    """One file (or folder) a command writes: ``name`` (``{model}``: each model of a grid) in ``base``."""

    name: str
    base: str  # run: the run folder (--out or --resume); grid: the grid folder; cell: a grid cell's folder;
    # report: the folder reported on; plot: the run folder plotted; checkpoint: the checkpoint's folder;
    # cwd: the working folder; out: the --out path itself (name is an example)
    folder: bool = False
    append: bool = False  # a log accord adds to: an existing regular file is added to, never replaced


_RUN = (*(Output(name, "run") for name in (RUN_MARKER, *RUN_FILES, LOCK_FILE)), Output(TENSORBOARD_DIR, "run", True))

COMMAND_OUTPUTS: dict[str, tuple[Output, ...]] = {
    "train": _RUN,
    "compare": _RUN,  # in --out/<config> of each method
    "grid": (Output(GRID_FILE, "grid"), Output(GRID_LOCK, "grid"), Output(CELL_LOG, "cell", append=True), *_RUN[:-1]),
    "report": (*(Output(name, "report") for name in REPORT_FILES), *(Output(f, "report") for f in FIGURE_NAMES)),
    "plot": (Output(PLOT_NAME, "plot"),),
    "eval": (Output(ROBUSTNESS_NAME, "checkpoint"),),
    "export": (Output("model.safetensors", "out"), Output("model-folder", "out", folder=True)),  # no suffix: a folder
    "import-agmax": (Output("model.safetensors", "out"), Output("model.pt", "out")),
    "bench": (Output(BENCH_NAME, "cwd"),),
    "predict": (Output("predictions.csv", "out"),),
}


def overwrite_arg(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--overwrite`` flag of a command that writes outputs."""
    parser.add_argument("--overwrite", action="store_true", help=what)
