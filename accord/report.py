"""Summarise a grid: tables of test top-1 (mean ± std over seeds), paired gains, and a bar figure.

The test accuracy of a run is the one at its best-validation epoch (``summary.json``'s ``test_top1``);
a second table uses the last epoch. The gain of a method over the baseline is the mean of the per-seed
differences (runs paired by seed share the data split and subset), with a 95% Student-t interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from .config import split_name
from .grid import GRID_FILE

AUG_ORDER = (
    "standard", "cutout", "mixup", "cutmix", "auto_augment",
    "auto_augment-cutout", "auto_augment-mixup", "auto_augment-cutmix", "randaugment",
)  # fmt: skip
METHOD_ORDER = ("ce", "ls", "agmax", "agmax-mse", "agmax-kl", "agmax-ce", "tied", "jsd", "ce2", "ce@2x")
METHOD_NAMES = {
    "ce": "baseline", "ls": "label smoothing", "agmax": "AgMax", "tied": "Tied-Augment", "jsd": "AugMix-JSD",
    "ce2": "two-view CE", "ce@2x": "baseline, 2x epochs",
}  # fmt: skip
BASELINE = "ce"
AGREEMENT = ("agmax", "tied")  # methods compared with each control below
CONTROLS = ("ls", "ce2", "ce@2x")


@dataclass(frozen=True)
class Result:
    model: str
    aug: str
    method: str
    seed: int
    test_top1: float  # at the best-validation epoch
    last_test_top1: float
    train_seconds: float


def _cell_key(run: Path) -> tuple[str, str, str]:
    """(model, augmentation, method) of a run folder ``<config>[@Kx]/seed<k>``."""
    config, _, factor = run.parent.name.partition("@")
    model, aug, method = split_name(config)
    return model, aug, (method or BASELINE) + (f"@{factor}" if factor else "")


def read_summary(path: Path) -> dict[str, Any]:
    """A run's ``summary.json``; an empty or damaged one is a :class:`ValueError` naming the file."""
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}); delete it and run the grid again to rewrite it"
        ) from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a run summary (a JSON object); delete it and run the grid again")
    return summary


def unfinished_cells(root: Path) -> list[Path]:
    """Cell folders (``<config>[@Kx]/seed<k>``) under ``root`` without a usable result: no ``summary.json``
    (stopped, failed or still training), or one without a test accuracy (no test images)."""
    cells = []
    for run in sorted(p for p in root.glob("*/seed*") if p.is_dir()):
        path = run / "summary.json"
        if not path.is_file() or read_summary(path).get("test_top1") is None:
            cells.append(run)
    return cells


def collect(root: Path) -> list[Result]:
    """Every finished run under ``root`` (``<config>[@Kx]/seed<k>/summary.json``) with a test accuracy."""
    results = []
    for path in sorted(root.glob("*/seed*/summary.json")):
        model, aug, method = _cell_key(path.parent)
        summary = read_summary(path)
        if summary.get("test_top1") is None:
            continue  # listed by unfinished_cells
        results.append(
            Result(
                model, aug, method, int(summary["seed"]),
                summary["test_top1"], summary["last_test_top1"], summary["train_seconds"],
            )
        )  # fmt: skip
    return results


def _order(values: set[str], order: tuple[str, ...]) -> list[str]:
    return [v for v in order if v in values] + sorted(values - set(order))


def t_critical(df: int) -> float:
    """Two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def paired_gain(method: dict[int, float], baseline: dict[int, float]) -> tuple[float, float, float, int] | None:
    """Mean of per-seed differences and its 95% t interval: (mean, low, high, n); None under 2 pairs."""
    seeds = sorted(set(method) & set(baseline))
    if len(seeds) < 2:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    half = t_critical(len(diffs) - 1) * stdev(diffs) / math.sqrt(len(diffs))
    return mean(diffs), mean(diffs) - half, mean(diffs) + half, len(diffs)


def _cell(values: list[float], best: bool) -> str:
    if not values:
        return ""
    text = f"{mean(values):.2f} ± {stdev(values):.2f}" if len(values) > 1 else f"{values[0]:.2f}"
    return f"**{text}**" if best else text


def accuracy_table(
    results: list[Result], model: str, field: str, pending: dict[tuple[str, str, str], int] | None = None
) -> str:
    """Mean ± std per augmentation and method; a cell with ``pending`` (unfinished) seeds says how many."""
    rows = [r for r in results if r.model == model]
    pending = pending or {}
    augs = _order({r.aug for r in rows}, AUG_ORDER)
    methods = _order({r.method for r in rows}, METHOD_ORDER)
    header = "| augmentation | " + " | ".join(METHOD_NAMES.get(m, m) for m in methods) + " |"
    lines = [header, "|---" * (len(methods) + 1) + "|"]
    for aug in augs:
        values = {m: [getattr(r, field) for r in rows if r.aug == aug and r.method == m] for m in methods}
        best = max((mean(v) for v in values.values() if v), default=None)
        cells = [_cell(values[m], bool(values[m]) and mean(values[m]) == best) for m in methods]
        cells = [
            cell
            + (f" (n={len(values[m])}, {pending[(model, aug, m)]} unfinished)" if (model, aug, m) in pending else "")
            for cell, m in zip(cells, methods, strict=True)
        ]
        lines.append(f"| {aug} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gain_table(
    results: list[Result], model: str, columns: list[tuple[str, str]] | None = None, field: str = "test_top1"
) -> str:
    """Paired gains per augmentation; ``columns`` are (method, reference) pairs, default every method - baseline."""
    rows = [r for r in results if r.model == model]
    augs = _order({r.aug for r in rows}, AUG_ORDER)
    if columns is None:
        columns = [(m, BASELINE) for m in _order({r.method for r in rows}, METHOD_ORDER) if m != BASELINE]
        header = [METHOD_NAMES.get(m, m) for m, _ in columns]
    else:
        header = [f"{METHOD_NAMES.get(m, m)} vs {METHOD_NAMES.get(ref, ref)}" for m, ref in columns]
    lines = ["| augmentation | " + " | ".join(header) + " |", "|---" * (len(columns) + 1) + "|"]
    for aug in augs:
        cells = []
        for method, reference in columns:
            runs = {m: {r.seed: getattr(r, field) for r in rows if r.aug == aug and r.method == m}
                    for m in (method, reference)}  # fmt: skip
            gain = paired_gain(runs[method], runs[reference])
            cells.append("" if gain is None else f"{gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]")
        lines.append(f"| {aug} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def control_columns(methods: set[str]) -> list[tuple[str, str]]:
    """(agreement method, control) pairs present in a grid: label smoothing, two-view CE, 2x-epochs baseline."""
    agreement = [m for m in _order(methods, METHOD_ORDER) if m.startswith(AGREEMENT)]
    return [(m, ref) for m in agreement for ref in CONTROLS if ref in methods]


def results_csv(results: list[Result]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "augmentation", "method", "n", "test_top1_mean", "test_top1_std",
                     "last_test_top1_mean", "last_test_top1_std", "gain", "gain_low", "gain_high"])  # fmt: skip
    for model, aug, method in sorted({(r.model, r.aug, r.method) for r in results}):
        runs = [r for r in results if (r.model, r.aug, r.method) == (model, aug, method)]
        best, last = [r.test_top1 for r in runs], [r.last_test_top1 for r in runs]
        base = {r.seed: r.test_top1 for r in results if (r.model, r.aug, r.method) == (model, aug, BASELINE)}
        gain = paired_gain({r.seed: r.test_top1 for r in runs}, base) if method != BASELINE else None
        row = [model, aug, method, len(runs), f"{mean(best):.4f}", _std(best), f"{mean(last):.4f}", _std(last)]
        writer.writerow(row + ([f"{g:.4f}" for g in gain[:3]] if gain else ["", "", ""]))
    return buffer.getvalue()


def _std(values: list[float]) -> str:
    return f"{stdev(values):.4f}" if len(values) > 1 else ""


COLOURS = ("ce", "ls", "agmax", "tied", "ce2", "ce@2x")  # matplotlib's C0..C5: one colour per method in every figure


def _colour(method: str, methods: list[str]) -> str:
    if method in COLOURS:
        return f"C{COLOURS.index(method)}"
    others = [m for m in methods if m not in COLOURS]
    return f"C{(len(COLOURS) + others.index(method)) % 10}"


def draw_figure(results: list[Result], model: str, path: Path) -> None:
    """Grouped bars (one group per augmentation, one bar per method) with ±1 std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.model == model]
    augs = _order({r.aug for r in rows}, AUG_ORDER)
    methods = _order({r.method for r in rows}, METHOD_ORDER)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.4 * len(augs) + 2), 4.0))
    tops, bottoms = [], []
    for i, m in enumerate(methods):
        means, stds = [], []
        for aug in augs:
            values = [r.test_top1 for r in rows if r.aug == aug and r.method == m]
            means.append(mean(values) if values else float("nan"))
            stds.append(stdev(values) if len(values) > 1 else 0.0)
        xs = [a + (i - (len(methods) - 1) / 2) * width for a in range(len(augs))]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=METHOD_NAMES.get(m, m), color=_colour(m, methods))
        tops += [mu + s for mu, s in zip(means, stds, strict=True) if mu == mu]
        bottoms += [mu - s for mu, s in zip(means, stds, strict=True) if mu == mu]
    ax.set_xticks(range(len(augs)), augs, rotation=15)
    ax.set_ylabel("test top-1 (%), mean ± std over seeds")
    ax.set_ylim(math.floor(min(bottoms) - 1), math.ceil(max(tops) + 0.5))
    ax.set_title(f"{model}: test top-1 at the best-validation epoch")
    columns = min(len(methods), 6 if len(augs) > 3 else 3)  # a legend no wider than the axes
    ax.legend(fontsize=8, ncol=columns, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


CONTROL_NOTES = {
    "ls": "label smoothing (another regulariser)",
    "ce2": "two-view CE (as many augmented images, no agreement term)",
    "ce@2x": "the baseline with 2x epochs (as many image forward passes)",
}


def _control_section(results: list[Result], model: str) -> list[str]:
    columns = control_columns({r.method for r in results if r.model == model})
    if not columns:
        return []
    notes = [CONTROL_NOTES[ref] for ref in CONTROLS if any(ref == c for _, c in columns)]
    listed = notes[0] if len(notes) == 1 else ", ".join(notes[:-1]) + " and " + notes[-1]
    return [
        f"Agreement methods against the controls, in points (paired by seed, [95% t interval]): {listed}.", "",
        gain_table(results, model, columns), "",
    ]  # fmt: skip


def grid_commands(grid: dict[str, Any]) -> list[str]:
    """The distinct ``accord grid`` commands that ran cells into a folder, in the order they first ran."""
    ran = [" ".join(s["argv"]) for s in grid["sessions"] if s["cells_run"]] or [" ".join(grid["sessions"][-1]["argv"])]
    return ["accord " + argv for argv in dict.fromkeys(ran)]


def write_report(root: Path) -> str:
    """Write ``report.md``, ``results.csv`` and ``figure-<model>.png`` into ``root``; return the markdown."""
    results = collect(root)
    if not results:
        raise FileNotFoundError(f"{root}: no finished runs (*/seed*/summary.json)")
    grid = json.loads((root / GRID_FILE).read_text()) if (root / GRID_FILE).is_file() else {}
    parts = [f"# Results: {root.name}", ""]
    unfinished = unfinished_cells(root)
    pending: dict[tuple[str, str, str], int] = {}
    for run in unfinished:
        pending[_cell_key(run)] = pending.get(_cell_key(run), 0) + 1
    if unfinished:
        names = ", ".join(f"`{run.relative_to(root)}`" for run in unfinished)
        parts += [
            f"**{len(unfinished)} unfinished cell(s), left out of every number below** (run the grid again to "
            f"finish them): {names}. Table cells with such seeds say how many they hold (n) and miss.", "",
        ]  # fmt: skip
    for model in sorted({r.model for r in results}):
        seeds = sorted({r.seed for r in results if r.model == model})
        parts += [
            f"## {model}", "",
            f"Test top-1 (%) at the epoch with the best validation top-1, mean ± std over seeds {seeds}; best of "
            "each row in bold.", "",
            accuracy_table(results, model, "test_top1", pending), "",
            "Gain over the baseline in points: mean of per-seed differences [95% t interval].", "",
            gain_table(results, model), "",
            *_control_section(results, model),
            "Test top-1 (%) at the last epoch.", "",
            accuracy_table(results, model, "last_test_top1", pending), "",
            f"![test top-1]({'figure-' + model + '.png'})", "",
        ]  # fmt: skip
        draw_figure(results, model, root / f"figure-{model}.png")
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
    (root / "report.md").write_text(text)
    (root / "results.csv").write_text(results_csv(results))
    return text
