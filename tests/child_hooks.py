"""Faults planted in the Python processes a test starts (``accord``, or the workers ``torchrun`` starts).

Python imports ``sitecustomize`` at start-up from the first folder on ``PYTHONPATH`` that has one (a .pth-free
hook). :func:`hook_env` writes such a module: :data:`PATCH_ON_IMPORT`'s ``patch_on_import(name, patch)``, then the
test's own code, which calls it to change a module of accord as it is imported (its training step, its loader's
items) or patches torch directly.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tiny_runs import REPO

#: Defines ``patch_on_import(name, patch)``: ``patch(module)`` runs once module ``name`` has been imported.
PATCH_ON_IMPORT = """
import importlib.abc, importlib.util, sys


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            self.patch(module)

        spec.loader.exec_module = exec_module
        return spec


def patch_on_import(name, patch):
    sys.meta_path.insert(0, _PatchOnImport(name, patch))
"""


def hook_env(folder: Path, code: str, env: dict[str, str]) -> dict[str, str]:
    """``env`` with a ``sitecustomize`` in ``folder`` (made if missing) that runs ``code`` after
    :data:`PATCH_ON_IMPORT`, first on ``PYTHONPATH`` (then the repository)."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(PATCH_ON_IMPORT + textwrap.dedent(code))
    return {**env, "PYTHONPATH": f"{folder}:{REPO}"}
