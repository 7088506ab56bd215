"""Every built-in config resolves to the values it had before the typed config (snapshot in tests/data)."""

import json
from pathlib import Path

from accord.config import list_configs, load_config
from accord.config.schema import DEFAULTS
from accord.data.datasets import DATASET_FACTS

#: Keys newer than the snapshot that resolution fills from the data set's facts when a config leaves them null.
DERIVED = {"crop_pct": lambda flat: DATASET_FACTS[flat["dataset"]].crop_pct}

SNAPSHOT = Path(__file__).parent / "data" / "resolved_configs.json"


def test_every_builtin_config_resolves_as_in_the_snapshot():
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(list_configs()) == sorted(expected)
    for name, values in expected.items():
        resolved = load_config(name)
        flat = resolved.as_flat() if hasattr(resolved, "as_flat") else resolved
        flat = json.loads(json.dumps(flat))
        added = {k: v for k, v in flat.items() if k not in values}  # keys newer than the snapshot: at their defaults
        defaults = {k: DERIVED[k](flat) if k in DERIVED else json.loads(json.dumps(DEFAULTS[k])) for k in added}
        assert added == defaults, name
        assert {k: v for k, v in flat.items() if k in values} == values, name
