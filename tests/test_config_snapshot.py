"""Every paper config resolves to the values it had before the typed config (snapshot in tests/data).

The paper configs are those tests/data/author_recipes.yaml names (docs/recipes.md): their every resolved value is
kept here, so a change to a fragment, a default or resolution that moves one of them shows. The other built-in
configs are combinations of the same fragments; tests/test_every_config.py resolves each of them.
"""

import itertools
import json
from pathlib import Path

import yaml

from accord.config import list_configs, load_config
from accord.config.schema import DEFAULTS
from accord.data.datasets import DATASET_FACTS

#: Keys newer than the snapshot that resolution fills from the data set's facts when a config leaves them null.
DERIVED = {"crop_pct": lambda flat: DATASET_FACTS[flat["dataset"]].crop_pct}

DATA = Path(__file__).parent / "data"
SNAPSHOT = DATA / "resolved_configs.json"


def paper_config_names() -> set[str]:
    """Every config an author-recipe group expands to (``<model>-<aug>[-<method>]``)."""
    groups = yaml.safe_load((DATA / "author_recipes.yaml").read_text())["groups"].values()
    return {
        f"{model}-{aug}" + (f"-{method}" if method else "")
        for group in groups
        for model, aug, method in itertools.product(group["models"], group["augs"], group["methods"])
    }


def test_the_snapshot_holds_the_paper_configs():
    expected = json.loads(SNAPSHOT.read_text())
    assert set(expected) == paper_config_names() and set(expected) <= set(list_configs())


def test_every_paper_config_resolves_as_in_the_snapshot():
    for name, values in json.loads(SNAPSHOT.read_text()).items():
        flat = json.loads(json.dumps(load_config(name).as_flat()))
        added = {k: v for k, v in flat.items() if k not in values}  # keys newer than the snapshot: at their defaults
        defaults = {k: DERIVED[k](flat) if k in DERIVED else json.loads(json.dumps(DEFAULTS[k])) for k in added}
        assert added == defaults, name
        assert {k: v for k, v in flat.items() if k in values} == values, name
