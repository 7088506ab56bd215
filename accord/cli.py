"""The ``accord`` command line: train, resume, evaluate, list configs, compare methods."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cli_eval import add_eval, cmd_eval
from .cli_flags import DEFAULT_CONFIG, HintingParser, add_timm_flags, data_args, train_overrides
from .cli_runs import add_compare, add_grid, add_report, cmd_compare, cmd_grid, cmd_report
from .cli_tools import (
    add_bench,
    add_configs,
    add_export,
    add_import_agmax,
    add_plot,
    add_predict,
    cmd_bench,
    cmd_configs,
    cmd_export,
    cmd_import_agmax,
    cmd_plot,
    cmd_predict,
)
from .config import ConfigError, config_notes, load_config, load_saved_config
from .console import (
    QuietOnFailure,
    auto_run_folder,
    exit_interrupted_while_starting,
    human,
    json_arg,
    package_version,
    print_json,
)


def cmd_train(args: argparse.Namespace) -> int:
    from .engine import fit

    if args.resume:
        out = Path(args.resume)
        if out.is_file():
            raise ConfigError(
                f"--resume {out}: a file; --resume takes the run folder that holds it: --resume {out.parent}"
            )
        from .engine.runfolder import RunFolder

        if not RunFolder(out).config.is_file():
            raise ConfigError(f"{out}: not a run folder (no {RunFolder.CONFIG}) - nothing to resume")
        cfg = load_saved_config(RunFolder(out).config)
        if args.config or args.set or args.out:
            raise ConfigError("--resume takes the run's own config; drop --config/--set/--out")
        cfg = _resume_config(args, cfg)
        summary = fit(cfg, out, resume=True, log=human(args))
        if args.json:
            print_json(summary)
        return 0
    cfg = load_config(args.config or DEFAULT_CONFIG, train_overrides(args))
    if os.environ.get("RANK", "0") == "0":
        for note in config_notes(cfg):  # as `accord configs NAME` prints them
            print(f"accord: note: {note}", file=sys.stderr)
    if not args.out and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("several processes need --out DIR: each would name its own run folder by the clock")
    out = args.out or auto_run_folder(cfg.name)
    if not args.out and os.environ.get("RANK", "0") == "0":
        print(f"accord: run folder {out} (no --out given)", file=sys.stderr)
    args.out = str(out)  # the Ctrl-C hint names it
    summary = fit(cfg, out, resume=None, overwrite=args.overwrite, log=human(args))  # None: start or resume
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 prints
        print(json.dumps(summary, indent=2))
    return 0


def _resume_config(args: argparse.Namespace, cfg: Any) -> Any:
    """The config a ``--resume`` continues: the run's own, extended to ``--epochs N`` when given; an option
    that would change what the run is (its seed, data) is refused, naming it."""
    for flag, key in (("--seed", "seed"), ("--train-subset", "train_subset"), ("--data-dir", "data_dir"),
                      ("--dataset", "dataset")):  # fmt: skip
        if getattr(args, key, None) is not None:
            raise ConfigError(f"--resume continues the run as it was; {flag} would change it (drop {flag})")
    if args.epochs is None or args.epochs == cfg.optim.epochs:
        return cfg
    if args.epochs < cfg.optim.epochs:
        raise ConfigError(f"--epochs {args.epochs}: the run has {cfg.optim.epochs} epochs; --resume only extends one")
    from .config import config_from_saved
    from .engine.runfolder import RunFolder

    return config_from_saved({**cfg.as_flat(), "epochs": args.epochs}, str(RunFolder(args.resume).config))


def add_train(sub: Any) -> None:
    """The ``train`` command's arguments."""
    train = sub.add_parser("train", help="train a config into an output folder, or resume one")
    train.add_argument("--config", help=f"built-in name or YAML path (default {DEFAULT_CONFIG})")
    data_args(train)
    train.add_argument("--epochs", type=int)
    train.add_argument("--seed", type=int)
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    train.add_argument("--train-subset", dest="train_subset", type=int, help="keep N training images (seeded)")
    train.add_argument("--out", help="run folder (default runs/<config>-<timestamp>)")
    json_arg(train, "the summary")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    add_timm_flags(train)


#: Every command, in the order ``accord --help`` lists them: (the function adding its arguments, its handler).
COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "train": (add_train, cmd_train),
    "eval": (add_eval, cmd_eval),
    "configs": (add_configs, cmd_configs),
    "compare": (add_compare, cmd_compare),
    "grid": (add_grid, cmd_grid),
    "report": (add_report, cmd_report),
    "export": (add_export, cmd_export),
    "predict": (add_predict, cmd_predict),
    "import-agmax": (add_import_agmax, cmd_import_agmax),
    "plot": (add_plot, cmd_plot),
    "bench": (add_bench, cmd_bench),
}


def build_parser() -> argparse.ArgumentParser:
    parser = HintingParser(prog="accord", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"accord {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    for command in sub.choices.values():  # `--epoch 1` must not pass for --epochs (argparse's prefixes)
        command.allow_abbrev = False
    return parser


def main(argv: list[str] | None = None) -> int:
    stdout = sys.stdout
    sys.stdout = QuietOnFailure(stdout)  # a closed or full stdout silences the console, never stops a run
    try:
        return _main(argv)
    finally:
        sys.stdout.flush()  # a pipe's reader gone shows here at the latest, not in the interpreter's exit
        sys.stdout = stdout


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:  # torch is imported here: a Ctrl-C meanwhile is one line, not a traceback of the import
        from .stops import end_on_fault
    except KeyboardInterrupt:
        exit_interrupted_while_starting()
    try:
        return _run(args, argv, end_on_fault)
    except Exception:  # not the user's input: a bug in accord, shown where it happened
        traceback.print_exc()
        print("accord: internal error (a bug in accord: the traceback above says where)", file=sys.stderr)
        return 1


def user_errors() -> tuple[type[Exception], ...]:
    """The errors of the user's input, each printed as one line: a config, a flag, a data set, a file
    (:class:`~accord.errors.UserError` and its kinds), a run folder or checkpoint that cannot be used, and the
    system's answer about a path or a device (OSError: missing, not permitted, read-only, full)."""
    from .engine import CheckpointError, RunFolderError
    from .errors import UserError

    return (UserError, RunFolderError, CheckpointError, OSError)


def _run(args: argparse.Namespace, argv: list[str], end_on_fault: Callable[..., int]) -> int:
    """Run the command; the user's errors end in one line (exit 2), or with ACCORD_DEBUG set in their traceback."""
    from .engine import NonFiniteLossError
    from .engine.trainer import TrainingInterrupted

    try:
        return COMMANDS[args.command][1](args)
    except TrainingInterrupted as e:  # SIGINT/SIGTERM: checkpoint written at a step boundary
        if os.environ.get("RANK", "0") == "0":  # every process of a torchrun group stops; one line says so
            print(f"accord: {e}", file=sys.stderr)
        return e.exit_code  # 130 for SIGINT, 143 for SIGTERM, 138 for SIGUSR1
    except user_errors() as e:
        if os.environ.get("ACCORD_DEBUG", "") not in ("", "0"):  # with the switch, where it came from
            traceback.print_exc()
        else:
            print(f"accord: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"accord: error: {e}; stopped, the last good checkpoint is kept", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, RuntimeError) as e:  # an interrupt, a dead or stalled loader worker, a lost process
        return end_on_fault(e, args, argv)


if __name__ == "__main__":
    sys.exit(main())
