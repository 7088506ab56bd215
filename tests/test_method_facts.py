"""A method's facts come from its MethodSpec and its loss class: what the loss says is read from it, what a
fragment states is only what differs from the loss, and the report and the bench follow the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from torch import Tensor, nn

import accord.bench.steps as steps
from accord.config import DEFAULTS, config_name, list_configs, split_name
from accord.config.files import CONFIG_DIR
from accord.losses import METHODS, MethodSpec, ViewCrossEntropy, baseline_method
from accord.report import control_columns
from accord.results import control_arms, control_note, label, method_order

FRAGMENTS = sorted((CONFIG_DIR / "methods").glob("*.yaml"))


class _Scheduled(ViewCrossEntropy):
    """A loss with a weight schedule, torch's smoothing name and the mixed-feature target."""

    def set_progress(self, progress: float) -> None:
        self.progress = progress

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None, feature_mix: Any = None):
        return super().forward(logits, target, features)


class _Plain(nn.Module):
    """A loss with timm's smoothing name and nothing else."""

    CLEAN_FIRST = True

    def __init__(self, smoothing: float = 0.0, weight: float = 2.0) -> None:
        super().__init__()

    def forward(self, logits: Tensor, target: Tensor, features: Tensor | None = None) -> dict[str, Tensor]:
        raise NotImplementedError


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


def test_presentation_has_defaults_a_new_method_needs_none() -> None:
    spec = MethodSpec("plain", _Plain)
    assert (spec.label, spec.note, spec.colour) == ("plain", "plain", None)


def test_the_two_view_control_is_a_method() -> None:
    spec = METHODS["ce2"]
    assert (spec.kind, spec.views, spec.loss) == ("control", 2, METHODS[baseline_method()].loss)
    assert "ce2" in control_arms() and label("ce2") == "two-view CE"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind 'ablation'; valid: baseline, agreement, control"):
        MethodSpec("x", ViewCrossEntropy, "x", kind="ablation")  # type: ignore[arg-type]


def test_the_baseline_is_the_config_default() -> None:
    assert baseline_method() == DEFAULTS["method"]


def test_flags_are_read_from_the_loss_class() -> None:
    scheduled, plain = MethodSpec("s", _Scheduled, mixing="first"), MethodSpec("p", _Plain)
    assert (scheduled.progress, scheduled.takes_feature_mix, scheduled.smoothing_option()) == (
        True,
        True,
        "label_smoothing",
    )
    assert (plain.progress, plain.takes_feature_mix, plain.smoothing_option(), plain.clean_first) == (
        False,
        False,
        "smoothing",
        True,
    )
    assert plain.option_defaults() == {"smoothing": 0.0, "weight": 2.0}


def test_first_mixing_needs_a_loss_that_takes_the_feature_target() -> None:
    with pytest.raises(ValueError, match="mixing 'first' hands the loss feature_mix=, which _Plain.forward"):
        MethodSpec("p", _Plain, mixing="first")


def test_a_method_that_says_no_mixing_rule_is_not_paired_with_mixing_configs(monkeypatch, tmp_path: Path) -> None:
    spec = MethodSpec("unmixed", ViewCrossEntropy)
    assert spec.mixing is None
    monkeypatch.setitem(METHODS, spec.name, spec)
    import accord.config.files as files

    configs = tmp_path / "configs"
    for kind in ("models", "augs", "methods"):
        (configs / kind).mkdir(parents=True)
    (configs / "models" / "M.yaml").write_text((CONFIG_DIR / "models" / "FashionMNIST-ResNet8.yaml").read_text())
    for aug in ("standard", "mixup"):
        (configs / "augs" / f"{aug}.yaml").write_text((CONFIG_DIR / "augs" / f"{aug}.yaml").read_text())
    (configs / "methods" / "unmixed.yaml").write_text("method: unmixed\n")
    monkeypatch.setattr(files, "CONFIG_DIR", configs)
    assert [n for n in files.list_configs() if n.endswith("-unmixed")] == ["M-standard-unmixed"]


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: p.stem)
def test_a_method_fragment_states_only_what_differs_from_the_loss(fragment: Path) -> None:
    data = yaml.safe_load(fragment.read_text())
    spec = METHODS[data.get("method", fragment.stem)]
    defaults = spec.option_defaults()
    restated = {k: v for k, v in data.get("loss", {}).items() if k in defaults and defaults[k] == v}
    assert not restated, f"{fragment.name} restates the loss's defaults {restated}: the constructor states them"
    if "num_views" in data:
        assert spec.views is None, f"{fragment.name}: num_views restates the method's own view count"


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=lambda p: p.stem)
def test_a_clean_first_fragment_keeps_view_one_clean(fragment: Path) -> None:
    """A loss that reads view 1 as the clean image gets the policy alone there; the other views add to it."""
    data = yaml.safe_load(fragment.read_text())
    if not METHODS[data.get("method", fragment.stem)].clean_first:
        return
    first, *others = data["view_policies"]
    assert first == "{policy}" and all(v.startswith("{policy}-") for v in others) and data["same_crop"] is True


def _stub_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, str]]:
    """Record the steps the bench builds (method, views, batch, bn) without building a model."""
    made: list[tuple[str, int, int, str]] = []

    def train_step(cfg: Any, method: str, num_views: int, batch: int, bn_mode: str = "concat") -> steps.Step:
        made.append((method, num_views, batch, bn_mode))
        return steps.Step(lambda: None, num_views * batch)

    monkeypatch.setattr(steps, "make_train_step", train_step)
    monkeypatch.setattr(steps, "make_loss_step", lambda cfg, m, v: steps.Step(lambda: None, v * cfg.batch))
    return made


@pytest.mark.parametrize("views", [2, 4])
def test_the_bench_compares_each_method_with_the_baseline_on_as_many_images(monkeypatch, views: int) -> None:
    four = MethodSpec("four-views", ViewCrossEntropy, views=4, mixing="each", bench=True)
    monkeypatch.setitem(METHODS, four.name, four)
    monkeypatch.setattr(steps, "MEASURED_METHODS", (*steps.MEASURED_METHODS, four.name))
    _stub_steps(monkeypatch)
    cfg = steps.BenchConfig(batch=8, views=views)
    built = steps.step_steps(cfg)
    for method in steps.MEASURED_METHODS:
        base = steps.baseline_name(method, cfg)
        assert base.startswith(baseline_method()) and built[base].images == built[method].images, method
    times = {name: [1.0, 1.0] for name in built}
    summary = steps.summarize_steps(cfg, times)
    assert set(summary["overhead_ratio"]) == set(steps.MEASURED_METHODS)


def test_the_bench_times_a_method_with_its_authors_batchnorm_only_when_it_is_measured(monkeypatch) -> None:
    measured = tuple(m for m in steps.MEASURED_METHODS if METHODS[m].bn == "concat")
    monkeypatch.setattr(steps, "MEASURED_METHODS", measured)  # the methods with bn: separate left out
    made = _stub_steps(monkeypatch)
    cfg = steps.BenchConfig(batch=8)
    built = steps.step_steps(cfg)
    assert all(bn == "concat" for *_, bn in made)
    assert steps.summarize_steps(cfg, {name: [1.0] for name in built})["own_bn_vs_concat"] == {}


def test_config_name_inverts_split_name() -> None:
    for name in list_configs()[::37]:
        assert config_name(*split_name(name)) == name
    assert config_name("FashionMNIST-ResNet8", "standard", DEFAULTS["method"]) == "FashionMNIST-ResNet8-standard"
