"""A grid's results and its arms: one finished run's numbers, how reports name, order and compare the arms
(the methods of the registry and the equal-compute baseline), and the paired gain between two arms.

Both the report's tables (:mod:`accord.report`) and its figures (:mod:`accord.report_figures`) read this
module; neither imports the other's pieces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import mean, stdev

from .losses import METHODS, baseline_method


def aug_order() -> tuple[str, ...]:
    """The augmentation fragments (``accord/configs/augs``) in the order reports list them: by their policy's first
    image operation in the augmentation registry's order (none first), then their batch mixing (``mix``, in
    :data:`~accord.views.mixing.MixKind`'s order), then whether they erase after normalising (CutOut), then name."""
    import typing
    from pathlib import Path

    from .config import DEFAULTS
    from .config.files import CONFIG_DIR, parse_yaml
    from .views.augmentation import REGISTRY
    from .views.mixing import MixKind
    from .views.tokens import parse_policy

    operations = [name for name, cls in REGISTRY.items() if cls.stage == "uint8"]
    mixes = typing.get_args(MixKind)

    def key(path: Path) -> tuple[int, int, bool, str]:
        fragment = parse_yaml(path.read_text()) or {}
        policy = parse_policy(fragment.get("policy", DEFAULTS["policy"]), image_size=224)
        first = operations.index(policy.operations[0].name) if policy.operations else -1
        return first, mixes.index(fragment.get("mix", DEFAULTS["mix"])), bool(policy.at("normalised")), path.stem

    return tuple(path.stem for path in sorted((CONFIG_DIR / "augs").glob("*.yaml"), key=key))


AUG_ORDER = aug_order()


EQUAL_COMPUTE = 2  # the baseline's NAME@Kx arm that is a control: as many image forward passes as two views
EQUAL_COMPUTE_COLOUR = "C5"


def equal_compute_arm() -> str:
    """The baseline trained :data:`EQUAL_COMPUTE` times as long (``<baseline>@2x``)."""
    return f"{baseline_method()}@{EQUAL_COMPUTE}x"


def method_order() -> tuple[str, ...]:
    """The registry's methods in their order, then the equal-compute baseline (a control that is not a method)."""
    return (*METHODS, equal_compute_arm())


def label(method: str) -> str:
    """A grid arm's name in tables and figures (``NAME@Kx``: NAME's label and its epochs)."""
    name, _, factor = method.partition("@")
    if factor:
        return f"{label(name)}, {factor} epochs"
    return METHODS[method].label if method in METHODS else method


def control_arms() -> tuple[str, ...]:
    """The arms every agreement method is compared with: the registry's controls and the equal-compute baseline."""
    return (*(m for m, s in METHODS.items() if s.kind == "control"), equal_compute_arm())


def control_note(arm: str) -> str:
    """What a control arm stands for, in the report's sentence."""
    if arm == equal_compute_arm():
        return f"the baseline with {EQUAL_COMPUTE}x epochs (as many image forward passes)"
    return METHODS[arm].note


def is_agreement(arm: str) -> bool:
    """Whether a grid arm (``NAME`` or ``NAME@Kx``) is a registered method of kind ``agreement``."""
    spec = METHODS.get(arm.partition("@")[0])
    return spec is not None and spec.kind == "agreement"


@dataclass(frozen=True)
class Result:
    model: str
    aug: str
    method: str
    seed: int
    test_top1: float  # at the best-validation epoch
    last_test_top1: float
    train_seconds: float
    epochs: float | None = None  # of summary.json; None in a summary that does not say


@dataclass(frozen=True)
class Unfinished:
    """A run folder of the grid without a ``summary.json``: still running, stopped or failed."""

    model: str
    aug: str
    method: str
    seed: int


def in_order(values: set[str], order: tuple[str, ...]) -> list[str]:
    """``values`` in ``order``, those it does not name after them, sorted."""
    return [v for v in order if v in values] + sorted(values - set(order))


def t_critical(df: int) -> float:
    """Two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def paired_gain(method: dict[int, float], baseline: dict[int, float]) -> tuple[float, float, float, int] | None:
    """Mean of per-seed differences and its 95% t interval: (mean, low, high, n); None under 2 pairs."""
    seeds = sorted(set(method) & set(baseline))
    if len(seeds) < 2:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    half = t_critical(len(diffs) - 1) * stdev(diffs) / math.sqrt(len(diffs))
    return mean(diffs), mean(diffs) - half, mean(diffs) + half, len(diffs)


def clear_gain(gain: tuple[float, float, float, int] | None) -> bool:
    """The bolding rule: a paired 95% interval that lies entirely above zero."""
    return gain is not None and gain[1] > 0
