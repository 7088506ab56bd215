"""Summarise a grid: tables of test top-1 (mean ± std over seeds), paired gains, and figures of both.

The test accuracy of a run is the one at its best-validation epoch (``summary.json``'s ``test_top1``);
a second table uses the last epoch. The gain of a method over the baseline is the mean of the per-seed
differences (runs paired by seed share the data split and subset), with a 95% Student-t interval; a
method's cell is bold only where that interval lies entirely above zero. A cell with fewer finished seeds
than the grid has (a run folder without ``summary.json``, or a seed never run) is marked ``(n=k)``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from .config import ConfigError, split_name
from .engine.checkpoint import read_json
from .engine.environment import environment_line
from .engine.runfolder import RunFolder
from .engine.writer import check_output, write_text_output
from .errors import UserError
from .grid import GRID_FILE, read_grid_record
from .losses import baseline_method
from .report_cells import check_like_with_like
from .results import (
    AUG_ORDER,
    Result,
    Unfinished,
    clear_gain,
    control_arms,
    control_note,
    in_order,
    is_agreement,
    label,
    method_order,
    paired_gain,
)

REPORT_FILES = ("report.md", "results.csv")  # what ``accord report`` writes in the grid folder, with the figures
SUMMARY_KEYS = ("seed", "test_top1", "last_test_top1", "train_seconds")


def _cell_of(folder: Path) -> tuple[str, str, str]:
    """(model, augmentation, method label) of a ``<config>[@Kx]`` folder."""
    config, _, factor = folder.name.partition("@")
    try:
        model, aug, method = split_name(config)
    except ConfigError:
        raise UserError(
            f"{folder}: not a grid cell folder (<config>[@Kx]/seed<k>, {config!r} is no config); move it "
            "out of the grid folder"
        ) from None
    return model, aug, (method or baseline_method()) + (f"@{factor}" if factor else "")


def read_summary(path: Path) -> dict[str, float]:
    """The numbers of a run's ``summary.json``; a ValueError that names the file when it is empty or invalid."""
    if not path.read_text().strip():
        raise UserError(f"{path}: empty file, not a run summary")
    summary = read_json(path)
    missing = [k for k in SUMMARY_KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise UserError(f"{path}: not a run summary (no {', '.join(missing)})")
    if summary["test_top1"] is None:  # a run without test images: no result, listed as unfinished
        return {}
    bad = [k for k in (*SUMMARY_KEYS, "epochs") if k in summary and not _finite_number(summary[k])]
    if bad or not float(summary["seed"]).is_integer():
        raise UserError(
            f"{path}: not a run summary ({', '.join(bad or ['seed'])} must be finite numbers"
            f"{'' if bad else ', the seed a whole one'}; was it edited by hand?)"
        )
    return {k: float(summary[k]) for k in (*SUMMARY_KEYS, "epochs") if k in summary}


def _finite_number(value: Any) -> bool:
    """A JSON number (not ``true``, a string, ``NaN`` or ``Infinity``)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def collect(root: Path) -> list[Result]:
    """Every finished run under ``root`` (``<config>[@Kx]/seed<k>/summary.json``)."""
    results = []
    for path in sorted(root.glob(f"*/seed*/{RunFolder.SUMMARY}")):
        if not path.is_file():  # a FIFO or a folder under that name would block or fail the read
            raise UserError(f"{path}: not a regular file, not a run summary")
        summary = read_summary(path)
        if not summary:
            continue
        results.append(
            Result(
                *_cell_of(path.parent.parent), int(summary["seed"]),
                summary["test_top1"], summary["last_test_top1"], summary["train_seconds"], summary.get("epochs"),
            )
        )  # fmt: skip
    return results


def finished_runs(root: Path) -> list[tuple[Path, str, str, int]]:
    """(run folder, model, method, summary seed) of every finished run under ``root``, as :func:`collect` finds them."""
    runs = []
    for path in sorted(root.glob(f"*/seed*/{RunFolder.SUMMARY}")):
        summary = read_summary(path)
        if summary:
            model, _, method = _cell_of(path.parent.parent)
            runs.append((path.parent, model, method, int(summary["seed"])))
    return runs


def collect_unfinished(root: Path) -> list[Unfinished]:
    """Every run folder under ``root`` without a result: no ``summary.json`` yet, or no test accuracy in it."""
    folders = sorted(
        p for p in root.glob("*/seed*")
        if p.is_dir() and (not RunFolder(p).is_finished() or not read_summary(RunFolder(p).summary))
    )  # fmt: skip
    return [Unfinished(*_cell_of(p.parent), int(p.name.removeprefix("seed"))) for p in folders if p.name[4:].isdigit()]


UNRECORDED = "not recorded (runs from before accord recorded it in summary.json)"


def run_environments(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Where each finished run under ``root`` trained, by run folder (``<config>/seed<k>``): its summary's
    ``earlier_environments`` and ``environment``; an empty list for a run from before accord recorded them."""
    found = {}
    for path in sorted(root.glob(f"*/seed*/{RunFolder.SUMMARY}")):
        summary = read_json(path)
        envs = [*summary.get("earlier_environments", []), summary["environment"]] if "environment" in summary else []
        if not all(isinstance(env, dict) for env in envs):
            raise UserError(f"{path}: environment must be an object of names and values")
        found[str(path.parent.relative_to(root))] = envs
    return found


def environment_section(runs: dict[str, list[dict[str, Any]]]) -> tuple[list[str], str]:
    """The report's lines on where the runs trained, and a one-line warning when they come from more than one
    environment (empty when they do not): numbers from different environments differ by more than method."""
    distinct: dict[str, list[str]] = {}
    for folder, envs in runs.items():
        lines = dict.fromkeys(environment_line(env) for env in envs) or [UNRECORDED]
        for line in lines:
            distinct.setdefault(line, []).append(folder)
    if len(distinct) == 1:
        return [f"Environment of every run: {next(iter(distinct))}.", ""], ""
    warning = (
        f"the {len(runs)} runs come from {len(distinct)} environments, so cells may differ by where they trained "
        "as well as by method (see report.md)"
    )
    lines = [f"**Warning**: {warning}:", ""]
    lines += [f"- {line}: {len(folders)} run(s), e.g. `{folders[0]}`" for line, folders in distinct.items()]
    return [*lines, ""], warning


def _layout(
    results: list[Result], unfinished: list[Unfinished], model: str
) -> tuple[list[Result], list[str], list[str], set[tuple[str, str]], int]:
    """A model's finished runs, augmentations, methods, cells (aug, method) and number of seeds in the grid."""
    rows = [r for r in results if r.model == model]
    waiting = [u for u in unfinished if u.model == model]
    cells = {(r.aug, r.method) for r in rows} | {(u.aug, u.method) for u in waiting}
    augs = in_order({a for a, _ in cells}, AUG_ORDER)
    methods = in_order({m for _, m in cells}, method_order())
    return rows, augs, methods, cells, len({r.seed for r in rows} | {u.seed for u in waiting})


def short_cells(results: list[Result], unfinished: list[Unfinished], model: str) -> list[tuple[str, str, int]]:
    """(augmentation, method, finished seeds) of every cell with fewer finished seeds than the grid has."""
    rows, augs, methods, cells, seeds = _layout(results, unfinished, model)
    counts = {(a, m): len([r for r in rows if (r.aug, r.method) == (a, m)]) for a, m in cells}
    return [(a, m, counts[a, m]) for a in augs for m in methods if (a, m) in cells and counts[a, m] < seeds]


def _bold(text: str, bold: bool) -> str:
    return f"**{text}**" if bold else text


def _cell(values: list[float], bold: bool, note: str = "") -> str:
    text = "" if not values else f"{mean(values):.2f}" + (f" ± {stdev(values):.2f}" if len(values) > 1 else "")
    return " ".join(t for t in (_bold(text, bold) if text else "", note) if t)


def _seeds(rows: list[Result], aug: str, method: str, field: str) -> dict[int, float]:
    return {r.seed: getattr(r, field) for r in rows if r.aug == aug and r.method == method}


def _note(present: bool, n: int, seeds: int) -> str:
    """``(n=3)`` for a cell of the grid with fewer finished seeds (or pairs) than the grid has."""
    return f"(n={n})" if present and n < seeds else ""


def accuracy_table(results: list[Result], model: str, field: str, unfinished: Sequence[Unfinished] = ()) -> str:
    """Mean ± std per augmentation and method; bold where the paired gain over the baseline is clear."""
    rows, augs, methods, cells, seeds = _layout(results, list(unfinished), model)
    header = "| augmentation | " + " | ".join(label(m) for m in methods) + " |"
    lines = [header, "|---" * (len(methods) + 1) + "|"]
    baseline = baseline_method()
    for aug in augs:
        runs = {m: _seeds(rows, aug, m, field) for m in methods}
        base = runs.get(baseline, {})
        texts = [
            _cell(list(runs[m].values()), m != baseline and clear_gain(paired_gain(runs[m], base)),
                  _note((aug, m) in cells, len(runs[m]), seeds))
            for m in methods
        ]  # fmt: skip
        lines.append(f"| {aug} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def gain_table(
    results: list[Result],
    model: str,
    columns: list[tuple[str, str]] | None = None,
    field: str = "test_top1",
    unfinished: Sequence[Unfinished] = (),
) -> str:
    """Paired gains per augmentation; ``columns`` are (method, reference) pairs, default every method - baseline."""
    rows, augs, methods, cells, seeds = _layout(results, list(unfinished), model)
    if columns is None:
        columns = [(m, b) for b in [baseline_method()] for m in methods if m != b]
        header = [label(m) for m, _ in columns]
    else:
        header = [f"{label(m)} vs {label(ref)}" for m, ref in columns]
    lines = ["| augmentation | " + " | ".join(header) + " |", "|---" * (len(columns) + 1) + "|"]
    for aug in augs:
        texts = []
        for method, reference in columns:
            runs, base = _seeds(rows, aug, method, field), _seeds(rows, aug, reference, field)
            gain = paired_gain(runs, base)
            text = "" if gain is None else _bold(f"{gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]", clear_gain(gain))
            present = (aug, method) in cells and (aug, reference) in cells
            texts.append(" ".join(t for t in (text, _note(present, len(set(runs) & set(base)), seeds)) if t))
        lines.append(f"| {aug} | " + " | ".join(texts) + " |")
    return "\n".join(lines)


def control_columns(methods: set[str]) -> list[tuple[str, str]]:
    """(agreement method, control) pairs present in a grid (:func:`control_arms`: label smoothing, two-view CE,
    2x-epochs baseline)."""
    agreement = [m for m in in_order(methods, method_order()) if is_agreement(m)]
    return [(m, ref) for m in agreement for ref in control_arms() if ref in methods]


def results_csv(results: list[Result]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "augmentation", "method", "n", "test_top1_mean", "test_top1_std",
                     "last_test_top1_mean", "last_test_top1_std", "gain", "gain_low", "gain_high"])  # fmt: skip
    baseline = baseline_method()
    for model, aug, method in sorted({(r.model, r.aug, r.method) for r in results}):
        runs = [r for r in results if (r.model, r.aug, r.method) == (model, aug, method)]
        best, last = [r.test_top1 for r in runs], [r.last_test_top1 for r in runs]
        base = {r.seed: r.test_top1 for r in results if (r.model, r.aug, r.method) == (model, aug, baseline)}
        gain = paired_gain({r.seed: r.test_top1 for r in runs}, base) if method != baseline else None
        row = [model, aug, method, len(runs), f"{mean(best):.4f}", _std(best), f"{mean(last):.4f}", _std(last)]
        writer.writerow(row + ([f"{g:.4f}" for g in gain[:3]] if gain else ["", "", ""]))
    return buffer.getvalue()


def _std(values: list[float]) -> str:
    return f"{stdev(values):.4f}" if len(values) > 1 else ""


def _control_section(results: list[Result], model: str, unfinished: list[Unfinished]) -> list[str]:
    columns = control_columns({r.method for r in results if r.model == model} | {u.method for u in unfinished})
    if not columns:
        return []
    notes = [control_note(ref) for ref in control_arms() if any(ref == c for _, c in columns)]
    listed = notes[0] if len(notes) == 1 else ", ".join(notes[:-1]) + " and " + notes[-1]
    return [
        f"Agreement methods against the controls, in points (paired by seed, [95% t interval]): {listed}; "
        "bold where the interval lies above zero.", "",
        gain_table(results, model, columns, unfinished=unfinished), "",
    ]  # fmt: skip


def _unfinished_line(results: list[Result], unfinished: list[Unfinished], model: str) -> list[str]:
    short = short_cells(results, unfinished, model)
    if not short:
        return []
    seeds = _layout(results, unfinished, model)[4]
    waiting = len([u for u in unfinished if u.model == model])
    return [
        f"Unfinished cells: {len(short)}, marked (n=finished seeds) where the grid has {seeds} seeds; "
        f"{waiting} run folder(s) without {RunFolder.SUMMARY}.", "",
    ]  # fmt: skip


def grid_commands(grid: dict[str, Any]) -> list[str]:
    """The distinct ``accord grid`` commands that ran cells into a folder, in the order they first ran."""
    ran = [" ".join(s["argv"]) for s in grid["sessions"] if s["cells_run"]] or [" ".join(grid["sessions"][-1]["argv"])]
    return ["accord " + argv for argv in dict.fromkeys(ran)]


def check_budgets(root: Path, results: list[Result]) -> None:
    """Refuse to set runs of different budgets side by side: every run of a model must have trained the same
    epochs (``NAME@Kx`` runs K times as many), or a method would be compared at 2 epochs with one at 1."""
    for model in sorted({r.model for r in results}):
        budgets: dict[float, str] = {}
        for r in results:
            if r.model == model and r.epochs is not None:
                factor = int(r.method.partition("@")[2].removesuffix("x") or 1)
                budgets.setdefault(r.epochs / factor, f"{r.aug}/{r.method} seed {r.seed}: {r.epochs:g} epochs")
        if len(budgets) > 1:
            raise UserError(
                f"{root}: {model}'s runs trained different numbers of epochs ({'; '.join(budgets.values())}); "
                "a report compares runs of one budget - retrain the odd ones or report them from separate folders"
            )


def write_report(root: Path, overwrite: bool = False) -> str:
    """Write ``report.md``, ``results.csv`` and the figures (``report_figures``) into ``root``; return the markdown.

    Every one of them is checked before the first is written (:func:`~accord.engine.writer.check_output`): a
    file there that accord did not write needs ``overwrite``; a symlink, FIFO or folder is refused."""
    from .report_figures import FIGURE_NAMES, write_figures

    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    results, unfinished = collect(root), collect_unfinished(root)
    if not results:
        raise FileNotFoundError(f"{root}: no finished runs (*/seed*/{RunFolder.SUMMARY})")
    check_budgets(root, results)
    models = sorted({r.model for r in results})
    for name in [*REPORT_FILES, *(f.format(model=m) for m in models for f in FIGURE_NAMES)]:
        check_output(root / name, overwrite, "")
    grid = read_grid_record(root / GRID_FILE) if (root / GRID_FILE).is_file() else {}
    check_like_with_like(root, finished_runs(root), grid.get("per_method_overrides") or {})
    parts = [f"# Results: {root.name}", ""]
    for model in models:
        seeds = sorted({r.seed for r in results if r.model == model} | {u.seed for u in unfinished if u.model == model})
        parts += [
            f"## {model}", "",
            f"Test top-1 (%) at the epoch with the best validation top-1, mean ± std over seeds {seeds}. Bold: the "
            "method's gain over the baseline, paired by seed, has a 95% t interval entirely above zero (next "
            "table); the baseline is never bold.", "",
            accuracy_table(results, model, "test_top1", unfinished), "",
            *_unfinished_line(results, unfinished, model),
            "Gain over the baseline in points: mean of per-seed differences [95% t interval]; bold where the "
            "interval lies above zero.", "",
            gain_table(results, model, unfinished=unfinished), "",
            *_control_section(results, model, unfinished),
            "Test top-1 (%) at the last epoch; bold by the same rule, on the paired gains at the last epoch.", "",
            accuracy_table(results, model, "last_test_top1", unfinished), "",
        ]  # fmt: skip
        figures = write_figures(results, model, root, overwrite)
        parts += [line for alt, name in figures for line in (f"![{alt}]({name})", "")]
    environments, _ = environment_section(run_environments(root))
    parts += environments
    runs = len(results)
    hours = sum(r.train_seconds for r in results) / 3600
    parts.append(f"{runs} runs, {hours:.2f} h of training time in all (evaluation not included).")
    if grid.get("sessions"):
        wall = sum(s["wall_seconds"] for s in grid["sessions"]) / 3600
        commands = grid_commands(grid)
        parts.append(
            f"Grid wall time {wall:.2f} h over {len(grid['sessions'])} session(s); "
            + ("command:" if len(commands) == 1 else "commands, in the order they first ran:")
        )
        parts += ["", "```", *commands, "```"]
    text = "\n".join(parts) + "\n"
    write_text_output(root / REPORT_FILES[0], text, overwrite=overwrite)
    write_text_output(root / REPORT_FILES[1], results_csv(results), overwrite=overwrite)
    return text
