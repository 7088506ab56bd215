"""What the command line prints, and where: the human lines, ``--json``, ``--version``, the auto-named run folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


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
