"""Config files: the built-in named configs, YAML files with ``base:``, ``--set`` overrides, saved configs.

A built-in config is named ``<Model>-<augmentation>[-<method>]`` (``ResNet50-standard``,
``FashionMNIST-ResNet8-cutout-<method>``) and composed from three YAML fragments in
``accord/configs/``: ``models/<Model>.yaml`` (network, data and schedule), ``augs/<augmentation>.yaml``
(training policy) and ``methods/<method>.yaml`` (loss and views; no suffix is the baseline).
A model fragment may also hold ``by_method`` (keys set for one method only, e.g. the AgMax authors'
init on the AgMax rows; the baseline is the default ``method``) and ``policy_add``
(tokens added to every view's policy before its CutOut, e.g. ImageNet's ``jitter-lighting``) and
``policy_swap`` (``{token: replacement}`` applied to every view's tokens, ``""`` removing one: the papers' own
augmentations in place of torchvision's, e.g. ``{autoaug: autoaug_agmax}``).
A config file given by path holds any subset of the keys and may start from a built-in config or
another file with ``base: NAME``. Every layer is merged into the flat form and resolved once
(:func:`.resolve.resolve`).
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..views.tokens import is_cutout
from .errors import ConfigError
from .resolve import resolve
from .schema import DEFAULTS, KEYS, Config, check_keys, current_keys

CONFIG_DIR = Path(__file__).parent.parent / "configs"


class _Loader(yaml.SafeLoader):
    """YAML 1.1's safe loader, reading ``5e-4`` and ``1e3`` as floats (as YAML 1.2 and people do)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping that writes a key twice."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _refuse_duplicate_keys(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    """A YAML mapping, refused when it writes a key twice (YAML would keep the last without a word)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKeyError(f"key {key!r} is written twice (lines {seen[key]} and {line}); keep one")
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _refuse_duplicate_keys)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = parse_yaml(path.read_text()) or {}
    except DuplicateKeyError as e:
        raise ConfigError(f"{path}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return data


def _fragments(kind: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted((CONFIG_DIR / kind).glob("*.yaml"))}


def list_configs() -> list[str]:
    """Every built-in config name (a method that refuses MixUp/CutMix is not paired with them)."""
    from ..losses import method_spec

    models, augs, methods = _fragments("models"), _fragments("augs"), _fragments("methods")
    mixes = {aug: _load_yaml(path).get("mix", "none") != "none" for aug, path in augs.items()}
    mixable = {"": True} | {
        f"-{m}": method_spec(_load_yaml(path).get("method", m)).mixing is not None for m, path in methods.items()
    }
    return [
        f"{model}-{aug}{suffix}"
        for model in models
        for aug in augs
        for suffix in mixable
        if mixable[suffix] or not mixes[aug]
    ]


def config_name(model: str, aug: str, method: str | None = None) -> str:
    """The built-in config ``<model>-<augmentation>[-<method>]`` (the inverse of :func:`split_name`): a method
    fragment's name is the suffix; the default method (``method``'s default, the baseline) has none."""
    return f"{model}-{aug}" + ("" if method in (None, DEFAULTS["method"]) else f"-{method}")


def split_name(name: str) -> tuple[str, str, str | None]:
    """``ResNet50-auto_augment-cutout-<method>`` -> (``ResNet50``, ``auto_augment-cutout``, ``<method>``)."""
    models, augs, methods = _fragments("models"), _fragments("augs"), _fragments("methods")
    for model in sorted(models, key=len, reverse=True):
        if not name.startswith(model + "-"):
            continue
        rest = name[len(model) + 1 :]
        if rest in augs:
            return model, rest, None
        for method in sorted(methods, key=len, reverse=True):
            if rest.endswith("-" + method) and rest[: -len(method) - 1] in augs:
                return model, rest[: -len(method) - 1], method
    close = difflib.get_close_matches(name, list_configs(), n=3, cutoff=0.5)
    raise ConfigError(
        f"unknown config {name!r}"
        + (f"; did you mean {', '.join(close)}?" if close else "")
        + f" Names are <model>-<augmentation>[-<method>] with model in {', '.join(models)}; "
        f"augmentation in {', '.join(augs)}; method in {DEFAULTS['method']} (no suffix), {', '.join(methods)}. "
        "`accord configs` lists them all."
    )


def _merge(flat: dict[str, Any], layer: dict[str, Any], source: str) -> None:
    check_keys(layer, source)
    for key, value in layer.items():
        if key == "loss" and isinstance(value, dict) and isinstance(flat.get("loss"), dict):
            flat["loss"] = {**flat["loss"], **value}
        else:
            flat[key] = value


def _layers(name_or_path: str | Path, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The merged flat config of a built-in name or a file (following ``base:``), unresolved."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        here = str(path.resolve())
        if here in chain:
            loop = " -> ".join([*chain[chain.index(here) :], here])
            raise ConfigError(f"{path}: base: loops back to a config already on its chain ({loop})")
        data = _load_yaml(path)
        base = data.pop("base", None)
        if base is not None and not isinstance(base, str):
            raise ConfigError(f"{path}: base: expected a config name or file, got {base!r}")
        if base is not None and not Path(base).is_absolute() and (path.parent / base).is_file():
            base = str(path.parent / base)
        flat = _layers(base, (*chain, here)) if base else {**DEFAULTS}
        flat["name"] = path.stem
        _merge(flat, data, str(path))
        return flat
    model, aug, method = split_name(str(name_or_path))
    flat = {"name": str(name_or_path), **DEFAULTS}
    model_path = CONFIG_DIR / "models" / f"{model}.yaml"
    model_layer = _load_yaml(model_path)
    policy_add = model_layer.pop("policy_add", None)
    policy_swap = model_layer.pop("policy_swap", {})
    by_method = model_layer.pop("by_method", {})
    _merge(flat, model_layer, str(model_path))
    for fragment in (
        CONFIG_DIR / "augs" / f"{aug}.yaml",
        *([CONFIG_DIR / "methods" / f"{method}.yaml"] if method else []),
    ):
        _merge(flat, _load_yaml(fragment), str(fragment))
    _merge(flat, by_method.get(method or DEFAULTS["method"], {}), f"{model_path}: by_method")
    if (policy_add or policy_swap) and flat["view_policies"] is not None:
        # each view gets the model's tokens once: "{policy}" stands for the policy before they are added
        flat["view_policies"] = [view.replace("{policy}", flat["policy"]) for view in flat["view_policies"]]
    if policy_add:
        flat["policy"] = add_tokens(flat["policy"], policy_add)
        if flat["view_policies"] is not None:
            flat["view_policies"] = [add_tokens(view, policy_add) for view in flat["view_policies"]]
    if policy_swap:
        flat["policy"] = swap_tokens(flat["policy"], policy_swap)
        if flat["view_policies"] is not None:
            flat["view_policies"] = [swap_tokens(view, policy_swap) for view in flat["view_policies"]]
    return flat


def swap_tokens(policy: str, swap: dict[str, str]) -> str:
    """``policy`` with each run of whole tokens found in ``swap`` replaced by its value (removed when the value is
    ``""``): ``crop-flip-autoaug`` with ``{autoaug: autoaug_agmax}`` is ``crop-flip-autoaug_agmax``, and
    ``{randaug_2_14_bilinear-cutout: tfrandaug_2_14}`` replaces the two tokens together, leaving other CutOuts."""
    padded = f"-{policy}-"
    for tokens, replacement in swap.items():
        padded = padded.replace(f"-{tokens}-", f"-{replacement}-" if replacement else "-")
    return padded.strip("-")


def add_tokens(policy: str, tokens: str) -> str:
    """``policy`` with ``tokens`` inserted before its CutOut (``crop-flip-cutout`` + ``jitter`` ->
    ``crop-flip-jitter-cutout``); a model fragment's ``policy_add`` adds its data set's own operations
    (the AgMax ImageNet colour jitter and lighting) to every augmentation row."""
    parts = policy.split("-")
    at = next((i for i, t in enumerate(parts) if is_cutout(t)), len(parts))
    return "-".join([*parts[:at], tokens, *parts[at:]])


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Resolve a built-in name or a YAML file onto the defaults, apply overrides (``--set``), resolve; a
    relative ``data_dir`` becomes absolute (from the working folder), as the run records it."""
    flat = _layers(name_or_path)
    overrides = overrides or {}
    model, dataset = flat.get("model"), flat.get("dataset", DEFAULTS["dataset"])
    method, mix = flat.get("method", DEFAULTS["method"]), flat.get("mix", DEFAULTS["mix"])
    _merge(flat, overrides, "--set")
    if "name" not in overrides:
        flat["name"] = renamed_method(
            str(flat["name"]), (method, mix), (flat.get("method", method), flat.get("mix", mix))
        )
    if "name" not in overrides and overrides.get("model", model) != model:
        flat["name"] = renamed(str(flat["name"]), str(model), str(flat["model"]))
    if "name" not in overrides and overrides.get("dataset", dataset) != dataset:
        flat["name"] = renamed_dataset(str(flat["name"]), str(dataset), str(flat["dataset"]))
    if isinstance(flat.get("data_dir"), str) and flat["data_dir"]:  # stored absolute: eval works from anywhere
        flat["data_dir"] = os.path.abspath(flat["data_dir"])
    return resolve(flat)


def dataset_label(name: str) -> str:
    """How a run's name writes a data set (its spec's ``label``; the built-in configs' names start with it)."""
    from ..data.registry import REGISTRY

    spec = REGISTRY.get(name)
    return (spec.label or spec.name) if spec else name


def renamed_dataset(name: str, old: str, new: str) -> str:
    """The config's name once ``--dataset``/``--set dataset=`` changed its data set, so runs and their folders say
    what they train on: ``FashionMNIST-ResNet8-standard`` on an image folder is ``ImageFolder-ResNet8-standard``,
    ``WRN28-10-CIFAR10-standard`` on CIFAR-100 ``WRN28-10-CIFAR100-standard``; a name without the old label gets the
    new one in front (``ResNet50-standard`` on CIFAR-10: ``CIFAR10-ResNet50-standard``)."""
    old_label, new_label = dataset_label(old), dataset_label(new)
    parts = name.split("-")
    if old_label in parts:
        parts[parts.index(old_label)] = new_label
        return "-".join(parts)
    return f"{new_label}-{name}"


def renamed_method(name: str, old: tuple[Any, Any], new: tuple[Any, Any]) -> str:
    """The config's name once ``--set method=``/``mix=`` (or ``--mixup``/``--cutmix``) changed them, so a run's
    folder says what it trains: ``ImageFolder-resnet18-standard`` with method M and MixUp is
    ``ImageFolder-resnet18-standard-mixup-M`` (the default method, the baseline, has no suffix)."""
    (old_method, old_mix), (new_method, new_mix) = old, new
    if (old_method, old_mix) == (new_method, new_mix):
        return name
    suffix = "" if old_method == DEFAULTS["method"] else f"-{old_method}"
    base = name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    if new_mix != old_mix and new_mix not in (None, "none") and not base.endswith(f"-{new_mix}"):
        base = f"{base}-{new_mix}"
    return base + ("" if new_method == DEFAULTS["method"] else f"-{new_method}")


def renamed(name: str, old_model: str, new_model: str) -> str:
    """The config's name once ``--set model=...`` changed its model: ``FashionMNIST-ResNet8-standard`` with
    ResNet20 is ``FashionMNIST-ResNet20-standard`` (a name that does not hold the old model gets the new one)."""
    at = name.lower().find(old_model.lower()) if old_model else -1  # ResNet50-standard holds model resnet50
    if at >= 0:
        return name[:at] + new_model + name[at + len(old_model) :]
    return f"{name}-{new_model}"


def config_from_saved(saved: dict[str, Any], source: str = "saved config") -> Config:
    """A config saved by a run (``config.yaml``, or a checkpoint's ``config``), resolved. Keys added to
    accord since that run take their defaults, which keep the behaviour of the version that wrote it; keys renamed
    since are read under their names now."""
    saved = current_keys(saved)
    check_keys(saved, source)
    return resolve({"name": source, **DEFAULTS, **saved})


def load_saved_config(path: str | Path) -> Config:
    """The config a run folder saved (``config.yaml``)."""
    return config_from_saved(_load_yaml(Path(path)), str(path))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=0.05", "loss.weight=2"]`` -> ``{"lr": 0.05, "loss": {"weight": 2}}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        try:
            value = parse_yaml(raw) if raw else None
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or "not valid YAML"
            raise ConfigError(
                f"--set {item!r}: the value of {key!r} is not valid YAML ({problem}); write numbers as 0.1, "
                "lists as [1, 2], mappings as {a: 1}, and quote strings that hold brackets"
            ) from None
        if key.startswith("loss."):
            out.setdefault("loss", {})[key[5:]] = value
        else:
            if key not in KEYS:
                check_keys({key: value}, "--set")
            out[key] = value
    return out
