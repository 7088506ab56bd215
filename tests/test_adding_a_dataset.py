"""docs/adding-a-dataset.md's example, run as the page writes it: its module (the loader and the spec) passes ruff
and registers the data set; its training script resolves a config on it and trains one epoch on generated files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from accord.data.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "adding-a-dataset.md").read_text()
BLOCKS = re.findall(r"```python\n# (\S+\.py)[^\n]*\n(.*?)```", DOC, re.S)


def page_files() -> dict[str, str]:
    """The page's code blocks joined by the file each one names (a file may continue over several blocks)."""
    files: dict[str, str] = {}
    for name, code in BLOCKS:
        files[name] = files[name] + "\n\n" + code if name in files else code
    return files


def write_digits(folder: Path) -> None:
    """The data the page's loader reads: train.npz and test.npz of 32-px RGB digits-like images."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split, n in (("train", 160), ("test", 40)):
        np.savez(folder / f"{split}.npz", x=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), y=np.arange(n) % 10)


def test_the_page_has_its_module_and_script():
    assert set(page_files()) == {"my_digits.py", "train_digits.py"}


def test_the_module_passes_ruff(tmp_path):
    path = tmp_path / "my_digits.py"
    path.write_text(page_files()["my_digits.py"])
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "E,F,I", str(path)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode()


def test_the_page_registers_resolves_and_trains(tmp_path, monkeypatch, one_thread):
    for name, code in page_files().items():
        (tmp_path / name).write_text(code)
    write_digits(tmp_path / "digits")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        namespace: dict = {"__name__": "train_digits"}
        exec(compile(page_files()["train_digits.py"], "docs/adding-a-dataset.md", "exec"), namespace)
        assert (tmp_path / "runs" / "digits" / "checkpoint-last.pt").is_file()
        assert REGISTRY["digits"].facts.autoaugment == "svhn"
    finally:
        REGISTRY.pop("digits", None)
        sys.modules.pop("my_digits", None)
