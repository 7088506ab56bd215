"""Training configurations: defaults, built-in named configs, overrides and validation.

A built-in config is named ``<Model>-<augmentation>[-<method>]`` (``ResNet50-standard-agmax``,
``FashionMNIST-ResNet8-standard-tied``) and composed from three YAML fragments in
``accord/configs/``: ``models/<Model>.yaml`` (network, data and schedule), ``augs/<augmentation>.yaml``
(training policy) and ``methods/<method>.yaml`` (loss and views; no suffix is the CE baseline).
A config file given by path holds any subset of :data:`DEFAULTS` and may start from a built-in
config with ``base: NAME``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"

#: Every config key with its default; a key not listed here is an error.
DEFAULTS: dict[str, Any] = {
    # model
    "model": "ResNet8",
    "drop_rate": 0.0,
    "bn": "concat",  # concat | split | separate: how BatchNorm sees the views
    "sync_bn": False,  # several processes: BatchNorm statistics over the global batch (SyncBatchNorm)
    # data
    "dataset": "fashion_mnist",
    "data_dir": None,
    "image_size": None,  # None: the dataset's own size (224 for image folders)
    "val_fraction": 0.1,
    "train_subset": None,
    "workers": 2,
    # views
    "policy": "crop-flip",  # training policy of every view (see accord.views.policies)
    "num_views": 1,
    "views": None,  # explicit per-view policies ("{policy}" stands for policy); overrides num_views
    "same_crop": False,
    "augment_on": "loader",  # loader: per image in the workers | device: batched on the training device (kornia)
    # batch mixing (accord.views.mixing); null alpha/prob take the AgMax paper's defaults for the data size
    "mix": "none",  # none | mixup | cutmix | mixup-cutmix
    "mixup_alpha": None,  # null: 0.2 for ImageNet-size images, 1.0 for 28-32 px
    "cutmix_alpha": 1.0,
    "mix_prob": None,  # probability a batch is mixed; null: 0.5 for CutMix on 28-32 px, else 1.0
    "switch_prob": 0.5,  # mixup-cutmix: probability that a mixed batch uses CutMix
    # method
    "method": "ce",
    "loss": {},  # options of the method's loss, e.g. {dl_weight: 4} for agmax, {weight: 1} for tied
    # optimisation
    "epochs": 10,
    "batch_size": 128,
    "lr": 0.1,
    "lr_batch": 256,  # lr is given per lr_batch images and scaled linearly with batch_size
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "schedule": "cosine",  # cosine | multistep
    "milestones": [],  # epochs at which multistep multiplies the lr by gamma
    "gamma": 0.1,
    "warmup_epochs": 0,
    "warmup_lr": 1e-4,
    # run
    "seed": 0,
    "amp": "none",  # none | bf16 (CPU or GPU) | fp16 (GPU, with a grad scaler)
    "channels_last": False,
    "compile": False,  # torch.compile the model for training
    "eval_batch_size": 500,
    "log_interval": 50,
    "tensorboard": False,  # also write TensorBoard scalars to <run>/tensorboard (needs the tensorboard package)
    "checkpoint_every_steps": 0,  # also write checkpoint-last.pt every N updates (0: only at each epoch's end)
    "nonfinite": "stop",  # stop | skip: what a NaN/Inf loss does (stop the run, or skip that update)
}

CHOICES: dict[str, tuple[str, ...]] = {
    "mix": ("none", "mixup", "cutmix", "mixup-cutmix"),
    "bn": ("concat", "split", "separate"),
    "schedule": ("cosine", "multistep"),
    "amp": ("none", "bf16", "fp16"),
    "nonfinite": ("stop", "skip"),
    "augment_on": ("loader", "device"),
}


class ConfigError(ValueError):
    """A config that cannot run; the message is one line meant for the user."""


def _fragments(kind: str) -> dict[str, Path]:
    return {p.stem: p for p in sorted((CONFIG_DIR / kind).glob("*.yaml"))}


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return data


def list_configs() -> list[str]:
    """Every built-in config name (a method that refuses MixUp/CutMix is not paired with them)."""
    from .losses import method_mixing

    models, augs, methods = _fragments("models"), _fragments("augs"), _fragments("methods")
    mixes = {aug: _load_yaml(path).get("mix", "none") != "none" for aug, path in augs.items()}
    mixable = {"": True} | {
        f"-{m}": method_mixing(_load_yaml(path).get("method", m)) is not None for m, path in methods.items()
    }
    return [
        f"{model}-{aug}{suffix}"
        for model in models
        for aug in augs
        for suffix in mixable
        if mixable[suffix] or not mixes[aug]
    ]


def split_name(name: str) -> tuple[str, str, str | None]:
    """``ResNet50-auto_augment-cutout-agmax`` -> (``ResNet50``, ``auto_augment-cutout``, ``agmax``)."""
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
        f"augmentation in {', '.join(augs)}; method in ce (no suffix), {', '.join(methods)}. "
        "`accord configs` lists them all."
    )


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve a built-in name or a YAML file onto :data:`DEFAULTS`, apply overrides, validate."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        data = _load_yaml(path)
        base = data.pop("base", None)
        cfg = {"name": path.stem, **(load_config(base) if base else DEFAULTS)}
        cfg["name"] = path.stem
        layers = [(str(path), data)]
    else:
        model, aug, method = split_name(str(name_or_path))
        cfg = {"name": str(name_or_path), **DEFAULTS}
        layers = [
            (str(p), _load_yaml(p))
            for p in (
                CONFIG_DIR / "models" / f"{model}.yaml",
                CONFIG_DIR / "augs" / f"{aug}.yaml",
                *([CONFIG_DIR / "methods" / f"{method}.yaml"] if method else []),
            )
        ]
    for source, layer in [*layers, ("--set", overrides or {})]:
        check_keys(layer, source)
        for key, value in layer.items():
            cfg[key] = dict(cfg[key], **value) if key == "loss" and isinstance(value, dict) else value
    return validate(cfg)


def load_saved_config(path: str | Path) -> dict[str, Any]:
    """The config a run folder saved (``config.yaml``), validated. Keys added to accord since that run was
    started take their defaults, which keep the behaviour of the version that wrote it."""
    saved = _load_yaml(Path(path))
    check_keys(saved, str(path))
    return validate({**DEFAULTS, **saved})


def check_keys(layer: dict[str, Any], source: str) -> None:
    for key in layer:
        if key not in DEFAULTS and key != "name":
            close = difflib.get_close_matches(key, list(DEFAULTS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: unknown config key {key!r}{hint}; valid keys: {', '.join(DEFAULTS)}")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["lr=0.05", "loss.weight=2"]`` -> ``{"lr": 0.05, "loss": {"weight": 2}}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        value = yaml.safe_load(raw) if raw else None
        if key.startswith("loss."):
            out.setdefault("loss", {})[key[5:]] = value
        else:
            out[key] = value
    return out


def _type_ok(key: str, value: Any) -> bool:
    default = DEFAULTS[key]
    if value is None:
        return default is None or key in ("views",)
    if key in ("data_dir",):
        return isinstance(value, str)
    if key in ("mixup_alpha", "mix_prob"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if key in ("image_size", "train_subset"):
        return isinstance(value, int) and not isinstance(value, bool)
    if key == "views":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, type(default))


def validate(cfg: dict[str, Any]) -> dict[str, Any]:
    """Check types and values; fill ``views`` from ``policy`` x ``num_views``. Returns ``cfg``."""
    from .losses import create_loss, method_mixing, method_views  # deferred: keeps `accord configs` light

    for key, value in cfg.items():
        if key != "name" and not _type_ok(key, value):
            raise ConfigError(f"config key {key!r}: expected {type(DEFAULTS[key]).__name__}, got {value!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise ConfigError(f"config key {key!r}: {value!r} is not one of {', '.join(CHOICES[key])}")
    for key in ("lr", "epochs", "batch_size", "lr_batch", "eval_batch_size", "log_interval"):
        if cfg[key] <= 0:
            raise ConfigError(f"config key {key!r} must be positive, got {cfg[key]}")
    for key in ("weight_decay", "momentum", "workers", "warmup_epochs", "drop_rate", "checkpoint_every_steps"):
        if cfg[key] < 0:
            raise ConfigError(f"config key {key!r} must not be negative, got {cfg[key]}")
    if not 0.0 <= cfg["val_fraction"] < 1.0:
        raise ConfigError(f"config key 'val_fraction' must be in [0, 1), got {cfg['val_fraction']}")
    for key in ("train_subset", "image_size"):
        if cfg[key] is not None and cfg[key] < 1:
            raise ConfigError(f"config key {key!r} must be positive, got {cfg[key]}")
    if cfg["train_subset"] is not None and cfg["train_subset"] < cfg["batch_size"]:
        raise ConfigError(
            f"train_subset {cfg['train_subset']} is smaller than batch_size {cfg['batch_size']}: "
            "no full batch to train on"
        )
    try:
        needed = method_views(cfg["method"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg["views"] is None:
        cfg["views"] = [cfg["policy"]] * (needed or cfg["num_views"])
    cfg["views"] = [view.replace("{policy}", cfg["policy"]) for view in cfg["views"]]
    cfg["num_views"] = len(cfg["views"])
    if needed is not None and cfg["num_views"] != needed:
        raise ConfigError(f"method {cfg['method']!r} needs {needed} views; the config has {cfg['views']}")
    try:  # loss options are checked by building the loss once (cheap: at most a small Q head)
        create_loss(cfg["method"], 10, cfg["num_views"], **cfg["loss"])
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg["bn"] == "split" and cfg["num_views"] < 2:
        raise ConfigError("bn: split needs at least 2 views")
    if cfg["augment_on"] == "device":
        _check_device_views(cfg)
    if cfg["tensorboard"]:
        from .engine.tensorboard import MISSING_MESSAGE, tensorboard_available

        if not tensorboard_available():
            raise ConfigError(f"tensorboard: true - {MISSING_MESSAGE}")
    if cfg["bn"] == "split" and cfg["sync_bn"]:
        raise ConfigError("sync_bn does not combine with bn: split (timm's split BatchNorm has no synchronised form)")
    if cfg["mix"] != "none" and method_mixing(cfg["method"]) is None:
        raise ConfigError(f"method {cfg['method']!r} does not support mix: {cfg['mix']} (as in timm's AugMix-JSD)")
    small = cfg["dataset"] != "imagefolder"
    if cfg["mixup_alpha"] is None:
        cfg["mixup_alpha"] = 1.0 if small else 0.2
    if cfg["mix_prob"] is None:
        cfg["mix_prob"] = 0.5 if small and cfg["mix"] == "cutmix" else 1.0
    for key in ("mix_prob", "switch_prob"):
        if not 0.0 <= cfg[key] <= 1.0:
            raise ConfigError(f"config key {key!r} must be in [0, 1], got {cfg[key]}")
    for key in ("mixup_alpha", "cutmix_alpha"):
        if cfg[key] <= 0:
            raise ConfigError(f"config key {key!r} must be positive, got {cfg[key]}")
    return cfg


def _check_device_views(cfg: dict[str, Any]) -> None:
    """``augment_on: device`` needs kornia, a 28-32 px dataset and per-sample tokens only."""
    try:
        from .views.batched import check_batched_spec
    except ImportError:
        raise ConfigError("augment_on: device needs kornia: pip install kornia (or accord[batched])") from None
    if cfg["dataset"] == "imagefolder":
        raise ConfigError("augment_on: device supports 28-32 px datasets only; image folders augment in the loader")
    for spec in cfg["views"]:
        try:
            check_batched_spec(spec)
        except ValueError as e:
            raise ConfigError(f"augment_on: device - {e}") from None
