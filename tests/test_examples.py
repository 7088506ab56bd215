"""The examples run on the generated Fashion-MNIST fixture, and docs/api.md's snippets run as written."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
API_DOC = ROOT / "docs" / "api.md"


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>`` as a user would (its own process); return stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny tensors: more threads only contend
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_plain_loop_agmax_runs_as_a_script(fmnist_dir):
    out = run_example("plain_loop.py", "--data-dir", str(fmnist_dir), "--steps", "3", "--method", "agmax")
    assert "step 3: loss" in out and "entropy" in out and "l1" in out
    assert re.search(r"agmax: test top-1 \d+\.\d\d after 3 steps", out), out


def test_plain_loop_tied(fmnist_dir, monkeypatch, capsys, one_thread):
    """The same script with Tied-Augment, run in this process (a second interpreter start costs seconds)."""
    argv = ["plain_loop.py", "--data-dir", str(fmnist_dir), "--steps", "2", "--method", "tied"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / "plain_loop.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "step 2: loss" in out and "mse" in out
    assert re.search(r"tied: test top-1 \d+\.\d\d after 2 steps", out), out


def test_plain_loop_is_short():
    assert len((EXAMPLES / "plain_loop.py").read_text().splitlines()) < 80


@pytest.mark.skipif(
    find_spec("lightning") is None and find_spec("pytorch_lightning") is None,
    reason="lightning (or pytorch_lightning) is not installed",
)
def test_lightning_module_runs(fmnist_dir):
    out = run_example("lightning_module.py", "--data-dir", str(fmnist_dir), "--steps", "3", "--method", "agmax")
    assert re.search(r"agmax: test top-1 \d+\.\d\d after 3 steps", out), out


def test_api_doc_snippets_run(tmp_path, monkeypatch, one_thread):
    """Every python block of docs/api.md, in order, in one namespace (later blocks reuse earlier names)."""
    blocks = re.findall(r"```python\n(.*?)```", API_DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(API_DOC), "exec"), namespace)
