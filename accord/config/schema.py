"""The keys of a run's config: one frozen dataclass per concern, each key with its type, default and help.

A config is a flat mapping in YAML (``lr: 0.1``, ``loss: {weight: 2}``) and a :class:`Config` in Python
(``cfg.optim.lr``, ``cfg.method.loss``): every flat key belongs to exactly one section, and
:meth:`Config.as_flat` / :data:`KEYS` translate between the two. To add a key, add a field to its
section with ``key(default, "one line of help")``; YAML files, ``--set``, ``accord configs --help-keys``
and saved ``config.yaml`` files pick it up, and a saved config that lacks it takes the default.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, TypeVar, Union

from ..data.datasets import ValSource
from ..data.loading import DEFAULT_LOADER_TIMEOUT, MAX_LOADER_TIMEOUT
from ..domains import FRACTION, NON_NEGATIVE, POSITIVE, SHARE, Range, whole
from ..losses.registry import baseline_method
from ..models.multiview import BnMode
from ..views.eval_crop import Interpolation
from ..views.mixing import MixKind
from .errors import ConfigError

AugmentOn = Literal["loader", "device"]  # where the views are made
Amp = Literal["none", "bf16", "fp16"]  # mixed precision of the forward pass
LrSchedule = Literal["cosine", "multistep"]
NonFiniteMode = Literal["stop", "skip"]  # what a NaN/Inf loss does
WeightDecayOn = Literal["all", "weights"]  # weights: no decay on biases and norm layers (timm's filter_bias_and_bn)
ClipMode = Literal["norm", "value", "agc"]  # timm's dispatch_clip_grad modes


T = TypeVar("T")


def resolved(value: T | None, name: str) -> T:
    """The value of key ``name``, which resolution fills where the config left it null (a data set's own
    normalisation, the views of ``num_views``, the mixing defaults); ConfigError if it is still null."""
    if value is None:
        raise ConfigError(f"{name} is null: resolve the config (accord.config.resolve) before reading it")
    return value


def key(default: Any, help: str, domain: Range | None = None) -> Any:
    """A config key: its default, a one-line description and, for a number or a list of numbers, the
    :class:`~accord.domains.Range` every value (every item of a list) must lie in; resolution checks it."""
    metadata = {"help": help, "domain": domain}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ModelConfig:
    model: str = key("ResNet8", "any timm.list_models() name, or ResNet8/ResNet20/ResNet56/WRN28-10/WRN40-2")
    drop_rate: float = key(0.0, "dropout before the classifier", SHARE)
    bn: BnMode = key("concat", "how BatchNorm sees the views: one pass over all, split (aux BN), or one pass each")
    sync_bn: bool = key(False, "several processes: BatchNorm statistics over the global batch (SyncBatchNorm)")
    init: str = key(
        "default",
        "weight init (accord.models.init): default (as built), pytorch, agmax (N(0, 0.2) and zero last BN, the "
        "AgMax authors'), normal_<std>; applied to the model and the loss's own layers (AgMax's Q head)",
    )
    drop_path_rate: float = key(0.0, "stochastic depth of timm models that have it (timm's drop_path_rate)", SHARE)
    pretrained_file: str | None = key(
        None,
        "start from a local .safetensors/.pth/.pt/.pth.tar file, e.g. timm's last.pth.tar (nothing is downloaded); "
        "a new head if classes differ",
    )


@dataclass(frozen=True)
class DataConfig:
    dataset: str = key(
        "fashion_mnist",
        "the data set: a registered name (accord.data.registry; built in: fashion_mnist, cifar10, "
        "cifar100, imagefolder, hf_disk)",
    )
    data_dir: str | None = key(None, "where the data set lies (null: its default place)")
    image_size: int | None = key(
        None, "image side in pixels (null: the data set's own, 224 for image folders)", POSITIVE
    )
    val_fraction: float = key(0.1, "share of the training set held out (seeded) to select the model", SHARE)
    val_source: ValSource = key(
        "split",
        "what selects the model: split (val_fraction of the training set) or folder (an image folder's val/, as "
        "timm's train.py; val/ is then also the reported test set, no longer held out)",
    )
    train_subset: int | None = key(None, "keep this many training images (seeded); null: all", POSITIVE)
    train_subset_per_class: int | None = key(
        None, "keep this many training images of every class (seeded, class-balanced); null: all", POSITIVE
    )
    drop_last: bool = key(True, "drop each epoch's last, incomplete training batch (false: one smaller update)")
    normalize_mean: tuple[float, ...] | None = key(
        None, "per-channel normalisation mean; null: the data set's own", Range()
    )
    normalize_std: tuple[float, ...] | None = key(
        None, "per-channel normalisation std; null: the data set's own", POSITIVE
    )
    workers: int = key(2, "data loader worker processes", whole(0, 256))
    loader_timeout: float = key(
        DEFAULT_LOADER_TIMEOUT,
        f"seconds a loader worker may take for one batch, in (0, {MAX_LOADER_TIMEOUT:.0f}]; a stalled worker then "
        "stops the run in one line, its last checkpoint kept",
        Range(0, MAX_LOADER_TIMEOUT, low_open=True),
    )
    crop_pct: float | None = key(
        None,
        "evaluation crop in (0, 1], timm's crop_pct: resize the short side to floor(image_size / crop_pct), then "
        "centre-crop image_size; null: the data set's own (1.0 for 28-32 px data sets, 0.875 for image folders)",
        Range(0, 1, low_open=True, text="(0, 1]"),
    )
    interpolation: Interpolation = key("bilinear", "resize interpolation at evaluation (timm's interpolation)")


@dataclass(frozen=True)
class ViewsConfig:
    policy: str = key("crop-flip", "training policy of every view (accord.views.policies)")
    num_views: int | None = key(
        None, "views per image (filled from view_policies, or from the method; 1 for one-view methods)", whole(1, 64)
    )
    view_policies: tuple[str, ...] | None = key(
        None, "one policy per view ('{policy}' stands for policy); overrides num_views"
    )
    same_crop: bool = key(False, "every view shares view 1's crop and flip")
    cutout_clip: bool = key(False, "every cutout token is the authors' CutOut, clipped at the border (ccutout)")
    augment_on: AugmentOn = key("loader", "loader: per image in workers; device: batch-wise (folders: crops in loader)")
    mix: MixKind = key("none", "batch mixing (accord.views.mixing)")
    mixup_alpha: float | None = key(None, "MixUp Beta(alpha, alpha); null: 1.0 for 28-32 px images, 0.2 else", POSITIVE)
    cutmix_alpha: float = key(1.0, "CutMix Beta(alpha, alpha)", POSITIVE)
    mix_prob: float | None = key(
        None, "probability a batch is mixed; null: 0.5 for CutMix on 28-32 px, else 1.0", FRACTION
    )
    switch_prob: float = key(0.5, "mixup-cutmix: probability that a mixed batch uses CutMix", FRACTION)


@dataclass(frozen=True)
class MethodConfig:
    method: str = key(baseline_method(), "the method (accord.losses.METHODS); the default is the baseline")
    loss: dict[str, Any] = key(
        {}, "options of the method's loss (its constructor's keyword arguments; unset ones take the loss's defaults)"
    )


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = key(10, "training epochs", POSITIVE)
    batch_size: int = key(128, "images per update (the global batch under several processes)", whole(1, 2**20))
    lr: float = key(0.1, "learning rate per lr_batch images", Range(0, 1000, low_open=True))
    lr_batch: int = key(
        256, "lr is given per lr_batch images and scaled linearly with batch_size x accum_steps", whole(1, 2**20)
    )
    accum_steps: int = key(
        1, "micro-batches of batch_size whose gradients make one update (gradient accumulation)", whole(1, 1024)
    )
    momentum: float = key(0.9, "SGD momentum", SHARE)
    nesterov: bool = key(True, "Nesterov momentum")
    weight_decay: float = key(5e-4, "L2 weight decay", Range(0, 1))
    weight_decay_on: WeightDecayOn = key(
        "all", "all parameters, or weights only: no decay on biases and normalisation parameters"
    )
    schedule: LrSchedule = key("cosine", "learning-rate schedule")
    milestones: tuple[int, ...] = key(
        (),
        "epochs at which multistep multiplies the lr by gamma (filled from milestone_fractions or the table)",
        POSITIVE,
    )
    milestone_fractions: tuple[float, ...] = key(
        (),
        "milestones as fractions in (0, 1) of epochs (round half up); when given they replace milestones",
        Range(0, 1, low_open=True, high_open=True),
    )
    milestone_table: Literal["none", "agmax"] = key(
        "none", "agmax: milestones from the AgMax authors' epoch table (30/60/80 up to 120 epochs, 75/150/225 above)"
    )
    gamma: float = key(0.1, "multistep's lr factor", Range(0, 1, low_open=True))
    warmup_epochs: int = key(0, "epochs of linear warmup from warmup_lr", NON_NEGATIVE)
    warmup_lr: float = key(1e-4, "lr at the start of warmup", Range(0, 1000))
    optimizer: str = key("sgd", "sgd (torch's, with momentum/nesterov) or any timm.optim.list_optimizers() name")
    sam_rho: float = key(
        0.0, "sharpness-aware minimisation's radius, >= 0 (Foret et al. 2021; Tied-SAM); 0: off", Range(0, 1000)
    )
    sam_adaptive: bool = key(False, "adaptive SAM (Kwon et al. 2021): the perturbation scaled by |w| per weight")
    clip_grad: float | None = key(None, "clip gradients to this norm (timm's dispatch_clip_grad); null: off", POSITIVE)
    clip_mode: ClipMode = key("norm", "norm: global L2 norm; value: each element; agc: adaptive (timm)")
    ema: bool = key(False, "keep an EMA of the weights (timm's ModelEmaV3); evaluate, select and export it")
    ema_decay: float = key(0.9998, "the EMA's decay per update, in (0, 1)", Range(0, 1, low_open=True, high_open=True))

    @property
    def update_batch(self) -> int:
        """The images of one update: ``batch_size`` (global) times ``accum_steps``."""
        return self.batch_size * self.accum_steps


@dataclass(frozen=True)
class RunConfig:
    seed: int = key(
        0,
        "seed of the data split, the data order, the views and the weights",
        Range(0, 2**32, high_open=True, text="[0, 2**32)"),
    )
    amp: Amp = key("none", "mixed precision: bf16 (CPU or GPU) or fp16 (GPU, with a grad scaler)")
    channels_last: bool = key(False, "channels-last memory format")
    compile: bool = key(False, "torch.compile the model and the loss for training")
    eval_batch_size: int = key(500, "images per evaluation batch", whole(1, 2**20))
    eval_every: int = key(
        1,
        "evaluate the val and test sets every N epochs and after the last; selection sees only those epochs",
        POSITIVE,
    )
    log_interval: int = key(50, "updates between progress-bar refreshes", POSITIVE)
    tensorboard: bool = key(False, "also write TensorBoard scalars to <run>/tensorboard (needs tensorboard)")
    wandb: bool = key(False, "also log the scalars to Weights & Biases, in <run>/wandb (needs wandb; --log-wandb)")
    checkpoint_every_steps: int = key(
        0, "also write checkpoint-last.pt every N updates (0: at each epoch's end)", NON_NEGATIVE
    )
    checkpoint_keep: int = key(
        0, "also keep the last N epochs' end checkpoints as checkpoint-epochE.pt (0: none)", whole(0, 100000)
    )
    nonfinite: NonFiniteMode = key("stop", "what a NaN/Inf loss does: stop the run, or skip that update")
    dist_timeout: int = key(
        300,
        "seconds every process of a torchrun group waits for the others to join, and for each collective",
        whole(1, 86400),
    )


#: The sections of a config, in the order a saved config.yaml lists their keys.
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "views": ViewsConfig,
    "method": MethodConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class Config:
    """A resolved config: every key checked and every derived value filled (see :func:`.resolve`)."""

    name: str
    model: ModelConfig
    data: DataConfig
    views: ViewsConfig
    method: MethodConfig
    optim: OptimConfig
    run: RunConfig

    def as_flat(self) -> dict[str, Any]:
        """The flat form written to ``config.yaml`` and checkpoints: ``{"name": ..., "model": ..., ...}``."""
        flat: dict[str, Any] = {"name": self.name}
        for section in SECTIONS:
            part = getattr(self, section)
            for f in fields(part):
                flat[f.name] = _plain(getattr(part, f.name))
        return flat


def _plain(value: Any) -> Any:
    """Tuples as lists and mappings as dicts, as YAML and JSON write them."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


#: Every flat key -> the section that holds it.
KEYS: dict[str, str] = {f.name: section for section, cls in SECTIONS.items() for f in fields(cls)}


def default_of(f: Any) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


#: Every flat key whose value is a number (or a list of numbers) -> the range it must lie in.
DOMAINS: dict[str, Range] = {
    f.name: f.metadata["domain"] for cls in SECTIONS.values() for f in fields(cls) if f.metadata["domain"]
}

#: Every flat key with its default.
DEFAULTS: dict[str, Any] = {f.name: default_of(f) for cls in SECTIONS.values() for f in fields(cls)}


def key_help() -> list[tuple[str, str, str, Any, str]]:
    """``(section, key, type, default, help)`` of every key, in config.yaml order."""
    return [
        (section, f.name, str(f.type), default_of(f), f.metadata["help"])
        for section, cls in SECTIONS.items()
        for f in fields(cls)
    ]


#: Keys an earlier accord spelled otherwise: old name -> the key's name now. A run's saved config that holds an
#: old name is read under the new one (:func:`current_keys`); a config file or ``--set`` naming it is refused.
RENAMED_KEYS: dict[str, str] = {"views": "view_policies"}


def current_keys(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a run's ``config.yaml`` or a checkpoint's ``config``) with every key an earlier accord wrote
    under another name (:data:`RENAMED_KEYS`) under its name now; a key whose new name is also present stays
    as it is (and is refused as unknown)."""
    now = {old: new for old, new in RENAMED_KEYS.items() if old in saved and new not in saved}
    return {now.get(k, k): v for k, v in saved.items()}


def check_keys(layer: dict[str, Any], source: str) -> None:
    """Refuse a key that is not a config key, with its new name if it was renamed or the closest one as a hint."""
    for name in layer:
        if name in RENAMED_KEYS and name not in KEYS:
            raise ConfigError(f"{source}: config key {name!r} is now {RENAMED_KEYS[name]!r}")
        if name not in KEYS and name != "name":
            close = difflib.get_close_matches(str(name), list(KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: unknown config key {name!r}{hint}; valid keys: {', '.join(KEYS)}")


def describe(hint: Any) -> str:
    """A type as the user reads it: ``float``, ``int or null``, ``list of int``, ``one of a, b``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is tuple:
        return f"list of {describe(args[0])}"
    if origin is dict:
        return "mapping"
    return getattr(hint, "__name__", str(hint))


def format_keys(cfg: Config | None = None) -> str:
    """Every key with its type, default (or its value in ``cfg``) and description, grouped by section."""
    hints = {k: v for cls in SECTIONS.values() for k, v in typing.get_type_hints(cls).items()}
    values = cfg.as_flat() if cfg is not None else DEFAULTS
    lines, section_now = [], None
    for section, name, _, _, text in key_help():
        if section != section_now:
            lines.append(f"{'' if section_now is None else chr(10)}[{section}]")
            section_now = section
        value = _plain(values[name])
        lines.append(f"  {name}: {describe(hints[name])} = {value!r}\n      {text}")
    return "\n".join(lines) + "\n"
