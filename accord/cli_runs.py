"""``accord compare``, ``accord grid`` and ``accord report``: several runs trained and tabled together."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .cli_flags import DEFAULT_CONFIG, data_args, train_overrides
from .config import ConfigError, config_name, load_config, parse_overrides, split_name
from .console import auto_run_folder, human, json_arg, print_json
from .losses import featured_methods
from .outputs import overwrite_arg


def cmd_compare(args: argparse.Namespace) -> int:
    """Train the same config with several methods and print a table of test top-1."""
    from .engine import fit
    from .grid import check_listed

    model, aug, _ = split_name(args.config)
    names = [config_name(model, aug, m) for m in check_listed(_split(args.methods), "--methods")]
    overrides = train_overrides(args)
    cfgs = [load_config(name, overrides) for name in names]  # validate all before training any
    if args.out is None:  # a fresh folder each time, so the quick start runs again without --overwrite
        args.out = str(auto_run_folder(f"compare-{model}-{aug}"))
        human(args)(f"runs go to {args.out}")
    _check_compare_folders([Path(args.out) / name for name in names], args.overwrite)
    rows = []
    for name, cfg in zip(names, cfgs, strict=True):
        out = Path(args.out) / name
        start = time.perf_counter()
        summary = fit(cfg, out, overwrite=args.overwrite, log=human(args))
        rows.append((cfg.method.method, summary, time.perf_counter() - start))
    if args.json:
        print_json([{"method": m, "wall_seconds": wall, **s} for m, s, wall in rows])
        return 0
    print(f"\n{model}-{aug} on {cfgs[0].data.dataset}, {cfgs[0].optim.epochs} epochs, seed {cfgs[0].run.seed}")
    print("| method | test top-1 (best val epoch) | test top-1 (last) | img/s | wall s |")
    print("|---|---|---|---|---|")
    for method, s, wall in rows:
        best, last = (_percent(s[k]) for k in ("test_top1", "last_test_top1"))
        print(f"| {method} | {best} | {last} | {s['images_per_s']:.0f} | {wall:.0f} |")
    return 0


def _percent(value: float | None) -> str:
    """An accuracy of summary.json; ``null`` there (no test images) prints as n/a."""
    return "n/a" if value is None else f"{value:.2f}"


def _check_compare_folders(folders: list[Path], overwrite: bool) -> None:
    """``accord compare`` replaces runs only with ``--overwrite``, as ``accord train`` does."""
    from .engine.runfiles import RUN_FILES, RunFolderError, prepare_folder

    for out in folders:
        try:
            prepare_folder(out, resume=False, overwrite=overwrite, write=False)
        except RunFolderError as e:
            if "already holds a run" not in str(e):
                raise
            held = ", ".join(name for name in RUN_FILES if (out / name).exists())
            raise RunFolderError(
                f"{out} already holds a run ({held}); use --overwrite to replace the compared runs, another --out, "
                f"or `accord train --resume {out}` to continue that one"
            ) from None


def cmd_grid(args: argparse.Namespace) -> int:
    """Train every model x augmentation x method x seed cell that is not finished yet."""
    from .grid import cell_overrides, make_cells, parse_method, run_grid

    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: the number of cells trained at once must be at least 1")
    cells = make_cells(_split(args.models), _split(args.augs), _split(args.methods), args.seeds)
    common = [item for item in args.set or [] if ":" not in item.partition("=")[0]]
    scoped: dict[str, list[str]] = {}
    for item in args.set or []:
        if ":" in item.partition("=")[0]:
            method, _, rest = item.partition(":")
            scoped.setdefault(method, []).append(rest)
    overrides = parse_overrides(common)
    per_method = {method: parse_overrides(items) for method, items in scoped.items()}
    methods = sorted({parse_method(m)[0] for m in _split(args.methods)})
    for method in per_method.keys() - set(methods):
        raise ConfigError(f"--set {method}:...: {method!r} is not one of --methods ({', '.join(methods)})")
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.train_subset is not None:
        overrides["train_subset"] = args.train_subset
    for cell in cells:  # every cell's final config must be valid before the first one trains
        load_config(cell.config, cell_overrides(cell, overrides, per_method))
    run_grid(cells, Path(args.out), overrides, jobs=args.jobs, per_method=per_method)
    from .engine.runfolder import RunFolder

    unfinished = [c.folder for c in cells if not RunFolder(Path(args.out) / c.folder).is_finished()]
    return 1 if unfinished else 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import environment_section, run_environments, write_report

    print(write_report(Path(args.dir), args.overwrite), end="")
    print(f"accord: wrote report.md, results.csv and the figures in {args.dir}", file=sys.stderr)
    _, warning = environment_section(run_environments(Path(args.dir)))
    if warning:
        print(f"accord: warning: {warning}", file=sys.stderr)
    return 0


def _split(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def add_compare(sub: Any) -> None:
    """The ``compare`` command's arguments."""
    cmp_ = sub.add_parser("compare", help="train one config with several methods; print a table")
    cmp_.add_argument("--config", default=DEFAULT_CONFIG, help="a built-in <model>-<augmentation> name")
    compared = ",".join(featured_methods("agreement"))
    cmp_.add_argument("--methods", default=compared, help=f"comma-separated methods (default {compared})")
    data_args(cmp_)
    cmp_.add_argument("--epochs", type=int, default=3)
    cmp_.add_argument("--train-subset", dest="train_subset", type=int, default=20000)
    cmp_.add_argument("--seed", type=int)
    cmp_.add_argument("--set", action="append", metavar="KEY=VALUE")
    cmp_.add_argument("--out", help="folder of the runs (default runs/compare-<model>-<augmentation>-<timestamp>)")
    cmp_.add_argument("--overwrite", action="store_true", help="replace runs already in --out")
    json_arg(cmp_, "one summary per method")


def add_grid(sub: Any) -> None:
    """The ``grid`` command's arguments."""
    grid = sub.add_parser("grid", help="train a grid of configs x seeds (resumes a stopped grid)")
    grid.add_argument("--models", required=True, help="model part of config names, e.g. FashionMNIST-ResNet8")
    grid.add_argument("--augs", default="standard", help="comma-separated augmentations, e.g. standard,cutout")
    grid.add_argument(
        "--methods", default=",".join(featured_methods()), help="comma-separated; NAME@2x doubles the epochs"
    )
    grid.add_argument("--seeds", type=int, default=3)
    grid.add_argument("--epochs", type=int)
    grid.add_argument("--train-subset", dest="train_subset", type=int)
    grid.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a key in every cell; METHOD:KEY=VALUE in that method's cells only",
    )
    grid.add_argument("--jobs", type=int, default=1, help="cells trained at once, each in its own process")
    grid.add_argument("--out", required=True)


def add_report(sub: Any) -> None:
    """The ``report`` command's arguments."""
    report = sub.add_parser("report", help="tables (markdown, CSV) and a figure of a grid's results")
    report.add_argument("dir")
    overwrite_arg(report, "replace report files accord did not write")
