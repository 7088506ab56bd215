"""Every built-in config resolves to the values it had before the typed config (snapshot in tests/data)."""

import json
from pathlib import Path

from accord.config import list_configs, load_config

SNAPSHOT = Path(__file__).parent / "data" / "resolved_configs.json"


def test_every_builtin_config_resolves_as_in_the_snapshot():
    expected = json.loads(SNAPSHOT.read_text())
    assert sorted(list_configs()) == sorted(expected)
    for name, values in expected.items():
        resolved = load_config(name)
        flat = resolved.as_flat() if hasattr(resolved, "as_flat") else resolved
        assert json.loads(json.dumps(flat)) == values, name
