"""What the command line prints, and where: the human lines, ``--json``, ``--version``, the auto-named run folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn


class QuietOnFailure:
    """``sys.stdout`` that cannot stop a run: a write that fails (the reader of a pipe gone, ``| head -1``; a
    full device, ``> /dev/full``) silences the console for good, with one line on stderr, and the command goes
    on (a run's files are its record). The stream's descriptor is pointed at ``/dev/null`` so that the
    interpreter's last flush fails no more."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.failed = stream, False

    def write(self, text: str) -> int:
        if not self.failed:
            try:
                return self.stream.write(text)
            except OSError as e:
                self._fail(e)
        return len(text)

    def flush(self) -> None:
        if not self.failed:
            try:
                self.stream.flush()
            except OSError as e:
                self._fail(e)

    def _fail(self, error: OSError) -> None:
        self.failed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # a stream without a descriptor (a test's capture): nothing is flushed to it later anyway
        reason = error.strerror or type(error).__name__
        print(f"accord: stdout failed ({reason}); going on without console output", file=sys.stderr, flush=True)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def auto_run_folder(name: str, root: str | Path = "runs") -> Path:
    """``runs/<config name>-<UTC timestamp>`` for a run started without ``--out`` (timm's and Lightning's
    habit); a second run in the same second gets ``-2``, ``-3``, ..."""
    stem = f"{Path(name).name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    out, n = Path(root) / stem, 1
    while out.exists():
        n += 1
        out = Path(root) / f"{stem}-{n}"
    return out


def human(args: argparse.Namespace) -> Any:
    """Where the human lines go: stdout as always, stderr under ``--json`` (stdout is then JSON only)."""
    if getattr(args, "json", False):
        return lambda line: print(line, file=sys.stderr, flush=True)
    return print


def print_json(value: Any) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps(value, indent=2, allow_nan=False))


def json_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--json", action="store_true", help=f"print {what} as JSON on stdout, and the progress lines on stderr"
    )


def package_version() -> str:
    """The installed distribution's version (its metadata), else the source tree's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accord")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def exit_interrupted_while_starting() -> NoReturn:
    """Ctrl-C while accord imports torch: one line and exit 130 (the shell's code for SIGINT). The process ends at
    once: finalising a half-imported torch can raise the interrupt again and end it by the signal instead."""
    print("accord: interrupted while starting; nothing was written", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)
