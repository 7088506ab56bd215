"""Training curves of a run folder: every loss term and train/val/test top-1 per epoch from ``metrics.jsonl``.

matplotlib is optional (``pip install accord[plot]``); the figure is drawn with the Agg canvas directly,
so plotting never changes the caller's matplotlib backend and needs no display.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .engine.runfiles import read_metrics
from .engine.runfolder import RunFolder
from .engine.writer import check_output, write_output
from .errors import UserError

PLOT_NAME = "curves.png"  # the figure's name in the run folder, without --out

#: Accuracy series of the right-hand panel: (label, how to read it from a metrics record).
ACCURACY_SERIES = (("train (view 1)", ("train", "train_top1")), ("val", ("val_top1",)), ("test", ("test_top1",)))


def read_records(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``run_dir/metrics.jsonl``."""
    path = RunFolder(run_dir).metrics
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (is {run_dir} a run folder?)")
    records = read_metrics(Path(run_dir))  # every line an epoch record, or one line naming the bad one
    if not records:
        raise UserError(f"{path}: no epochs recorded yet")
    return records


def loss_terms(records: list[dict[str, Any]]) -> list[str]:
    """Every loss term the method logged (``loss`` first), in first-seen order; accuracies excluded."""
    names: list[str] = []
    for record in records:
        names += [k for k in record["train"] if k not in names and not k.endswith(("_top1", "_top5"))]
    return sorted(names, key=lambda k: k != "loss")


def _series(records: list[dict[str, Any]], path: tuple[str, ...]) -> list[float]:
    values = []
    for record in records:
        value: Any = record
        for key in path:
            value = value.get(key, float("nan")) if isinstance(value, dict) else float("nan")
        values.append(float(value))
    return values


def _matplotlib_figure() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ModuleNotFoundError(
            "accord plot needs matplotlib: pip install matplotlib (or pip install 'accord[plot]')"
        ) from None
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def plot_run(run_dir: str | Path, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Draw the loss terms (left) and top-1 accuracies (right) of ``run_dir`` per epoch; returns the PNG path.

    ``out`` defaults to ``run_dir/curves.png``; it is written through :func:`~accord.engine.writer.write_output`
    (a file there that accord did not write needs ``overwrite``).
    """
    run_dir = Path(run_dir)
    out = check_output(Path(out) if out else run_dir / PLOT_NAME, overwrite)
    records = read_records(run_dir)
    figure = _matplotlib_figure()
    losses, accuracy = figure.subplots(1, 2)
    epochs = [r["epoch"] for r in records]
    for name in loss_terms(records):
        losses.plot(epochs, _series(records, ("train", name)), marker="o", label=name)
    for label, path in ACCURACY_SERIES:  # epochs without a number (eval_every skipped them) left out of the line
        points = [(e, v) for e, v in zip(epochs, _series(records, path), strict=True) if not math.isnan(v)]
        accuracy.plot([e for e, _ in points], [v for _, v in points], marker="o", label=label)
    losses.set(title="training loss terms (epoch means)", xlabel="epoch", ylabel="value")
    accuracy.set(title="top-1 accuracy", xlabel="epoch", ylabel="top-1 (%)")
    for axis in (losses, accuracy):
        axis.grid(alpha=0.3)
        axis.legend()
        axis.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(_title(run_dir))
    fmt = out.suffix[1:].lower() or "png"
    return write_output(out, lambda f: figure.savefig(f, dpi=100, format=fmt), overwrite=overwrite)


def _title(run_dir: Path) -> str:
    config = RunFolder(run_dir).config
    if not config.is_file():
        return run_dir.name
    import yaml

    cfg = yaml.safe_load(config.read_text()) or {}
    return f"{cfg.get('name', run_dir.name)}: {cfg.get('model')} on {cfg.get('dataset')}, method {cfg.get('method')}"
