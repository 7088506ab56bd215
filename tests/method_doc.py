"""docs/adding-a-method.md's worked example as code: its loss module, its registry lines and its YAML fragment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from torch import nn

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "adding-a-method.md").read_text()


def _block(language: str, first_line: str) -> str:
    found = re.search(rf"```{language}\n({re.escape(first_line)}.*?)```", DOC, re.S)
    assert found, f"docs/adding-a-method.md has no {language} block starting {first_line!r}"
    return found.group(1)


LOSS_MODULE = _block("python", "# accord/losses/cosine.py")
REGISTRY_LINES = _block("python", "from .cosine import CosineAgreementLoss  # with the other loss imports, at the top")
FRAGMENT = _block("yaml", "# accord/configs/methods/cosine.yaml")
NAME = re.search(r"^method: (\S+)$", FRAGMENT, re.M).group(1)  # type: ignore[union-attr]


def doc_loss() -> type[nn.Module]:
    """The page's loss class, its relative imports taken from accord's public names (as outside accord)."""
    namespace: dict[str, Any] = {}
    source = LOSS_MODULE.replace("from ._views import", "from accord.losses import")
    source = source.replace("from ..domains import", "from accord.domains import")
    exec(compile(source, "docs/adding-a-method.md", "exec"), namespace)
    return namespace["CosineAgreementLoss"]


def registry_entry() -> str:
    """The ``MethodSpec(...)`` line the page adds to the registry's tuple, without its comment."""
    line = next(line for line in REGISTRY_LINES.splitlines() if "MethodSpec(" in line)
    return line.split("  #")[0].strip().rstrip(",")
