"""The engine and the command line read in one sitting: no file over MAX_LINES lines, no function over
MAX_FUNCTION_LINES (its docstring and decorators included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "accord"
MAX_LINES = 400
MAX_FUNCTION_LINES = 60


def checked_files() -> list[Path]:
    """Every module of ``accord/engine/`` and the command line's ``accord/cli*.py``."""
    return sorted([*(PACKAGE / "engine").rglob("*.py"), *PACKAGE.glob("cli*.py")])


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method of ``source`` longer than ``limit`` lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = node.end_lineno - first + 1
            if lines > limit:
                found.append((node.name, lines))
    return found


def test_the_checked_files_are_found():
    names = {p.relative_to(PACKAGE).as_posix() for p in checked_files()}
    assert {"engine/trainer.py", "engine/loop.py", "cli.py"} <= names


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_file_or_function_is_too_long(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_LINES, f"{path}: {len(source.splitlines())} lines (at most {MAX_LINES})"
    assert long_functions(source) == [], f"{path}: functions over {MAX_FUNCTION_LINES} lines"


def test_a_long_function_is_found():
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def short():\n    pass\n\n\nclass A:\n    @staticmethod\n    def f():\n{body}") == [
        ("f", MAX_FUNCTION_LINES + 2)
    ]
