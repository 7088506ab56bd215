"""The one line a command ends with when a fault or an interrupt stops it early.

:func:`~accord.engine.faults.classify` says what happened; :data:`AFTERMATH` says, for every command, what it
leaves behind and how to go on (a run's last checkpoint and its ``--resume`` command, a grid's command to run
again, "nothing was written" for an evaluation or a benchmark). Under ``torchrun`` an interrupt reaches every
process; rank 0 alone prints its line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from .engine.distributed import launch_command
from .engine.faults import Fault, classify, end_loader_workers
from .engine.runfolder import RunFolder


def _train(args: argparse.Namespace, argv: list[str]) -> str:
    out = args.resume or args.out
    if not out:
        return "nothing to resume (no run folder was named yet)"
    return _resumable(Path(out))


def _resumable(out: Path) -> str:
    resume = f"resume with `{launch_command()} train --resume {out}`"
    if RunFolder(out).last.is_file():
        return f"its last checkpoint {RunFolder(out).last} is kept; {resume}"
    return f"{out} holds no checkpoint yet; run the same command again"  # it starts the run again (startresume)


def _compare(args: argparse.Namespace, argv: list[str]) -> str:
    out = Path(args.out) if args.out else None
    stopped = [] if out is None or not out.is_dir() else sorted(
        run for run in out.iterdir() if RunFolder(run).last.is_file() and not RunFolder(run).is_finished()
    )  # fmt: skip
    if not stopped:
        return "the runs that finished are kept" + (f" in {out}" if out else "")
    return f"the runs that finished are kept in {out}; " + _resumable(stopped[0])


def _grid(args: argparse.Namespace, argv: list[str]) -> str:
    return f"re-run the same command to continue the grid: `{launch_command()} {shlex.join(argv)}`"


def _nothing_written(args: argparse.Namespace, argv: list[str]) -> str:
    return "nothing was written"


def _again(args: argparse.Namespace, argv: list[str]) -> str:
    return "run it again"


#: For every command: what it is called in a stop line, and what it leaves behind and how to go on.
AFTERMATH: dict[str, tuple[str, Callable[[argparse.Namespace, list[str]], str]]] = {
    "train": ("training", _train),
    "eval": ("evaluation", _nothing_written),
    "configs": ("`accord configs`", _again),
    "compare": ("comparison", _compare),
    "grid": ("grid", _grid),
    "report": ("report", _again),
    "export": ("export", _nothing_written),
    "import-agmax": ("import", _nothing_written),
    "plot": ("plot", _again),
    "bench": ("benchmark", _nothing_written),
    "predict": ("prediction", _nothing_written),
}


def stop_line(fault: Fault, args: argparse.Namespace, argv: list[str]) -> str:
    """The line ``args.command`` ends with after ``fault``."""
    noun, after = AFTERMATH.get(args.command, (f"`accord {args.command}`", _again))
    if fault.kind == "interrupted":
        return f"accord: {noun} interrupted; {after(args, argv)}"
    return f"accord: error: {fault.what}; {noun} stopped, {after(args, argv)}"


def end_on_fault(error: BaseException, args: argparse.Namespace, argv: list[str]) -> int:
    """Print the stop line of ``error`` (once under ``torchrun`` for an interrupt: rank 0's) and return the
    exit code; re-raise an error that is not a fault."""
    fault = classify(error)
    if fault is None:
        raise error
    if fault.kind in ("worker died", "worker stalled"):
        end_loader_workers()
    if fault.kind != "interrupted" or os.environ.get("RANK", "0") == "0":
        print(stop_line(fault, args, argv), file=sys.stderr, flush=True)
    return fault.exit_code
