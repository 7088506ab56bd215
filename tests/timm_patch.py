"""Apply docs/api.md's lines for timm's train.py to the real file, placing each by its quoted anchor.

Each change in the doc's ``diff`` block starts with a comment ``# N. after|before|at `line` / `line` ...``: the quoted
lines of train.py (stripped; consecutive when blank lines are skipped) that must occur exactly once. ``after`` adds
the ``+`` lines below the last of them, ``before`` above the first, ``at`` replaces the last ``-`` lines with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@dataclass
class Change:
    where: str
    anchor: list[str]
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def diff_block(doc: str | None = None) -> list[str]:
    text = doc if doc is not None else DOC.read_text()
    return text.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()


def changes(block: list[str]) -> list[Change]:
    out: list[Change] = []
    for line in block:
        if line.startswith(" #"):
            head = re.match(r" # \d+\. (after|before|at) (.*)", line)
            if head is None:
                raise ValueError(f"a change's comment names no place: {line!r}")
            out.append(Change(head.group(1), quotes(head.group(2))))
        elif line.startswith("-"):
            out[-1].removed.append(line[1:])
        elif line.startswith("+"):
            out[-1].added.append(line[1:])
    return out


def quotes(text: str) -> list[str]:
    """The backtick-quoted lines of ``text`` before its first unquoted ``(`` (where the explanation starts)."""
    parts = text.split("`")
    found = []
    for i, part in enumerate(parts):
        if i % 2:
            found.append(part)
        elif "(" in part:
            break
    return found


def find_once(lines: list[str], anchor: list[str]) -> tuple[int, int]:
    """The first and last line numbers of ``anchor`` in ``lines`` (blank lines skipped); it must occur once."""
    body = [(i, line.strip()) for i, line in enumerate(lines) if line.strip()]
    hits = [k for k in range(len(body) - len(anchor) + 1) if [t for _, t in body[k : k + len(anchor)]] == anchor]
    if len(hits) != 1:
        raise ValueError(f"anchor {anchor} occurs {len(hits)} times in train.py")
    return body[hits[0]][0], body[hits[0] + len(anchor) - 1][0]


def apply(train_py: str, block: list[str] | None = None) -> str:
    """train.py with the doc's changes; ``ValueError`` if an anchor is missing or ambiguous."""
    lines = train_py.splitlines()
    for change in changes(block if block is not None else diff_block()):
        first, last = find_once(lines, change.anchor)
        if change.where == "after":
            lines[last + 1 : last + 1] = change.added
        elif change.where == "before":
            lines[first:first] = change.added
        else:
            start = last - len(change.removed) + 1
            if [line.strip() for line in lines[start : last + 1]] != [r.strip() for r in change.removed]:
                raise ValueError(f"the lines to change, {change.removed}, are not at {change.anchor}")
            lines[start : last + 1] = change.added
    return "\n".join(lines) + "\n"
