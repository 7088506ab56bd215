"""Test top-1 of grid cells trained with views made on the device against the same cells made in the loader.

Cells are paired by model, augmentation, method and seed (a seed fixes the data split and subset), and each
method gets the mean of the per-seed differences (device - loader) with a 95% Student-t interval, as
``accord report`` computes gains (:func:`accord.report.paired_gain`). Prints a markdown table:

    python scripts/paired_device_views.py docs/results/fashion-mnist/device-views docs/results/fashion-mnist/grid
"""

from __future__ import annotations

import argparse
from pathlib import Path
from statistics import mean

from accord.report import collect, paired_gain


def by_cell(root: Path) -> dict[tuple[str, str, str], dict[int, float]]:
    cells: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in collect(root):
        cells.setdefault((r.model, r.aug, r.method), {})[r.seed] = r.test_top1
    return cells


def table(device: Path, loader: Path) -> str:
    on_device, in_loader = by_cell(device), by_cell(loader)
    lines = [
        "| model | augmentation | method | seeds | loader top-1 | device top-1 | device - loader [95% t interval] |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell, dev in sorted(on_device.items()):
        load = in_loader.get(cell, {})
        seeds = sorted(set(dev) & set(load))
        if not seeds:
            continue
        gain = paired_gain({s: dev[s] for s in seeds}, {s: load[s] for s in seeds})
        diff = f"{gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]" if gain else f"{dev[seeds[0]] - load[seeds[0]]:+.2f}"
        lines.append(
            f"| {cell[0]} | {cell[1]} | {cell[2]} | {', '.join(map(str, seeds))} "
            f"| {mean(load[s] for s in seeds):.2f} | {mean(dev[s] for s in seeds):.2f} | {diff} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("device", type=Path, help="grid folder of the augment_on: device cells")
    parser.add_argument("loader", type=Path, help="grid folder of the same cells made in the loader")
    args = parser.parse_args()
    print(table(args.device, args.loader))


if __name__ == "__main__":
    main()
