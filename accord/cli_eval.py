"""``accord eval``: clean top-1/top-5 and ECE of a checkpoint or of released weights; robustness to corruptions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .cli_flags import data_args, seed_value
from .config import ConfigError
from .console import human, json_arg, print_json
from .outputs import ROBUSTNESS_NAME, check_output


def cmd_eval(args: argparse.Namespace) -> int:
    """Clean top-1/top-5 and ECE of a checkpoint or of the AgMax authors' released weights (--weights)."""
    if (args.checkpoint is None) == (args.weights is None):
        raise ConfigError("accord eval needs one of --checkpoint FILE or --weights NAME")
    if args.checkpoint:
        return _eval(args, args.checkpoint)
    import tempfile

    from .weights import WEIGHTS_DIRS, import_released

    folders = [args.weights_dir] if args.weights_dir else WEIGHTS_DIRS
    with tempfile.TemporaryDirectory() as tmp:
        return _eval(args, str(import_released(args.weights, tmp, folders)))


def _eval(args: argparse.Namespace, checkpoint: str) -> int:
    """Clean top-1/top-5 and ECE; with --corruptions also top-1 under corruptions, written as JSON."""
    from .engine.writer import write_text_output
    from .evaluation import evaluate_checkpoint_robustness, format_per_class, format_robustness, parse_corruptions

    corruptions = parse_corruptions(args.corruptions) if args.corruptions else []
    folder = Path(args.checkpoint).parent if args.checkpoint else Path(".")
    out = Path(args.out) if args.out else folder / ROBUSTNESS_NAME
    if corruptions:
        check_output(out, args.overwrite)  # before the evaluation, not after it (and again when written)
    result = evaluate_checkpoint_robustness(
        checkpoint, args.dataset, args.data_dir, corruptions, limit=args.limit, seed=args.seed, per_class=args.per_class
    )
    clean = result["clean"]
    label = args.checkpoint or args.weights
    say = human(args)  # the human lines move to stderr under --json
    say(f"{label}: test top-1 {clean['top1']:.2f}  top-5 {clean['top5']:.2f}  ({result['n']} images)")
    say(f"ECE {clean['ece']:.2f}% ({result['n_bins']} equal-width confidence bins)")
    if result["skipped"]:
        say(
            f"skipped {len(result['skipped'])} unreadable test images: "
            + "; ".join(f"{p} ({r})" for p, r in result["skipped"])
        )
    if args.per_class:
        say(format_per_class(result["per_class"]))
    if corruptions:
        say(format_robustness(result))
        write_text_output(out, json.dumps(result, indent=2) + "\n", overwrite=args.overwrite)
        say(f"wrote {out}")
    if args.json:
        from .engine.runfiles import json_safe

        print_json(json_safe(result))
    return 0


def add_eval(sub: Any) -> None:
    """The ``eval`` command's arguments."""
    ev = sub.add_parser("eval", help="test top-1/top-5 and ECE of a checkpoint; robustness to corruptions")
    ev.add_argument("--checkpoint", help="an accord checkpoint (.pt)")
    ev.add_argument("--weights", metavar="NAME", help="the AgMax authors' released weights (accord.weights.RELEASED)")
    ev.add_argument(
        "--weights-dir", dest="weights_dir", help="folder of --weights files (default ~/.cache/accord/weights, then .)"
    )
    data_args(ev)
    ev.add_argument(
        "--corruptions",
        nargs="?",
        const="all",
        metavar="LIST",
        help="also top-1 under common corruptions at severities 1-5 (CIFAR-10-C parameters): "
        "comma-separated from noise,blur,contrast,jpeg (default all); see docs/robustness.md",
    )
    ev.add_argument("--limit", type=int, metavar="N", help="evaluate the first N test images only")
    ev.add_argument("--seed", type=seed_value, default=0, help="seed of the Gaussian noise corruption (default 0)")
    ev.add_argument("--per-class", dest="per_class", action="store_true", help="also top-1 of every class, named")
    ev.add_argument("--out", help=f"robustness JSON path (default {ROBUSTNESS_NAME} next to the checkpoint)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    json_arg(ev, "the result")
