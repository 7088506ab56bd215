"""The README's "Training on your own images" runs as written on a generated folder of the layout it shows: its
commands (training shrunk to one tiny epoch) and its plain-timm Python block, whose prediction is one of the
folder's classes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
from PIL import Image

from accord.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTION = README[README.index("### Training on your own images") :].split("\n## ", 1)[0]
TINY = ["--epochs", "1", "--set", "batch_size=8", "--set", "lr_batch=8", "--set", "workers=0", "--set", "image_size=32"]


def commands() -> list[list[str]]:
    """The section's ``accord`` command lines, continuation lines joined and comments dropped."""
    bash = re.search(r"```bash\n(.*?)```", SECTION, re.S).group(1).replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in bash.splitlines()]
    return [line[1:] for line in lines if line and line[0] == "accord"]


def write_folder(root: Path) -> None:
    """flowers/{train,val}/{daisy,tulip}/*.png, photos/ and photo.jpg: 40-px images, stripes per class."""
    rng = np.random.default_rng(0)

    def image(label: int) -> Image.Image:
        pixels = rng.integers(0, 60, (40, 40, 3))
        pixels[(np.arange(40) % (2 + label)) == 0] += 180
        return Image.fromarray(pixels.astype(np.uint8))

    for split, n in (("train", 10), ("val", 3)):
        for label, name in enumerate(("daisy", "tulip")):
            (root / "flowers" / split / name).mkdir(parents=True)
            for i in range(n):
                image(label).save(root / "flowers" / split / name / f"{i:04d}.png")
    (root / "photos").mkdir()
    image(0).save(root / "photos" / "a.jpg")
    image(1).save(root / "photo.jpg")


def test_readme_own_data_example_runs_as_written(tmp_path, monkeypatch, capsys, one_thread):
    write_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    ran = []
    for argv in commands():
        assert main(argv + TINY if argv[0] == "train" else argv) == 0, argv
        ran.append(argv[0])
    assert ran == ["train", "eval", "predict", "predict", "export"]
    assert (tmp_path / "predictions.csv").read_text().startswith("image,class_1,probability_1")
    capsys.readouterr()
    block = re.search(r"```python\n(.*?)```", SECTION, re.S).group(1)
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() in ("daisy", "tulip")
