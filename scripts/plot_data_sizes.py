"""Draw the data-size grids' paired gains side by side, smallest training set first.

Usage: python scripts/plot_data_sizes.py [RECIPE_DIR]   (default docs/results/fashion-mnist/recipe)

Reads every finished run of ``RECIPE_DIR/size-<images per class>/`` and writes
``RECIPE_DIR/gains-by-size.png``: per size and augmentation row, each method's gain over that grid's
baseline, paired by seed, with its 95% t interval and every seed's difference.
"""

from __future__ import annotations

import sys
from pathlib import Path

from accord.report import collect
from accord.report_figures import gains_by_setting_figure, save

MODEL = "FashionMNIST-ResNet8"


def main(recipe: Path) -> Path:
    grids = sorted(recipe.glob("size-*"), key=lambda p: int(p.name.removeprefix("size-")))
    settings = {f"{10 * int(p.name.removeprefix('size-')):,} images": collect(p) for p in grids}
    if not any(settings.values()):
        raise SystemExit(f"{recipe}: no finished runs under size-*/")
    out = recipe / "gains-by-size.png"
    save(gains_by_setting_figure(settings, MODEL, "training-set size"), out, overwrite=True)  # this script's figure
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/fashion-mnist/recipe")))
