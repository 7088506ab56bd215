"""The commands around runs: ``configs``, ``export``, ``predict``, ``import-agmax``, ``plot`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from .config import config_notes, format_keys, load_config
from .export.agmax import AGMAX_ARCHS
from .losses import METHODS, baseline_method
from .outputs import BENCH_NAME, check_output, overwrite_arg


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


def add_configs(sub: Any) -> None:
    """The ``configs`` command's arguments."""
    cfgs = sub.add_parser("configs", help="list built-in configs, or print one resolved")
    cfgs.add_argument("name", nargs="?", help="a built-in config name or a YAML file")
    cfgs.add_argument(
        "--help-keys", action="store_true", help="every config key with its type, default and description"
    )
    cfgs.add_argument("--model", help="only this model's configs (e.g. FashionMNIST-ResNet8, ResNet50)")
    cfgs.add_argument("--aug", help="only this augmentation's (e.g. standard, cutout, auto_augment-mixup)")
    cfgs.add_argument("--method", help=f"only this method's ({baseline_method()}: the baseline; {', '.join(METHODS)})")


def add_export(sub: Any) -> None:
    """The ``export`` command's arguments."""
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


def add_predict(sub: Any) -> None:
    """The ``predict`` command's arguments."""
    pred = sub.add_parser("predict", help="top-k class names and probabilities of image files or folders")
    pred.add_argument("source", metavar="RUN_OR_EXPORT", help="run folder, checkpoint (.pt) or accord export folder")
    pred.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders searched in")
    pred.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes per image (default 5)")
    pred.add_argument("--out", help="write a CSV file instead of printing a table")
    pred.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    pred.add_argument("--batch-size", dest="batch_size", type=int, default=64, help="images per forward pass")


def add_import_agmax(sub: Any) -> None:
    """The ``import-agmax`` command's arguments."""
    agmax = sub.add_parser("import-agmax", help="convert an AgMax release ResNet checkpoint to timm keys")
    agmax.add_argument("checkpoint", metavar="CKPT.pth")
    agmax.add_argument("--arch", required=True, choices=tuple(AGMAX_ARCHS))
    agmax.add_argument("--out", required=True, help=".safetensors (timm) or .pt (accord checkpoint for accord eval)")
    agmax.add_argument("--config", help="accord config stored in a .pt output (default <Model>-standard)")
    agmax.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def add_plot(sub: Any) -> None:
    """The ``plot`` command's arguments."""
    plot = sub.add_parser("plot", help="figure of a run's loss terms and top-1 per epoch (needs matplotlib)")
    plot.add_argument("run", metavar="RUN_DIR")
    plot.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    overwrite_arg(plot, "replace an --out file accord did not write")


def add_bench(sub: Any) -> None:
    """The ``bench`` command's arguments."""
    bench = sub.add_parser("bench", help="each method's step vs the baseline's, loaders, memory, loop end to end; JSON")
    bench.add_argument("--model", default="ResNet8", help="ResNet8/ResNet20/... or a timm name, e.g. resnet18")
    bench.add_argument("--batch", type=int, default=64, help="images per step, before views (default 64)")
    bench.add_argument("--views", type=int, default=2, help="views of a method that does not fix its own number")
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
