"""Resolve a flat config into a :class:`~.schema.Config`: check every key once, fill derived values once.

Checks: each key's type (floats must be finite; YAML's ``5e-4`` is a float), ranges, the method's
number of views and loss options (:mod:`accord.losses.registry`), the model name (timm's or accord's),
every view's policy tokens, and the combinations that cannot run. Derived values come from the data
set's facts (:data:`accord.data.datasets.DATASET_FACTS`): ``view_policies`` from ``policy`` x ``num_views``
(or the method's views), and MixUp's alpha and the mixing probability for 28-32 px images (the AgMax
paper's defaults). Nothing here reads files, loads data or creates folders.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import fields
from typing import Any, Literal, Union

from ..data.bounds import MAX_PIXELS, MAX_RESIZE_SIDE, eval_resize_side
from ..data.checks import check_image_size, check_val_source
from ..data.datasets import DATASET_FACTS
from ..errors import UserError
from ..losses import method_spec
from ..losses.mixing_rule import check_mixing
from ..views.tokens import clip_cutouts
from .errors import ConfigError
from .optimizers import optimizer_class, optimizer_names
from .schema import DEFAULTS, DOMAINS, SECTIONS, Config, check_keys, describe

PRETRAINED_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".pth.tar")  # .pth.tar: timm's train.py checkpoints


def resolve(flat: dict[str, Any]) -> Config:
    """The :class:`Config` of ``flat`` (every key of :data:`~.schema.DEFAULTS` plus ``name``).

    Raises :class:`ConfigError` (one line) for anything that cannot run.
    """
    values = dict(flat)
    name = str(values.pop("name", "config"))
    check_keys(values, "config")
    values = {**DEFAULTS, **values}
    hints = _hints()
    for key, value in values.items():
        values[key] = _checked(key, value, hints[key])
    _check_ranges(values)
    _check_bounds(values)
    _check_training_options(values)
    _resolve_method_and_views(values)
    _check_combinations(values)
    _resolve_mixing(values)
    _check_model_and_policies(values)
    _resolve_recipe_keys(values)
    sections = {section: cls(**{f.name: values[f.name] for f in fields(cls)}) for section, cls in SECTIONS.items()}
    return Config(name=name, **sections)


@functools.cache
def _hints() -> dict[str, Any]:
    return {k: v for cls in SECTIONS.values() for k, v in typing.get_type_hints(cls).items()}


def _checked(key: str, value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` wants it (lists become tuples), or :class:`ConfigError` naming the key."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            try:
                return _checked(key, value, options[0])
            except ConfigError:
                pass
        raise ConfigError(f"config key {key!r}: expected {describe(hint)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        if isinstance(value, list | tuple):
            try:
                return tuple(_checked(key, v, args[0]) for v in value)
            except ConfigError:
                pass
        raise ConfigError(f"config key {key!r}: expected a {describe(hint)}, got {value!r}")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        for option, v in value.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config key {key}.{option}: must be a finite number, got {v}")
        return dict(value)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key {key!r}: must be a finite number, got {value}")
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, hint):
        return value
    raise ConfigError(f"config key {key!r}: expected {describe(hint)}, got {value!r}")


def _check_ranges(v: dict[str, Any]) -> None:
    """Every number (every item of a list of numbers) in its key's declared range (:data:`.schema.DOMAINS`), then
    the ranges that depend on other keys."""
    from ..data.registry import dataset_names

    if v["dataset"] not in dataset_names():
        raise ConfigError(f"config key 'dataset': {v['dataset']!r} is not one of {', '.join(dataset_names())}")
    for key, domain in DOMAINS.items():
        for value in v[key] if isinstance(v[key], tuple) else (v[key],):
            if value is not None:
                try:
                    domain.check(key, value)
                except ValueError as e:
                    raise ConfigError(str(e)) from None
    facts = DATASET_FACTS[v["dataset"]]
    try:
        check_image_size(v["dataset"], v["image_size"])
    except UserError as e:
        raise ConfigError(f"config key 'image_size': {e}") from None
    if v["crop_pct"] is None:
        v["crop_pct"] = facts.crop_pct
    if v["train_subset"] is not None and v["train_subset_per_class"] is not None:
        raise ConfigError("train_subset and train_subset_per_class exclude each other; set one of them")
    if v["train_subset"] is not None and v["train_subset"] < v["batch_size"] * v["accum_steps"] and v["drop_last"]:
        raise ConfigError(
            f"train_subset {v['train_subset']} is smaller than batch_size {v['batch_size']}"
            f"{f' x accum_steps {k}' if (k := v['accum_steps']) > 1 else ''}: no full batch to train on "
            "(drop_last: false trains on the smaller one)"
        )


def _check_bounds(v: dict[str, Any]) -> None:
    """What bounds the images the pipelines make: an ``image_size`` whose evaluation resize of a square image
    would pass the pixel bound makes every image unusable (the wait for a loader's batch has its domain)."""
    size = v["image_size"] or DATASET_FACTS[v["dataset"]].image_size
    if (side := eval_resize_side(size, v["crop_pct"])) > MAX_RESIZE_SIDE:
        raise ConfigError(
            f"config keys 'image_size' and 'crop_pct': the evaluation resize, floor({size} / "
            f"{v['crop_pct']}) = {side} px a side, must be at most {MAX_RESIZE_SIDE} (a square image then makes at "
            f"most {MAX_PIXELS / 1e6:.0f} megapixels); lower image_size or raise crop_pct"
        )


def _check_training_options(v: dict[str, Any]) -> None:
    """The options taken from timm: optimizer name, EMA decay, gradient clipping, drop-path."""
    names = optimizer_names()
    if v["optimizer"] not in names:
        raise ConfigError(f"config key 'optimizer': {v['optimizer']!r} is not one of {', '.join(names)}")
    try:
        optimizer_class(v["optimizer"])
    except (AssertionError, ImportError) as e:  # bitsandbytes / APEX optimizers: CUDA and their package
        raise ConfigError(f"config key 'optimizer': {v['optimizer']} cannot be built here ({e})") from None
    if v["sam_rho"] > 0 and v["amp"] == "fp16":
        raise ConfigError(
            "sam_rho > 0 does not combine with amp: fp16 (one grad scaler, two backward passes); use bf16"
        )
    if v["sam_rho"] > 0 and v["nonfinite"] == "skip":
        raise ConfigError("sam_rho > 0 runs with nonfinite: stop (skip would check only the first of its two passes)")
    if v["sam_rho"] > 0 and v["accum_steps"] > 1:
        raise ConfigError("sam_rho > 0 runs with accum_steps: 1 (its second pass needs the whole update's batch)")
    if v["pretrained_file"] is not None and not v["pretrained_file"].endswith(PRETRAINED_SUFFIXES):
        raise ConfigError(
            f"config key 'pretrained_file': {v['pretrained_file']!r} is not one of {', '.join(PRETRAINED_SUFFIXES)}"
        )


def _resolve_method_and_views(v: dict[str, Any]) -> None:
    """Fill ``view_policies`` and ``num_views``; check the method's views and loss options."""
    try:
        spec = method_spec(v["method"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    asked = v["num_views"]
    if v["view_policies"] is None and spec.views is not None and asked is not None and asked != spec.views:
        raise ConfigError(f"method {v['method']!r} needs {spec.views} views; num_views is {asked}")
    if v["view_policies"] is None:
        v["view_policies"] = (v["policy"],) * (spec.views or asked or 1)
    v["view_policies"] = tuple(view.replace("{policy}", v["policy"]) for view in v["view_policies"])
    if v["cutout_clip"]:
        v["policy"], *policies = (_clipped(policy) for policy in (v["policy"], *v["view_policies"]))
        v["view_policies"] = tuple(policies)
    v["num_views"] = len(v["view_policies"])
    if spec.views is not None and v["num_views"] != spec.views:
        raise ConfigError(f"method {v['method']!r} needs {spec.views} views; the config has {list(v['view_policies'])}")
    try:
        spec.check_options(v["loss"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    v["loss"] = _checked_options(spec, {**spec.option_defaults(), **v["loss"]})  # every value, stated
    try:
        # the values of the options are the loss's to check: build it once, for a 2-class problem
        spec.build_loss(2, v["num_views"], **v["loss"])
    except (ValueError, TypeError) as e:
        raise ConfigError(f"loss options of method {v['method']!r}: {e}") from None


def _checked_options(spec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Each loss option as its declared type (the loss constructor's annotation: a string ``"false"`` is no bool)
    and in its declared range (the loss's ``OPTION_DOMAINS``), or a ConfigError naming ``loss.<option>``."""
    types, domains = spec.option_types(), spec.option_domains()
    checked = {}
    for option, value in options.items():
        name = f"loss.{option}"
        checked[option] = value if types[option] is Any else _checked(name, value, types[option])
        if option in domains and isinstance(checked[option], int | float):
            try:
                domains[option].check(name, checked[option])
            except ValueError as e:
                raise ConfigError(str(e)) from None
    return checked


def _clipped(policy: str) -> str:
    """``policy`` with every ``cutout[_L]`` token made the clipped ``ccutout[_L]``."""
    return clip_cutouts(policy)


def _check_combinations(v: dict[str, Any]) -> None:
    if v["bn"] == "split" and v["num_views"] < 2:
        raise ConfigError("bn: split needs at least 2 views")
    try:
        check_val_source(v["dataset"], v["val_source"])
    except UserError as e:
        raise ConfigError(str(e)) from None
    if v["bn"] == "split" and v["sync_bn"]:
        raise ConfigError("sync_bn does not combine with bn: split (timm's split BatchNorm has no synchronised form)")
    if v["mix"] != "none":
        try:
            check_mixing(v["method"], f"use mix: none, not mix: {v['mix']}")
        except UserError as e:
            raise ConfigError(str(e)) from None
    if v["augment_on"] == "device":
        try:
            from ..views.batched import check_batched_policy
        except ImportError:
            raise ConfigError(
                "augment_on: device needs kornia (its crop, flip and erasing): pip install kornia (or accord[batched])"
            ) from None
        for policy in v["view_policies"]:
            try:
                check_batched_policy(policy, v["image_size"] or DATASET_FACTS[v["dataset"]].image_size)
            except ValueError as e:
                raise ConfigError(str(e)) from None


def _resolve_mixing(v: dict[str, Any]) -> None:
    """MixUp's alpha and CutMix's probability default to the data set's (the AgMax paper's for its image size)."""
    facts = DATASET_FACTS[v["dataset"]]
    if v["mixup_alpha"] is None:
        v["mixup_alpha"] = facts.mixup_alpha
    if v["mix_prob"] is None:
        v["mix_prob"] = facts.cutmix_prob if v["mix"] == "cutmix" else 1.0


def _check_model_and_policies(v: dict[str, Any]) -> None:
    from ..models.factory import resolve_model_name
    from ..views.tokens import parse_policy

    try:
        resolve_model_name(v["model"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    facts = DATASET_FACTS[v["dataset"]]
    size, channels = v["image_size"] or facts.image_size, len(facts.mean)
    for policy in {v["policy"], *v["view_policies"]}:
        try:  # the grammar, the sizes and the colour-only augmentations (on images without 3 channels)
            parse_policy(policy, size, channels)
        except ValueError as e:
            raise ConfigError(f"config key {'policy' if policy == v['policy'] else 'view_policies'!r}: {e}") from None


def _resolve_recipe_keys(v: dict[str, Any]) -> None:
    """Check ``init`` and the normalisation; fill ``milestones`` from the fractions or the AgMax table."""
    from ..models.init import parse_scheme
    from .milestones import agmax_milestones, milestones_from_fractions

    try:
        parse_scheme(v["init"])
    except ValueError as e:
        raise ConfigError(f"config key 'init': {e}") from None
    if v["init"] != "default" and v.get("pretrained_file"):
        raise ConfigError(f"init: {v['init']} would redraw the weights of pretrained_file; use init: default with it")
    mean, std = v["normalize_mean"], v["normalize_std"]
    if (mean is None) != (std is None):
        raise ConfigError("normalize_mean and normalize_std go together: set both or neither")
    if mean is not None:
        channels = len(DATASET_FACTS[v["dataset"]].mean)
        if len(mean) != channels or len(std) != channels or not all(s > 0 for s in std):
            raise ConfigError(
                f"normalize_mean and normalize_std need {channels} values each for {v['dataset']} (std > 0), "
                f"got {list(mean)} and {list(std)}"
            )
    if v["milestone_fractions"] and v["milestone_table"] != "none":
        raise ConfigError("milestone_fractions and milestone_table: agmax exclude each other; set one of them")
    try:
        if v["milestone_fractions"]:
            v["milestones"] = tuple(milestones_from_fractions(v["milestone_fractions"], v["epochs"]))
        elif v["milestone_table"] == "agmax":
            v["milestones"] = tuple(agmax_milestones(v["epochs"]))
    except ValueError as e:
        raise ConfigError(str(e)) from None
