"""A method's facts come from its MethodSpec: the report, its figures, the bench and config names read them."""

from __future__ import annotations

import pytest

from accord.config import DEFAULTS, config_name, list_configs, split_name
from accord.losses import METHODS, MethodSpec, ViewCrossEntropy, baseline_method
from accord.report import control_columns
from accord.results import control_arms, control_note, label, method_order


@pytest.fixture
def cosine(monkeypatch: pytest.MonkeyPatch) -> MethodSpec:
    """A control registered for the test only (removed after it)."""
    spec = MethodSpec(
        "cosine-control", ViewCrossEntropy, "cosine control", kind="control", note="a cosine control", colour="C8"
    )
    monkeypatch.setitem(METHODS, spec.name, spec)
    return spec


def test_report_reads_kind_label_and_note(cosine: MethodSpec) -> None:
    assert label(cosine.name) == "cosine control" and label("agmax@2x") == "AgMax, 2x epochs"
    assert cosine.name in method_order() and cosine.name in control_arms()
    assert control_columns({"ce", "agmax", "tied", cosine.name}) == [("agmax", cosine.name), ("tied", cosine.name)]
    assert control_note(cosine.name) == "a cosine control"


def test_figures_read_the_colour(cosine: MethodSpec) -> None:
    pytest.importorskip("matplotlib")
    from accord.report_figures import fixed_colours

    assert fixed_colours()[cosine.name] == "C8" and fixed_colours()["agmax"] == "C2"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind 'ablation'; valid: baseline, agreement, control"):
        MethodSpec("x", ViewCrossEntropy, "x", kind="ablation")  # type: ignore[arg-type]


def test_the_baseline_is_the_config_default() -> None:
    assert baseline_method() == DEFAULTS["method"]


def test_bench_measures_the_declared_methods() -> None:
    from accord.bench import MEASURED_METHODS

    assert MEASURED_METHODS == tuple(name for name, spec in METHODS.items() if spec.bench)


def test_config_name_inverts_split_name() -> None:
    for name in list_configs()[::37]:
        assert config_name(*split_name(name)) == name
    assert config_name("FashionMNIST-ResNet8", "standard", DEFAULTS["method"]) == "FashionMNIST-ResNet8-standard"
