"""The report's figures: test top-1 of every method as dots, and each method's paired gain over the baseline.

``figure-<model>.png``: per augmentation, each method's mean ± std over seeds (a dot with error bars) and
every seed as a small point; a dot plot, so the axis need not start at zero. ``gains-<model>.png``: per
augmentation, each method's gain over the baseline paired by seed (mean and 95% t interval) with every
seed's difference as a small point, and a line at zero: a method whose interval clears the line is the
one the report's tables print in bold.

The figures are drawn on matplotlib's Agg canvas under its default style (the caller's backend and
matplotlibrc play no part), and the PNG holds no timestamp, so the same runs give the same bytes under
the same matplotlib version, which the PNG names in its ``Software`` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev
from typing import Any

from .engine.writer import write_output
from .losses import METHODS, baseline_method
from .results import (
    AUG_ORDER,
    EQUAL_COMPUTE_COLOUR,
    Result,
    equal_compute_arm,
    in_order,
    label,
    method_order,
    paired_gain,
)

DPI = 120


@dataclass(frozen=True)
class Point:
    """One method at one augmentation: its dot, error bar and per-seed points."""

    aug: str
    method: str
    centre: float  # mean test top-1, or mean paired gain
    low: float  # centre - std, or the interval's low end
    high: float
    seeds: tuple[float, ...]  # per seed, in seed order: test top-1, or the paired difference


def level_points(results: list[Result], model: str, field: str = "test_top1") -> list[Point]:
    """Mean ± std over seeds of every (augmentation, method) with a finished run."""
    rows = [r for r in results if r.model == model]
    points = []
    for aug in in_order({r.aug for r in rows}, AUG_ORDER):
        for method in in_order({r.method for r in rows}, method_order()):
            runs = {r.seed: getattr(r, field) for r in rows if (r.aug, r.method) == (aug, method)}
            seeds = tuple(runs[s] for s in sorted(runs))
            if seeds:
                spread = stdev(seeds) if len(seeds) > 1 else 0.0
                points.append(Point(aug, method, mean(seeds), mean(seeds) - spread, mean(seeds) + spread, seeds))
    return points


def gain_points(results: list[Result], model: str, field: str = "test_top1") -> list[Point]:
    """Paired gain over the baseline (mean, 95% t interval, per-seed differences) of every method and augmentation."""
    rows = [r for r in results if r.model == model]
    points = []
    for aug in in_order({r.aug for r in rows}, AUG_ORDER):
        base = {r.seed: getattr(r, field) for r in rows if (r.aug, r.method) == (aug, baseline_method())}
        for method in in_order({r.method for r in rows}, method_order()):
            runs = {r.seed: getattr(r, field) for r in rows if (r.aug, r.method) == (aug, method)}
            gain = paired_gain(runs, base) if method != baseline_method() else None
            if gain is not None:
                diffs = tuple(runs[s] - base[s] for s in sorted(set(runs) & set(base)))
                points.append(Point(aug, method, gain[0], gain[1], gain[2], diffs))
    return points


def fixed_colours() -> dict[str, str]:
    """The arms with a colour of their own in every figure (MethodSpec.colour, the equal-compute baseline's)."""
    colours = {name: spec.colour for name, spec in METHODS.items() if spec.colour is not None}
    return colours | {equal_compute_arm(): EQUAL_COMPUTE_COLOUR}


def _colour(method: str, methods: list[str]) -> str:
    """An arm's fixed colour, else the next of matplotlib's cycle after the fixed ones, in ``methods`` order."""
    fixed = fixed_colours()
    if method in fixed:
        return fixed[method]
    others = [m for m in methods if m not in fixed]
    return f"C{(len(fixed) + others.index(method)) % 10}"


def _style() -> Any:
    import matplotlib.style

    return matplotlib.style.context("default")


def _dot_figure(points: list[Point], title: str, ylabel: str, zero_line: bool) -> Any:
    """Groups of dots along x (one group per augmentation, one dot per method), seeds as small points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    augs = list(dict.fromkeys(p.aug for p in points))
    methods = in_order({p.method for p in points}, method_order())
    width = 0.8 / len(methods)
    with _style():
        figure = Figure(figsize=(max(7.0, 1.4 * len(augs) + 2), 4.4))
        FigureCanvasAgg(figure)
        ax = figure.subplots()
        if zero_line:
            ax.axhline(0.0, color="black", linewidth=1.0, zorder=1)
        for i, method in enumerate(methods):
            mine = [p for p in points if p.method == method]
            colour = _colour(method, methods)
            xs = [augs.index(p.aug) + (i - (len(methods) - 1) / 2) * width for p in mine]
            for x, p in zip(xs, mine, strict=True):  # seeds spread a little left to right, in seed order
                spread = [x + width * 0.5 * ((k + 0.5) / len(p.seeds) - 0.5) for k in range(len(p.seeds))]
                ax.scatter(spread, p.seeds, s=9, color=colour, alpha=0.45, linewidths=0, zorder=2)
            errors = [[p.centre - p.low for p in mine], [p.high - p.centre for p in mine]]
            ax.errorbar(xs, [p.centre for p in mine], yerr=errors, fmt="o", markersize=6, capsize=3,
                        color=colour, markeredgecolor="black", markeredgewidth=0.6, zorder=3,
                        label=label(method))  # fmt: skip
        for edge in range(len(augs) - 1):
            ax.axvline(edge + 0.5, color="grey", linewidth=0.5, alpha=0.5, zorder=0)
        ax.set_xticks(range(len(augs)), augs)
        ax.set_xlim(-0.5, len(augs) - 0.5)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        columns = min(len(methods), 6 if len(augs) > 3 else 3)  # a legend no wider than the axes
        ax.legend(fontsize=8, ncol=columns, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        figure.tight_layout()
    return figure


def levels_figure(results: list[Result], model: str) -> Any:
    """Test top-1 of every method per augmentation: mean ± std over seeds, every seed a point."""
    return _dot_figure(
        level_points(results, model),
        f"{model}: test top-1 at the best-validation epoch\n(dot and bar: mean ± std over seeds; small points: seeds)",
        "test top-1 (%)",
        zero_line=False,
    )


def gains_figure(results: list[Result], model: str) -> Any:
    """Gain of every method over the baseline per augmentation, paired by seed, with its 95% t interval."""
    return _dot_figure(
        gain_points(results, model),
        f"{model}: gain over the baseline, paired by seed, at the best-validation epoch\n"
        "(dot and bar: mean and 95% t interval; small points: each seed's difference)",
        "gain in test top-1 (points)",
        zero_line=True,
    )


def gains_by_setting_figure(settings: dict[str, list[Result]], model: str, what: str) -> Any:
    """The gains figure of several grids side by side, one group per (setting, augmentation), settings in
    the order given (e.g. training-set sizes), each method's gain over its own grid's baseline."""
    points = [
        Point(f"{p.aug}\n{setting}", p.method, p.centre, p.low, p.high, p.seeds)
        for setting, results in settings.items()
        for p in gain_points(results, model)
    ]
    figure = _dot_figure(
        points,
        f"{model}: gain over the baseline by {what}, paired by seed, at the best-validation epoch\n"
        "(dot and bar: mean and 95% t interval; small points: each seed's difference)",
        "gain in test top-1 (points)",
        zero_line=True,
    )
    figure.axes[0].get_legend().set_bbox_to_anchor((0.5, -0.17))  # below the two-line group labels
    return figure


#: The figures ``accord report`` writes for each model (``{model}``) of a grid folder.
FIGURE_NAMES = ("figure-{model}.png", "gains-{model}.png")


def save(figure: Any, path: Path, overwrite: bool = False) -> None:
    """Write ``figure`` as a PNG at ``path`` through the one writer (:func:`~accord.engine.writer.write_output`)."""
    with _style():
        write_output(path, lambda f: figure.savefig(f, dpi=DPI, bbox_inches="tight", format="png"), overwrite=overwrite)


def write_figures(results: list[Result], model: str, root: Path, overwrite: bool = False) -> list[tuple[str, str]]:
    """Write ``figure-<model>.png`` and, where some method pairs with the baseline, ``gains-<model>.png``.

    Returns (what it shows, file name) of each.
    """
    levels, gains = (name.format(model=model) for name in FIGURE_NAMES)
    written = [("test top-1", levels)]
    save(levels_figure(results, model), root / levels, overwrite)
    if gain_points(results, model):
        written.append(("gain over the baseline", gains))
        save(gains_figure(results, model), root / gains, overwrite)
    return written
