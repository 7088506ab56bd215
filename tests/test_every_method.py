"""Every registered method, whatever it is, goes through each part of accord that reads the registry: its configs
are listed and resolve, one training step runs (mixed under its MixUp/CutMix rule), the bench picks its baseline,
and the report names it. The cases come from the registry, so a method added by docs/adding-a-method.md is
checked here too (tests/test_adding_a_method.py runs this file with one added).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import accord.bench.steps as steps
from accord.config import list_configs, load_config, split_name
from accord.config.files import CONFIG_DIR, _fragments, _load_yaml
from accord.losses import METHODS, baseline_method
from accord.results import control_arms, control_note, is_agreement, label, method_order
from accord.views.mixing import ViewMixer

SMALL = "FashionMNIST-ResNet8"
FRAGMENT_OF = {_load_yaml(path).get("method", stem): stem for stem, path in _fragments("methods").items()}


def _suffix(method: str) -> str:
    return "" if method == baseline_method() else f"-{FRAGMENT_OF[method]}"


@pytest.mark.parametrize("method", list(METHODS))
def test_its_configs_are_listed_with_each_augmentation_its_mixing_allows(method: str) -> None:
    assert method == baseline_method() or method in FRAGMENT_OF, f"{method}: no fragment in accord/configs/methods"
    names = set(list_configs())
    for aug, path in _fragments("augs").items():
        mixes = _load_yaml(path).get("mix", "none") != "none"
        listed = f"{SMALL}-{aug}{_suffix(method)}" in names
        assert listed == (not mixes or METHODS[method].mixing is not None), (method, aug)


@pytest.mark.parametrize("method", list(METHODS))
def test_its_listed_configs_resolve_to_it(method: str) -> None:
    spec = METHODS[method]
    for name in [n for n in list_configs() if n.startswith(f"{SMALL}-") and n.endswith(_suffix(method))]:
        if split_name(name)[2] == (None if method == baseline_method() else FRAGMENT_OF[method]):
            cfg = load_config(name)
            assert cfg.method.method == method and cfg.views.num_views == (spec.views or cfg.views.num_views), name
            assert set(cfg.method.loss) == set(spec.options()), name  # every option stated: the loss's defaults


def _step(method: str) -> Any:
    cfg = steps.BenchConfig(batch=4, image_size=16, channels=1, num_classes=5)
    views = steps.views_of(method, 2)
    step, _ = steps.build_training(cfg, method, views, "concat", torch.device("cpu"))
    x = torch.randn(views * cfg.batch, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    return step, x, torch.arange(cfg.batch) % cfg.num_classes, views


@pytest.mark.parametrize("method", list(METHODS))
def test_one_training_step_runs_mixed_and_unmixed(method: str, one_thread: Any) -> None:
    step, x, y, views = _step(method)
    terms, logits = step(x, y)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"]) and logits.shape == (x.shape[0], 5)
    rule = METHODS[method].mixing
    if rule is None:
        return
    mixed = ViewMixer(5, views, "mixup-cutmix", views=rule)(x, y)
    extra = {"feature_mix": mixed.feature_mix} if mixed.feature_mix is not None else {}
    terms, _ = step(mixed.images, mixed.target, **extra)
    terms["loss"].backward()
    assert torch.isfinite(terms["loss"])


@pytest.mark.parametrize("method", list(METHODS))
def test_the_bench_times_it_against_the_baseline_on_as_many_images(method: str, monkeypatch) -> None:
    monkeypatch.setattr(steps, "MEASURED_METHODS", (method,))
    monkeypatch.setattr(steps, "make_train_step", lambda cfg, m, v, b, bn_mode="concat": steps.Step(lambda: 0, v * b))
    monkeypatch.setattr(steps, "make_loss_step", lambda cfg, m, v: steps.Step(lambda: 0, v * cfg.batch))
    cfg = steps.BenchConfig(batch=8)
    built = steps.step_steps(cfg)
    assert built[steps.baseline_name(method, cfg)].images == built[method].images
    assert set(steps.summarize_steps(cfg, {name: [1.0] for name in built})["overhead_ratio"]) == {method}


@pytest.mark.parametrize("method", list(METHODS))
def test_the_report_names_it(method: str) -> None:
    spec = METHODS[method]
    assert method in method_order() and label(method) == spec.label and label(f"{method}@2x").startswith(spec.label)
    assert is_agreement(method) == (spec.kind == "agreement")
    assert (method in control_arms()) == (spec.kind == "control")
    if spec.kind == "control":
        assert control_note(method) == spec.note


def test_the_fixed_colours_are_distinct() -> None:
    pytest.importorskip("matplotlib")
    from accord.report_figures import fixed_colours

    colours = list(fixed_colours().values())
    assert len(colours) == len(set(colours))


def test_every_fragment_names_a_registered_method() -> None:
    assert set(FRAGMENT_OF) <= set(METHODS), sorted(set(FRAGMENT_OF) - set(METHODS))
    assert (CONFIG_DIR / "methods").is_dir()


def test_compare_and_grid_run_the_featured_methods_by_default(monkeypatch) -> None:
    from accord.cli import build_parser
    from accord.losses import MethodSpec, ViewCrossEntropy

    featured = MethodSpec("featured-control", ViewCrossEntropy, kind="control", mixing="each", featured=True)
    monkeypatch.setitem(METHODS, featured.name, featured)
    parser = build_parser()
    compared = parser.parse_args(["compare"]).methods.split(",")
    gridded = parser.parse_args(["grid", "--models", "M", "--out", "x"]).methods.split(",")
    assert compared[0] == gridded[0] == baseline_method()
    featured_names = {m for m, s in METHODS.items() if s.featured}
    assert set(compared) == {baseline_method()} | {m for m in featured_names if METHODS[m].kind == "agreement"}
    assert set(gridded) == {baseline_method()} | featured_names
    assert featured.name in gridded and featured.name not in compared
