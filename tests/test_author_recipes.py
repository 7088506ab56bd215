"""The companion of docs/recipes.md (tests/data/author_recipes.yaml) is well formed.

Every value names its source (a repository alias of ``sources`` and a file with a line anchor), every
key is an accord config key, every departure (``accord``) has its reason, and every group expands to
built-in config names. tests/test_recipes.py compares the resolved configs with these values.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml

from accord.config import DEFAULTS, list_configs

RECIPES = yaml.safe_load((Path(__file__).parent / "data" / "author_recipes.yaml").read_text())
SOURCE = re.compile(r"(?P<alias>[a-z]+):(?P<path>[\w./-]+)(#L\d+(-L\d+)?)?")


def entries():
    for group_name, group in RECIPES["groups"].items():
        blocks = [group.get("values", {})]
        blocks += list(group.get("augs_values", {}).values()) + list(group.get("methods_values", {}).values())
        for block in blocks:
            for key, entry in block.items():
                yield group_name, group, key, entry


def test_sources_pin_a_commit():
    for source in RECIPES["sources"].values():
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]) and "/" in source["repo"]


@pytest.mark.parametrize(("group_name", "group", "key", "entry"), list(entries()), ids=lambda v: str(v)[:40])
def test_each_value_has_an_author_value_and_a_source(group_name, group, key, entry):
    assert set(entry) <= {"author", "accord", "source", "note", "status"} and "author" in entry
    assert "accord" not in entry or "note" in entry, f"{group_name}: {key}: a departure needs its reason"
    assert entry.get("status", "uncertain") in ("uncertain", "not in the code"), f"{group_name}: {key}"
    assert "status" not in entry or "note" in entry, f"{group_name}: {key}: an open value needs its reason"
    match = SOURCE.fullmatch(entry["source"])
    assert match and match["alias"] in RECIPES["sources"], entry["source"]
    name = key.split(".", 1)[0]
    assert name in DEFAULTS, f"{group_name}: {key} is not an accord config key"


@pytest.mark.parametrize("group_name", list(RECIPES["groups"]))
def test_groups_expand_to_built_in_configs(group_name):
    group = RECIPES["groups"][group_name]
    names = {
        f"{model}-{aug}" + (f"-{method}" if method else "")
        for model, aug, method in itertools.product(group["models"], group["augs"], group["methods"])
    }
    missing = names - set(list_configs())
    assert not missing, f"{group_name}: not built-in configs: {sorted(missing)}"
