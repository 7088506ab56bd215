"""The type checker guards the typed config: a misspelt field is an error, in typed and untyped code alike."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = textwrap.dedent(
    """\
    from accord.config import Config, load_config


    def typed(cfg: Config) -> float:
        return cfg.optim.lrr + cfg.optim.lr


    def untyped():
        cfg = load_config("FashionMNIST-ResNet8-standard-ce")
        return cfg.views.num_view, cfg.views.num_views
    """
)


@pytest.mark.slow
def test_mypy_finds_a_wrong_config_field(tmp_path: Path) -> None:
    """mypy with the project's settings flags ``cfg.optim.lrr`` and, in a function without annotations
    (``check_untyped_defs``), ``cfg.views.num_view``; the right fields beside them pass."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path)]
    done = subprocess.run([*cmd, str(snippet)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    errors = re.findall(r"snippet\.py:(\d+): error: (.*)", done.stdout)
    assert [(int(line), message.split(";")[0]) for line, message in errors] == [
        (5, '"OptimConfig" has no attribute "lrr"'),
        (10, '"ViewsConfig" has no attribute "num_view"'),
    ], done.stdout + done.stderr
