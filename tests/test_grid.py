"""The grid runner resumes, and the report's tables, interval, bolding and figures are right on known numbers."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import pytest

from accord.cli import main
from accord.grid import make_cells, parse_method
from accord.report import collect, grid_commands, paired_gain, write_report
from accord.report_figures import gain_points, gains_figure, level_points, levels_figure


def test_paired_gain_on_known_numbers():
    method = {0: 81.0, 1: 82.0, 2: 83.0}
    baseline = {0: 80.0, 1: 80.0, 2: 80.0, 3: 99.0}  # seed 3 has no pair and is ignored
    gain, low, high, n = paired_gain(method, baseline)
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * sd(=1) / sqrt(3)
    assert (gain, n) == (2.0, 3) and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    assert paired_gain({0: 1.0}, {0: 0.0}) is None


def test_cells_and_epoch_factor():
    assert parse_method("ce@2x") == ("ce", 2) and parse_method("agmax") == ("agmax", 1)
    cells = make_cells(["FashionMNIST-ResNet8"], ["standard", "mixup"], ["ce", "agmax", "ce@2x"], 2)
    assert len(cells) == 12
    assert {c.folder for c in cells if c.seed == 0 and c.aug == "standard"} == {
        "FashionMNIST-ResNet8-standard/seed0",
        "FashionMNIST-ResNet8-standard-agmax/seed0",
        "FashionMNIST-ResNet8-standard@2x/seed0",
    }


def fake_run(root: Path, config: str, seed: int, best: float, last: float) -> None:
    run = root / config / f"seed{seed}"
    run.mkdir(parents=True)
    summary = {"seed": seed, "test_top1": best, "last_test_top1": last, "train_seconds": 60.0}
    (run / "summary.json").write_text(json.dumps(summary))


def test_report_layout(tmp_path):
    numbers = {  # (aug, method suffix): per-seed test top-1 at the best-val epoch
        ("standard", ""): [80.0, 81.0, 82.0],
        ("standard", "-agmax"): [82.0, 83.0, 84.0],
        ("standard", "-tied"): [81.0, 81.0, 84.0],
        ("cutout", ""): [79.0, 79.5, 80.0],
        ("cutout", "-agmax"): [78.0, 79.0, 80.0],
    }
    for (aug, suffix), values in numbers.items():
        for seed, value in enumerate(values):
            fake_run(tmp_path, f"FashionMNIST-ResNet8-{aug}{suffix}", seed, value, value - 1)
    fake_run(tmp_path, "FashionMNIST-ResNet8-standard@2x", 0, 81.5, 81.0)
    assert len(collect(tmp_path)) == 16
    text = write_report(tmp_path)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| augmentation | baseline"))
    assert header == "| augmentation | baseline | AgMax | Tied-Augment | baseline, 2x epochs |"
    rows = [line for line in lines if line.startswith("| standard |")]
    assert rows[0] == "| standard | 81.00 ± 1.00 | **83.00 ± 1.00** | 82.00 ± 1.73 | 81.50 (n=1) |"
    assert rows[1] == "| standard | **+2.00 [+2.00, +2.00]** | +1.00 [-1.48, +3.48] | (n=1) |"  # tied diffs 1, 0, 2
    assert rows[2] == "| standard | (n=1) | (n=1) |"  # AgMax and Tied vs the 2x baseline: one seed, no interval
    assert "[95% t interval]): the baseline with 2x epochs (as many image forward passes);" in text  # only it ran
    assert rows[3].startswith("| standard | 80.00 ± 1.00 | **82.00 ± 1.00** |")  # last epoch
    assert "Unfinished cells: 1, marked (n=finished seeds) where the grid has 3 seeds; 0 run folder(s)" in text
    assert [line.split(" |")[0] for line in lines if line.startswith("| cutout")][0] == "| cutout"
    assert "| cutout | 79.50 ± 0.50 | 79.00 ± 1.00 |  |  |" in lines  # a cell never run is empty, not unfinished
    assert lines.index(rows[0]) < lines.index(next(line for line in lines if line.startswith("| cutout |")))
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("model,augmentation,method,n,test_top1_mean")
    for name in ("figure-FashionMNIST-ResNet8.png", "gains-FashionMNIST-ResNet8.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in text
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    import matplotlib

    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 4, "savefig.dpi": 50}):  # a caller's settings
        write_report(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # byte for byte


def test_bold_only_where_the_paired_interval_is_above_zero(tmp_path):
    numbers = {  # per-seed test top-1 of one augmentation
        "": [80.0, 80.0, 80.0],
        "-agmax": [70.0, 90.0, 92.0],  # the best mean (84.00), but diffs -10, +10, +12: the interval spans zero
        "-tied": [81.0, 81.2, 80.9],  # a gain of a point in every seed
        "-ls": [79.0, 79.5, 79.2],  # a clear loss is not bold either
    }
    for suffix, values in numbers.items():
        for seed, value in enumerate(values):
            fake_run(tmp_path, f"FashionMNIST-ResNet8-standard{suffix}", seed, value, value)
    text = write_report(tmp_path)
    lines = text.splitlines()
    assert "| standard | 80.00 ± 0.00 | 79.23 ± 0.25 | 84.00 ± 12.17 | **81.03 ± 0.15** |" in lines
    gains = next(line for line in lines if line.startswith("| standard | -0.77"))
    assert gains.split(" | ")[2].startswith("+4.00 [-") and gains.split(" | ")[3].startswith("**+1.03 [+")
    assert "95% t interval entirely above zero" in text and "the baseline is never bold" in text


def test_gain_figure_data(tmp_path):
    numbers = {
        ("standard", ""): [80.0, 81.0, 82.0],
        ("standard", "-agmax"): [82.0, 82.5, 84.0],  # diffs 2.0, 1.5, 2.0
        ("mixup", ""): [78.0, 78.0, 79.0],
        ("mixup", "-agmax"): [77.0, 78.5, 79.0],  # diffs -1.0, 0.5, 0.0
        ("mixup", "-tied"): [80.0, 80.0, 80.0],  # diffs 2.0, 2.0, 1.0
    }
    for (aug, suffix), values in numbers.items():
        for seed, value in enumerate(values):
            fake_run(tmp_path, f"FashionMNIST-ResNet8-{aug}{suffix}", seed, value, value)
    results = collect(tmp_path)
    points = gain_points(results, "FashionMNIST-ResNet8")
    assert [(p.aug, p.method, p.seeds) for p in points] == [
        ("standard", "agmax", (2.0, 1.5, 2.0)),
        ("mixup", "agmax", (-1.0, 0.5, 0.0)),
        ("mixup", "tied", (2.0, 2.0, 1.0)),
    ]
    mixup_agmax = paired_gain({0: 77.0, 1: 78.5, 2: 79.0}, {0: 78.0, 1: 78.0, 2: 79.0})
    assert (points[1].centre, points[1].low, points[1].high) == pytest.approx(mixup_agmax[:3])
    ax = gains_figure(results, "FashionMNIST-ResNet8").axes[0]
    assert any(list(line.get_ydata()) == [0, 0] for line in ax.lines)  # the zero line
    assert len(ax.containers) == 2  # one error-bar series per method (AgMax, Tied-Augment)
    dots = sorted((round(x), y) for c in ax.containers for x, y in zip(*c.lines[0].get_data(), strict=True))
    assert dots == sorted((["standard", "mixup"].index(p.aug), p.centre) for p in points)  # dots in their group
    seeds = sorted(y for c in ax.collections if c.get_offsets().shape[0] == 3 for _, y in c.get_offsets())
    assert seeds == sorted(d for p in points for d in p.seeds)  # every seed's difference is a point
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["AgMax", "Tied-Augment"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["standard", "mixup"]
    levels = levels_figure(results, "FashionMNIST-ResNet8").axes[0]
    assert not levels.patches  # dots with error bars, no bars that would need to start at zero
    assert [p.centre for p in level_points(results, "FashionMNIST-ResNet8")] == pytest.approx(
        [81.0, 82.833333, 78.333333, 78.166667, 80.0]
    )


def test_data_size_figure_puts_each_grid_in_its_own_groups(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("plot_data_sizes", ROOT / "scripts/plot_data_sizes.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    for per_class, gain in ((2000, 0.5), (100, 3.0)):  # written out of order: the figure sorts by size
        for seed in range(3):
            fake_run(tmp_path / f"size-{per_class}", "FashionMNIST-ResNet8-standard", seed, 80.0 + seed, 80.0)
            value = 80.0 + seed + gain + (0.5 if seed == 1 else 0.0)
            fake_run(tmp_path / f"size-{per_class}", "FashionMNIST-ResNet8-standard-tied", seed, value, value)
    out = script.main(tmp_path)
    assert out == tmp_path / "gains-by-size.png" and out.stat().st_size > 0
    settings = {"1,000 images": collect(tmp_path / "size-100"), "20,000 images": collect(tmp_path / "size-2000")}
    ax = script.gains_by_setting_figure(settings, script.MODEL, "training-set size").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["standard\n1,000 images", "standard\n20,000 images"]
    dots = [(round(x), y) for c in ax.containers for x, y in zip(*c.lines[0].get_data(), strict=True)]
    assert dots == [(0, pytest.approx(3.0 + 0.5 / 3)), (1, pytest.approx(0.5 + 0.5 / 3))]  # each over its own baseline


def test_unfinished_cells_are_marked(tmp_path):
    for suffix in ("", "-agmax"):
        for seed in range(3):
            fake_run(tmp_path, f"FashionMNIST-ResNet8-standard{suffix}", seed, 80.0 + seed, 80.0 + seed)
    (tmp_path / "FashionMNIST-ResNet8-standard-agmax/seed2/summary.json").unlink()  # stopped before the end
    (tmp_path / "FashionMNIST-ResNet8-standard-tied/seed0").mkdir(parents=True)  # started, nothing finished
    lines = write_report(tmp_path).splitlines()
    assert "| augmentation | baseline | AgMax | Tied-Augment |" in lines
    assert "| standard | 81.00 ± 1.00 | 80.50 ± 0.71 (n=2) | (n=0) |" in lines
    assert "| standard | +0.00 [+0.00, +0.00] (n=2) | (n=0) |" in lines
    assert "Unfinished cells: 2, marked (n=finished seeds) where the grid has 3 seeds; 2 run folder(s) without " \
        "summary.json." in lines  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ('{"seed": 0, "test_top1":', "not valid JSON"),
        ('{"seed": 0}', "not a run summary (no test_top1"),
    ],
)
def test_invalid_summary_is_one_line_naming_the_file(tmp_path, capsys, content, message):
    fake_run(tmp_path, "FashionMNIST-ResNet8-standard", 0, 80.0, 80.0)
    bad = tmp_path / "FashionMNIST-ResNet8-standard-agmax/seed0/summary.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"accord: error: {bad}: {message}")


def test_report_names_every_command_that_ran_cells():
    sessions = [
        {"argv": ["grid", "--augs", "mixup", "--seeds", "3"], "cells_run": 6},
        {"argv": ["grid", "--augs", "mixup", "--seeds", "5"], "cells_run": 4},
        {"argv": ["grid", "--augs", "mixup", "--seeds", "3"], "cells_run": 0},  # nothing left to run
        {"argv": ["grid", "--augs", "mixup", "--seeds", "3"], "cells_run": 1},  # seen before
    ]
    assert grid_commands({"sessions": sessions}) == [
        "accord grid --augs mixup --seeds 3",
        "accord grid --augs mixup --seeds 5",
    ]
    assert grid_commands({"sessions": sessions[2:3]}) == ["accord grid --augs mixup --seeds 3"]


def test_agreement_against_controls(tmp_path):
    numbers = {  # per-seed test top-1 of one augmentation
        "": [80.0, 80.0, 80.0], "-ls": [81.0, 80.0, 82.0], "-agmax": [83.0, 82.0, 84.0],
        "-ce2": [82.0, 82.0, 82.0], "@2x": [85.0, 84.0, 86.0],
    }  # fmt: skip
    for suffix, values in numbers.items():
        for seed, value in enumerate(values):
            fake_run(tmp_path, f"FashionMNIST-ResNet8-mixup{suffix}", seed, value, value)
    lines = write_report(tmp_path).splitlines()
    header = "| augmentation | AgMax vs label smoothing | AgMax vs two-view CE | AgMax vs baseline, 2x epochs |"
    row = lines[lines.index(header) + 2]
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2) * sd(=1) / sqrt(3); diffs vs ce2: 1, 0, 2
    assert row == (
        f"| mixup | **+2.00 [+2.00, +2.00]** | +1.00 [{1 - half:+.2f}, {1 + half:+.2f}] | -2.00 [-2.00, -2.00] |"
    )


ROOT = Path(__file__).parents[1]


RESULTS_README = "docs/results/fashion-mnist/README.md"
COMMITTED_GRIDS = [("grid", "README.md"), ("longer", RESULTS_README)] + [
    (str(p.parent.relative_to(ROOT / "docs/results/fashion-mnist")), RESULTS_README)
    for p in sorted((ROOT / "docs/results/fashion-mnist/recipe").glob("*/report.md"))
]


# The committed figures' bytes hold under the matplotlib that drew them on x86-64 (measured with numpy's AVX-512
# kernels on and off); another architecture's build may fuse a multiply-add and move an anti-aliased pixel.
DRAWN_ON = ("x86_64", "AMD64")


@pytest.mark.parametrize(("folder", "readme"), COMMITTED_GRIDS)  # each committed grid, the README quoting it
def test_committed_results_reproduce(folder, readme, tmp_path):
    """``accord report`` on the committed Fashion-MNIST grids gives the committed tables, CSV and figures byte for byte.

    The figures' bytes are compared under the matplotlib version that drew them (the PNG names it); under
    another version only their presence is.
    """
    committed = ROOT / "docs/results/fashion-mnist" / folder
    for path in [committed / "grid.json", *committed.glob("*/seed*/summary.json")]:
        copy = tmp_path / path.relative_to(committed)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    write_report(tmp_path)
    for name in ("report.md", "results.csv"):
        expected = (committed / name).read_text()
        expected = expected.replace(f"# Results: {committed.name}", f"# Results: {tmp_path.name}", 1)
        assert (tmp_path / name).read_text() == expected, name
    report = (committed / "report.md").read_text().split("\n\n")
    table = next(block for block in report if block.startswith("| augmentation | baseline |"))
    assert table in (ROOT / readme).read_text()  # the README quotes the same table
    figures = sorted(p.name for p in committed.glob("*.png"))
    assert figures == sorted(p.name for p in tmp_path.glob("*.png"))
    assert all(f"]({name})" in (committed / "report.md").read_text() for name in figures)
    import matplotlib
    from PIL import Image

    drawn_by = {Image.open(committed / name).info.get("Software") for name in figures}
    if drawn_by != {f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"}:
        pytest.skip(f"figures drawn by {drawn_by}, not matplotlib {matplotlib.__version__}: bytes not compared")
    if platform.machine() not in DRAWN_ON:
        pytest.skip(f"figures drawn on {DRAWN_ON[0]}: bytes compared there only, not on {platform.machine()}")
    for name in figures:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name


def test_committed_data_size_figure_reproduces(tmp_path):
    """scripts/plot_data_sizes.py on the committed size grids' summaries draws the committed figure byte for byte."""
    import importlib.util

    import matplotlib
    from PIL import Image

    recipe = ROOT / "docs/results/fashion-mnist/recipe"
    committed = recipe / "gains-by-size.png"
    if not committed.is_file():
        pytest.skip("no data-size figure committed")
    for path in recipe.glob("size-*/*/seed*/summary.json"):
        copy = tmp_path / path.relative_to(recipe)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    spec = importlib.util.spec_from_file_location("plot_data_sizes", ROOT / "scripts/plot_data_sizes.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    drawn = script.main(tmp_path)
    if (
        Image.open(committed).info.get("Software")
        != f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/"
    ):
        pytest.skip("the committed figure was drawn by another matplotlib: bytes not compared")
    if platform.machine() not in DRAWN_ON:
        pytest.skip(f"the committed figure was drawn on {DRAWN_ON[0]}: bytes compared there only")
    assert drawn.read_bytes() == committed.read_bytes()


def test_grid_skips_finished_cells_and_resumes(fmnist_dir, tmp_path, capsys):
    out = tmp_path / "grid"
    args = [
        "grid", "--models", "FashionMNIST-ResNet8", "--augs", "standard", "--methods", "ce,ce@2x",
        "--seeds", "1", "--epochs", "1", "--out", str(out), "--set", f"data_dir={fmnist_dir}",
        "--set", "batch_size=32", "--set", "lr_batch=32", "--set", "workers=0",
    ]  # fmt: skip
    assert main(args) == 0
    summaries = sorted(out.glob("*/seed0/summary.json"))
    assert len(summaries) == 2
    doubled = json.loads((out / "FashionMNIST-ResNet8-standard@2x/seed0/summary.json").read_text())
    assert doubled["epochs"] == 2
    stamp = {p: p.stat().st_mtime_ns for p in summaries}
    assert main(args) == 0
    assert "0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in summaries} == stamp  # finished cells are not re-run
    summaries[0].unlink()  # an interrupted cell: its checkpoint is there, its summary is not
    assert main(args) == 0
    assert "resuming" in (summaries[0].parent / "train.log").read_text()
    assert summaries[0].is_file()
    sessions = json.loads((out / "grid.json").read_text())["sessions"]
    assert [s["cells_run"] for s in sessions] == [2, 1]  # recorded as cells finish; a run with nothing to do is not
    assert main(["report", str(out)]) == 0
