"""Every value has a declared domain: every config key of the schema and every loss option of every registered
method, given a hostile value (negative, zero, NaN, +-inf, huge, the wrong type, strings such as "false"), is
either refused with one ConfigError line naming it, or resolves to a config whose lr is never negative and whose
first training steps are finite. The keys and options are read from the code's own lists (the schema's sections
and the method registry), so a new key or option is covered without a new test."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from accord.cli import main
from accord.config import KEYS, SECTIONS, Config, ConfigError, load_config
from accord.config.schema import DOMAINS
from accord.engine.optim import create_scheduler, scaled_lr
from accord.losses import METHODS

BASE = "FashionMNIST-ResNet8-standard"
HOSTILE: list[Any] = [
    -1, -3, -12, 0, -0.0, 0.5, 1, 2, math.nan, math.inf, -math.inf, 1e300, -1e300, 2**63, 10**30,
    "false", "true", "", "1e999", "nan", "-1", None, True, False, [], [-5], [0.5, math.nan], {}, {"a": 1},
]  # fmt: skip

#: (key as written, overrides that set it): every schema key, then every loss option of every method.
TARGETS: list[tuple[str, str, str | None]] = [(key, key, None) for key in KEYS] + [
    (f"loss.{option}", option, method) for method, spec in METHODS.items() for option in spec.options()
]


def overrides_of(target: tuple[str, str, str | None], value: Any) -> dict[str, Any]:
    _, key, method = target
    return {key: value} if method is None else {"method": method, "loss": {key: value}}


def resolved_or_refused(name: str, overrides: dict[str, Any]) -> Config | None:
    """The resolved config, or None after checking the refusal is one line that names ``name``."""
    try:
        return load_config(BASE, overrides)
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message, message
        assert name.removeprefix("loss.") in message, (name, message)
        return None


def check_lr(cfg: Config) -> None:
    """The config's lr schedule, and the same with a warmup and a multistep decay (where ``warmup_lr`` and
    ``gamma`` act), stays finite and >= 0."""
    check_schedule(cfg.optim)
    warmup = max(cfg.optim.warmup_epochs, 1)  # where warmup_lr acts
    milestones = (warmup + 1, *cfg.optim.milestones)  # where gamma acts
    check_schedule(dataclasses.replace(cfg.optim, schedule="multistep", milestones=milestones, warmup_epochs=warmup))


def check_schedule(optim: Any, steps_per_epoch: int = 3) -> None:
    """The lr of the first steps, of each milestone's first step and of the last step is finite and >= 0."""
    lr = scaled_lr(optim)
    assert math.isfinite(lr) and lr > 0, lr
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = create_scheduler(optimizer, optim, steps_per_epoch)
    total = optim.epochs * steps_per_epoch
    steps = {*range(min(total, 12)), total - 1, *(m * steps_per_epoch + 1 for m in optim.milestones)}
    for step in sorted(steps):
        scheduler.step_update(step)
        value = optimizer.param_groups[0]["lr"]
        assert math.isfinite(value) and value >= 0, (step, value)


def test_every_numeric_key_and_loss_option_declares_its_range():
    hints = {k: v for cls in SECTIONS.values() for k, v in typing.get_type_hints(cls).items()}
    numeric = {k for k, hint in hints.items() if {"int", "float"} & set(str(hint).replace("|", " ").split())}
    numeric |= {k for k, hint in hints.items() if any(a in (int, float) for a in _flat_args(hint))}
    assert numeric - {"name"} and numeric <= set(DOMAINS), sorted(numeric - set(DOMAINS))
    for method, spec in METHODS.items():
        types = spec.option_types()
        for option, hint in types.items():
            assert hint is not Any, f"{method}: loss option {option} has no declared type"
            if any(a in (int, float) for a in _flat_args(hint)):
                assert option in spec.option_domains(), f"{method}: loss option {option} declares no range"


def _flat_args(hint: Any) -> list[Any]:
    args = typing.get_args(hint)
    return [hint] if not args else [a for arg in args for a in _flat_args(arg)]


VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-5, 5), st.floats()), max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), value=VALUES)
def test_a_hostile_value_is_refused_by_name_or_resolves_to_a_safe_lr(target, value):
    cfg = resolved_or_refused(target[0], overrides_of(target, value))
    if cfg is not None:
        check_lr(cfg)


@pytest.mark.parametrize("target", TARGETS, ids=[t[0] if t[2] is None else f"{t[2]}:{t[0]}" for t in TARGETS])
def test_every_key_and_option_meets_every_listed_hostile_value(target):
    for value in HOSTILE:
        cfg = resolved_or_refused(target[0], overrides_of(target, value))
        if cfg is not None:
            check_lr(cfg)


FILES = {"data_dir", "dataset", "pretrained_file"}  # where the data and weights lie: resolution alone checks them
TINY = {"epochs": 1, "batch_size": 32, "train_subset": 64, "workers": 0, "eval_batch_size": 100}


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from([t for t in TARGETS if t[1] not in FILES]), value=st.sampled_from(HOSTILE))
def test_a_resolved_hostile_value_trains_finite_first_steps(target, value, fmnist_dir, tmp_path_factory):
    from accord.engine import fit

    overrides = {**TINY, "data_dir": str(fmnist_dir), **overrides_of(target, value)}
    cfg = resolved_or_refused(target[0], overrides)
    assume(cfg is not None)  # the refusals are the tests above; here the values a config takes
    assert cfg is not None
    # one epoch, in this process: the hostile value keeps its effect on the first steps
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, epochs=1))
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, workers=0))
    out = tmp_path_factory.mktemp("run")
    fit(cfg, out / "run", log=lambda _: None)
    record = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert record and all(math.isfinite(r["train"]["loss"]) and r["lr"] >= 0 for r in record), record


INSTANCES = [
    ("gamma", "gamma=-1"), ("warmup_lr", "warmup_lr=-1"), ("milestones", "milestones=[-5]"),
    ("loss.dl_weight", "loss.dl_weight=-4"), ("loss.hidden_units", "loss.hidden_units=0"),
    ("loss.hidden_units", "loss.hidden_units=-3"), ("loss.alpha", "loss.alpha=-12"),
    ("loss.both_views_ce", 'loss.both_views_ce="false"'), ("policy", "policy=crop-flip-randaug_2_100"),
]  # fmt: skip
METHOD_OF = {"dl_weight": "agmax", "hidden_units": "agmax", "alpha": "jsd", "both_views_ce": "tied"}


@pytest.mark.parametrize(("name", "item"), INSTANCES)
def test_the_command_line_names_the_key_in_one_line(name, item, tmp_path: Path, capsys: pytest.CaptureFixture):
    method = METHOD_OF.get(name.removeprefix("loss."), "ce")
    nowhere = f"data_dir={tmp_path / 'no-data'}"  # nothing could train, were the value let through
    argv = ["train", "--config", BASE, "--set", f"method={method}", "--set", nowhere, "--set", item]
    argv += ["--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("key", sorted(KEYS))
def test_a_config_file_that_writes_a_key_twice_is_refused(key: str, tmp_path: Path):
    path = tmp_path / "twice.yaml"
    value = json.dumps(load_config(BASE).as_flat()[key])
    path.write_text(f"base: {BASE}\n{key}: {value}\n# other keys\n{key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"twice.yaml: key '{key}' is written twice \(lines 2 and 4\)"):
        load_config(path)
