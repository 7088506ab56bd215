"""Composing a built-in config from its fragments adds each token once: a model fragment's ``policy_add`` (the AgMax
ImageNet colour jitter and lighting) reaches every view exactly once, a view written as ``{policy}`` included."""

from __future__ import annotations

from collections import Counter

import pytest

from accord.config import list_configs, load_config
from accord.config.files import CONFIG_DIR, _load_yaml

ADDING_MODELS = sorted(p.stem for p in (CONFIG_DIR / "models").glob("*.yaml") if "policy_add" in _load_yaml(p))


def repeated_tokens(policy: str) -> list[str]:
    return [token for token, n in Counter(policy.split("-")).items() if n > 1]


@pytest.mark.parametrize("model", ADDING_MODELS)
def test_every_view_of_a_model_that_adds_tokens_holds_them_once(model):
    names = [n for n in list_configs() if n.startswith(f"{model}-")]
    assert names
    for name in names:
        cfg = load_config(name)
        for view in (cfg.views.policy, *(cfg.views.view_policies or ())):
            assert not repeated_tokens(view), f"{name}: {view}"


def test_a_placeholder_view_gets_the_added_tokens_after_its_own():
    """``{policy}-augmix`` on ResNet-50: AugMix before the colour jitter and lighting, as every other operation."""
    cfg = load_config("ResNet50-standard-jsd")
    assert cfg.views.view_policies == (
        "crop-flip-jitter-lighting",
        "crop-flip-augmix-jitter-lighting",
        "crop-flip-augmix-jitter-lighting",
    )
