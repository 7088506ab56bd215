"""Every test the documentation names exists: a ``test_file.py::test_name`` (or ``::test_name`` after one on the
same line, meaning the same file) in README.md or docs/*.md is a test function of that file, so moving or
renaming a test cannot leave the docs pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
REFERENCE = re.compile(r"(?:tests/)?(test_\w+\.py)?::(test_\w+)")


def named_tests(doc: Path) -> list[tuple[int, str, str]]:
    """(line number, file, test) of every test ``doc`` names."""
    found = []
    for number, line in enumerate(doc.read_text().splitlines(), 1):
        current = None
        for match in REFERENCE.finditer(line):
            current = match.group(1) or current
            if current is not None:
                found.append((number, current, match.group(2)))
    return found


def test_the_docs_name_tests():
    assert sum(len(named_tests(doc)) for doc in DOCS) > 50  # the pattern still finds the docs' references


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_test_a_doc_names_exists(doc: Path):
    missing = []
    for number, file, test in named_tests(doc):
        path = REPO / "tests" / file
        if not path.is_file() or not re.search(rf"^def {test}\(", path.read_text(), flags=re.M):
            missing.append(f"{doc.name}:{number}: {file}::{test}")
    assert missing == []
