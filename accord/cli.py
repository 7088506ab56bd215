"""The ``accord`` command line: train, resume, evaluate, list configs, compare methods."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .cli_flags import HintingParser, add_timm_flags, seed_value, timm_overrides
from .config import (
    ConfigError,
    config_name,
    config_notes,
    format_keys,
    load_config,
    load_saved_config,
    parse_overrides,
    split_name,
)
from .console import (
    QuietOnFailure,
    auto_run_folder,
    exit_interrupted_while_starting,
    human,
    json_arg,
    package_version,
    print_json,
)
from .data import dataset_names
from .export.agmax import AGMAX_ARCHS
from .outputs import BENCH_NAME, ROBUSTNESS_NAME, check_output, overwrite_arg

DEFAULT_CONFIG = "FashionMNIST-ResNet8-standard"


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = parse_overrides(args.set or [])
    for key in ("dataset", "data_dir", "epochs", "seed", "train_subset"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    return timm_overrides(args, overrides, getattr(args, "config", None) or DEFAULT_CONFIG)


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
    cfg = load_config(args.config or DEFAULT_CONFIG, _train_overrides(args))
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

    return config_from_saved({**cfg.as_flat(), "epochs": args.epochs}, f"{args.resume}/config.yaml")


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


def cmd_configs(args: argparse.Namespace) -> int:
    if args.help_keys:
        print(format_keys(load_config(args.name) if args.name else None), end="")
    elif args.name:
        cfg = load_config(args.name)
        print(yaml.safe_dump(cfg.as_flat(), sort_keys=False), end="")
        for note in config_notes(cfg):  # YAML comments: the output stays a loadable config
            print(f"# note: {note}")
    else:
        from .config.listing import format_listing

        print(format_listing(args.model, args.aug, args.method), end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Train the same config with several methods and print a table of test top-1."""
    from .engine import fit
    from .grid import check_listed

    model, aug, _ = split_name(args.config)
    names = [config_name(model, aug, m) for m in check_listed(_split(args.methods), "--methods")]
    overrides = _train_overrides(args)
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


def cmd_export(args: argparse.Namespace) -> int:
    """Write a run's evaluation model as timm-compatible safetensors, or as a folder timm loads by itself."""
    from .export import export_checkpoint
    from .export.hf_folder import export_format, export_hf_command

    if export_format(args.out, args.format) == "hf":
        return export_hf_command(args.run, args.out, args.overwrite)
    check_output(args.out, args.overwrite)
    meta = export_checkpoint(args.run, args.out, args.overwrite)
    weights = " (EMA weights)" if meta.get("weights") == "ema" else ""
    print(f"{args.out}: {meta['architecture']} ({meta['num_classes']} classes, {meta['in_chans']} channels){weights}")
    if "requires" in meta:
        print(f"note: loading it needs {meta['requires']}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Top-k classes and probabilities of image files, as a table or a CSV file."""
    from .evaluation.predict import run_predict

    if args.out:
        check_output(args.out, args.overwrite)  # before the model is loaded, not after
    return run_predict(args.source, args.images, args.top_k, args.out, args.batch_size, args.overwrite)


def cmd_import_agmax(args: argparse.Namespace) -> int:
    """Convert an AgMax release checkpoint to timm safetensors or an accord checkpoint."""
    from .export import import_agmax

    check_output(args.out, args.overwrite)
    info = import_agmax(args.checkpoint, args.arch, args.out, args.config, args.overwrite)
    print(f"{args.out}: {info['architecture']} ({info['num_classes']} classes)")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Draw a run's loss terms and top-1 per epoch."""
    from .plot import plot_run

    try:
        print(plot_run(args.run, args.out, args.overwrite))
    except ModuleNotFoundError as e:
        print(f"accord: error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the agreement methods' training step against a CE baseline; print a table and write JSON."""
    import torch

    from .bench import BenchConfig, format_table, run_benchmark
    from .engine.writer import write_text_output

    check_output(args.out, args.overwrite)  # before the benchmark runs, and again when written

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    cfg = BenchConfig(
        model=args.model,
        batch=args.batch,
        views=args.views,
        image_size=args.image_size,
        channels=args.channels,
        repeats=args.repeats,
        device=device,
        e2e_steps=args.e2e_steps,
        e2e_workers=args.workers,
        compile=args.compile,
        amp=args.amp,
        e2e_data=args.e2e_data,
    )
    result = run_benchmark(cfg, log=lambda msg: print(msg, file=sys.stderr))
    print(format_table(result))
    write_text_output(args.out, json.dumps(result, indent=2) + "\n", overwrite=args.overwrite)
    print(f"wrote {args.out}")
    return 0


def _split(text: str) -> list[str]:
    return [item for item in text.split(",") if item]


def build_parser() -> argparse.ArgumentParser:
    parser = HintingParser(prog="accord", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"accord {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", help=f"a registered data set: {', '.join(dataset_names())}")
        p.add_argument("--data-dir", dest="data_dir", help="folder of the dataset's files")

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
    train.set_defaults(func=cmd_train)

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
    ev.set_defaults(func=cmd_eval)

    cfgs = sub.add_parser("configs", help="list built-in configs, or print one resolved")
    cfgs.add_argument("name", nargs="?", help="a built-in config name or a YAML file")
    cfgs.add_argument(
        "--help-keys", action="store_true", help="every config key with its type, default and description"
    )
    cfgs.add_argument("--model", help="only this model's configs (e.g. FashionMNIST-ResNet8, ResNet50)")
    cfgs.add_argument("--aug", help="only this augmentation's (e.g. standard, cutout, auto_augment-mixup)")
    cfgs.add_argument("--method", help="only this method's (ce: the baseline; agmax, tied, ...)")
    cfgs.set_defaults(func=cmd_configs)

    cmp_ = sub.add_parser("compare", help="train one config with several methods; print a table")
    cmp_.add_argument("--config", default=DEFAULT_CONFIG, help="a built-in <model>-<augmentation> name")
    cmp_.add_argument("--methods", default="ce,agmax,tied", help="comma-separated methods (default ce,agmax,tied)")
    data_args(cmp_)
    cmp_.add_argument("--epochs", type=int, default=3)
    cmp_.add_argument("--train-subset", dest="train_subset", type=int, default=20000)
    cmp_.add_argument("--seed", type=int)
    cmp_.add_argument("--set", action="append", metavar="KEY=VALUE")
    cmp_.add_argument("--out", help="folder of the runs (default runs/compare-<model>-<augmentation>-<timestamp>)")
    cmp_.add_argument("--overwrite", action="store_true", help="replace runs already in --out")
    json_arg(cmp_, "one summary per method")
    cmp_.set_defaults(func=cmd_compare)
    grid = sub.add_parser("grid", help="train a grid of configs x seeds (resumes a stopped grid)")
    grid.add_argument("--models", required=True, help="model part of config names, e.g. FashionMNIST-ResNet8")
    grid.add_argument("--augs", default="standard", help="comma-separated augmentations, e.g. standard,cutout")
    grid.add_argument("--methods", default="ce,ls,agmax,tied", help="comma-separated; NAME@2x doubles the epochs")
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
    grid.set_defaults(func=cmd_grid)

    report = sub.add_parser("report", help="tables (markdown, CSV) and a figure of a grid's results")
    report.add_argument("dir")
    overwrite_arg(report, "replace report files accord did not write")
    report.set_defaults(func=cmd_report)

    export = sub.add_parser("export", help="write a run's eval model as timm safetensors, or a folder timm loads")
    export.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="run folder (its best checkpoint) or a .pt")
    export.add_argument("--out", required=True, help="a .safetensors file, or a folder (a path without a suffix)")
    export.add_argument(
        "--format",
        choices=("safetensors", "hf"),
        help="safetensors: one file; hf: a folder as timm's save_for_hf writes it, config.json and model.safetensors, "
        "for timm.create_model('local-dir:OUT', pretrained=True) (default: hf when --out has no suffix)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file or export folder")
    export.set_defaults(func=cmd_export)

    pred = sub.add_parser("predict", help="top-k class names and probabilities of image files or folders")
    pred.add_argument("source", metavar="RUN_OR_EXPORT", help="run folder, checkpoint (.pt) or accord export folder")
    pred.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders searched in")
    pred.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes per image (default 5)")
    pred.add_argument("--out", help="write a CSV file instead of printing a table")
    pred.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    pred.add_argument("--batch-size", dest="batch_size", type=int, default=64, help="images per forward pass")
    pred.set_defaults(func=cmd_predict)

    agmax = sub.add_parser("import-agmax", help="convert an AgMax release ResNet checkpoint to timm keys")
    agmax.add_argument("checkpoint", metavar="CKPT.pth")
    agmax.add_argument("--arch", required=True, choices=tuple(AGMAX_ARCHS))
    agmax.add_argument("--out", required=True, help=".safetensors (timm) or .pt (accord checkpoint for accord eval)")
    agmax.add_argument("--config", help="accord config stored in a .pt output (default <Model>-standard)")
    agmax.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    agmax.set_defaults(func=cmd_import_agmax)

    plot = sub.add_parser("plot", help="figure of a run's loss terms and top-1 per epoch (needs matplotlib)")
    plot.add_argument("run", metavar="RUN_DIR")
    plot.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    overwrite_arg(plot, "replace an --out file accord did not write")
    plot.set_defaults(func=cmd_plot)

    bench = sub.add_parser("bench", help="agmax/tied/jsd steps vs a CE step, loaders, memory, loop end to end; JSON")
    bench.add_argument("--model", default="ResNet8", help="ResNet8/ResNet20/... or a timm name, e.g. resnet18")
    bench.add_argument("--batch", type=int, default=64, help="images per step, before views (default 64)")
    bench.add_argument("--views", type=int, default=2, help="views of agmax/tied (jsd always uses 3)")
    bench.add_argument("--image-size", dest="image_size", type=int, default=32)
    bench.add_argument("--channels", type=int, default=3)
    bench.add_argument("--repeats", type=int, default=10, help="timed interleaved repeats (median reported)")
    bench.add_argument("--device", help="cpu or cuda (default cuda when available)")
    bench.add_argument("--e2e-steps", dest="e2e_steps", type=int, default=20, help="timed steps per end-to-end epoch")
    bench.add_argument("--workers", type=int, default=2, help="loader workers of the end-to-end runs (default 2)")
    bench.add_argument("--compile", action="store_true", help="torch.compile the timed steps as compile: true does")
    bench.add_argument("--amp", choices=("none", "bf16"), default="none", help="autocast of the timed steps")
    bench.add_argument("--e2e-data", dest="e2e_data", help="an image folder: time end to end on it at --image-size")
    bench.add_argument("--out", default=BENCH_NAME, help=f"JSON output path (default {BENCH_NAME})")
    overwrite_arg(bench, "replace an --out file accord did not write")
    bench.set_defaults(func=cmd_bench)
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
        from .engine import CheckpointError, NonFiniteLossError, RunFolderError
        from .engine.trainer import TrainingInterrupted
        from .stops import end_on_fault
    except KeyboardInterrupt:
        exit_interrupted_while_starting()

    try:
        return args.func(args)
    except TrainingInterrupted as e:  # SIGINT/SIGTERM: checkpoint written at a step boundary
        if os.environ.get("RANK", "0") == "0":  # every process of a torchrun group stops; one line says so
            print(f"accord: {e}", file=sys.stderr)
        return e.exit_code  # 130 for SIGINT, 143 for SIGTERM, 138 for SIGUSR1
    except (ConfigError, RunFolderError, CheckpointError, FileNotFoundError) as e:
        print(f"accord: error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"accord: error: {e}; stopped, the last good checkpoint is kept", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # bad input, a full disk, a read-only folder: nothing written is half a file
        if os.environ.get("ACCORD_DEBUG", "") not in ("", "0"):  # where it came from, for a bug report
            raise
        print(f"accord: error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, RuntimeError) as e:  # an interrupt, a dead or stalled loader worker, a lost process
        return end_on_fault(e, args, argv)


if __name__ == "__main__":
    sys.exit(main())
