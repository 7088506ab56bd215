"""timm's ``train.py`` flags on ``accord train``, as aliases of the config keys that mean the same thing, and the
hint an unknown flag that names a config key gets (``use --set KEY=VALUE``).

Only flags whose meaning is accord's key's are here: ``--lr`` is timm's learning rate at the batch size
(accord's ``lr`` is per ``lr_batch`` images, so ``--lr`` sets both), ``--smoothing`` is the label smoothing of the
method's cross-entropy (its loss option), ``--mixup``/``--cutmix`` are timm's Beta alphas (positive turns the mixing
on). Everything else maps one flag to one key.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from .config import KEYS, ConfigError, load_config, parse_overrides
from .data import dataset_names
from .losses import method_spec

DEFAULT_CONFIG = "FashionMNIST-ResNet8-standard"  # what `accord train` and `accord compare` train without --config

#: (flags, config key, type, help) of the flags that set one key as they are.
DIRECT: tuple[tuple[tuple[str, ...], str, Any, str], ...] = (
    (("--model",), "model", str, "model (a timm name, or ResNet8/WRN28-10/...)"),
    (("-b", "--batch-size"), "batch_size", int, "images per update (the global batch under several processes)"),
    (("--grad-accum-steps",), "accum_steps", int, "micro-batches of batch_size per update"),
    (("--weight-decay",), "weight_decay", float, "weight decay"),
    (("--momentum",), "momentum", float, "SGD momentum"),
    (("--opt",), "optimizer", str, "optimizer: sgd or any timm.optim name"),
    (("--sched",), "schedule", str, "learning-rate schedule: cosine or multistep"),
    (("--warmup-epochs",), "warmup_epochs", int, "epochs of linear warmup"),
    (("--warmup-lr",), "warmup_lr", float, "learning rate at the start of warmup"),
    (("--clip-grad",), "clip_grad", float, "clip gradients to this norm"),
    (("--clip-mode",), "clip_mode", str, "norm, value or agc"),
    (("--drop",), "drop_rate", float, "dropout before the classifier"),
    (("--drop-path",), "drop_path_rate", float, "stochastic depth"),
    (("--model-ema-decay",), "ema_decay", float, "EMA decay per update"),
    (("--mixup-prob",), "mix_prob", float, "probability that a batch is mixed"),
    (("--mixup-switch-prob",), "switch_prob", float, "probability that a mixed batch uses CutMix"),
    (("-j", "--workers"), "workers", int, "data loader workers"),
    (("--img-size",), "image_size", int, "image side in pixels"),
    (("--pretrained-path",), "pretrained_file", str, "start from these weights (timm's .pth.tar included)"),
)


class _Given(argparse.Action):
    """Store the value and remember the flag was given (``--resume`` takes none of them)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True if self.nargs == 0 else values)
        namespace.timm_flags = [*getattr(namespace, "timm_flags", []), option_string]


def add_timm_flags(parser: argparse.ArgumentParser) -> None:
    """timm's flags on ``accord train`` (each an alias of ``--set KEY=VALUE``)."""
    group = parser.add_argument_group("timm's train.py flags (aliases of --set KEY=VALUE)")
    for flags, key, kind, text in DIRECT:
        group.add_argument(
            *flags, dest=f"timm_{key}", type=kind, action=_Given, metavar=key.upper(), help=f"{text} (--set {key}=)"
        )
    group.add_argument(
        "--lr", dest="timm_lr", type=float, action=_Given, metavar="LR", help="learning rate at the batch size"
    )
    group.add_argument(
        "--smoothing", dest="timm_smoothing", type=float, action=_Given, metavar="S", help="label smoothing"
    )
    group.add_argument(
        "--mixup", dest="timm_mixup", type=float, action=_Given, metavar="ALPHA", help="MixUp alpha (> 0: on)"
    )
    group.add_argument(
        "--cutmix", dest="timm_cutmix", type=float, action=_Given, metavar="ALPHA", help="CutMix alpha (> 0: on)"
    )
    group.add_argument("--model-ema", dest="timm_ema", nargs=0, action=_Given, help="keep an EMA (--set ema=true)")
    group.add_argument(
        "--channels-last", dest="timm_channels_last", nargs=0, action=_Given, help="(--set channels_last=true)"
    )
    group.add_argument("--log-wandb", dest="timm_wandb", nargs=0, action=_Given, help="log to W&B (--set wandb=true)")


def timm_overrides(args: argparse.Namespace, overrides: dict[str, Any], config: str) -> dict[str, Any]:
    """``overrides`` with the timm flags of ``args`` applied (a flag wins over ``--set`` of the same key)."""
    out = dict(overrides)
    for key in [k for _, k, _, _ in DIRECT] + ["ema", "channels_last", "wandb"]:
        if getattr(args, f"timm_{key}", None) is not None:
            out[key] = getattr(args, f"timm_{key}")
    mixing = {k: getattr(args, f"timm_{k}", None) for k in ("mixup", "cutmix")}
    if any(v is not None for v in mixing.values()):
        for kind, alpha in mixing.items():
            if alpha is not None and alpha < 0:
                raise ConfigError(f"--{kind} {alpha}: an alpha is positive (0: off)")
        on = [k for k, v in mixing.items() if v]
        out["mix"] = "-".join(on) or "none"
        out.update({f"{k}_alpha": v for k, v in mixing.items() if v})
    if getattr(args, "timm_lr", None) is not None or getattr(args, "timm_smoothing", None) is not None:
        out = _with_config_derived(args, out, config)
    return out


def _with_config_derived(args: argparse.Namespace, out: dict[str, Any], config: str) -> dict[str, Any]:
    """``--lr`` at the run's batch size and ``--smoothing`` as the method's loss option: both read the config."""
    cfg = load_config(config, out)
    if args.timm_lr is not None:
        out["lr"], out["lr_batch"] = args.timm_lr, cfg.optim.update_batch
    if args.timm_smoothing is not None:
        spec = method_spec(cfg.method.method)
        if (name := spec.smoothing_option()) is None:
            raise ConfigError(f"--smoothing: method {spec.name!r}'s loss takes no label smoothing")
        out["loss"] = {**out.get("loss", {}), name: args.timm_smoothing}
    return out


#: timm ``train.py`` flags that accord spells otherwise: the hint an unknown one gets.
TIMM_HINTS: dict[str, str] = {
    "--aug-splits": "accord's key is num_views: --set num_views=N",
    "--view-loss": "accord's key is method: --set method=NAME (see accord configs)",
    "--output": "did you mean --out DIR? (the run folder)",
    "--experiment": "did you mean --out DIR? (accord names the run folder by --out)",
    "--pretrained": "accord downloads nothing; accord's key is pretrained_file: --pretrained-path FILE",
    "--initial-checkpoint": "accord's key is pretrained_file: --pretrained-path FILE",
    "--input-size": "accord's key is image_size: --img-size N",
    "--num-classes": "accord reads the classes from the data set (--dataset, --data-dir)",
    "--val-split": "accord's key is val_source: --set val_source=folder (an image folder's val/) or split",
}


def unknown_flag_hints(message: str) -> list[str]:
    """The hints of an "unrecognized arguments" message: a config key's ``--set``, or timm's flag's accord name."""
    hints = []
    if message.startswith("unrecognized arguments:"):
        for flag in re.findall(r"(?:^|\s)(--?[A-Za-z][\w-]*)", message.split(":", 1)[1]):
            key = flag.lstrip("-").replace("-", "_")
            if flag in TIMM_HINTS:
                hints.append(f"{flag} is timm's: {TIMM_HINTS[flag]}")
            elif key in KEYS:
                hints.append(f"{flag} is config key {key!r}: use --set {key}=VALUE")
    return hints


class HintingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose "unrecognized arguments" error says ``use --set KEY=VALUE`` for a flag that
    names a config key (``--ema-decay 0.9`` -> ``--set ema_decay=0.9``) and accord's name for a timm flag it spells
    otherwise (:data:`TIMM_HINTS`), with the usage of the command that was given (``accord train``'s), not the
    top-level one."""

    def error(self, message: str) -> None:  # type: ignore[override]
        super().error("; ".join([message, *unknown_flag_hints(message)]))

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command_parser(parsed)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        given = getattr(parsed, "timm_flags", [])
        if getattr(parsed, "resume", None) and given:
            self._command_parser(parsed).error(f"--resume takes the run's own config; drop {' '.join(given)}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The sub-command's parser (``accord train``'s) when one was given, else this one."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):  # argparse has no public accessor
                return action.choices.get(getattr(parsed, action.dest, None) or "", self)
        return self


#: A seed must be in [0, SEED_LIMIT): torch, NumPy and the seeds derived from it need it to fit in 64 bits.
SEED_LIMIT = 2**32


def seed_value(text: str) -> int:
    """argparse ``type`` of a ``--seed``: an integer in [0, 2**32); anything else is argparse's one line."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is not in [0, 2**32)")
    return value


def train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config overrides of a training command's flags: ``--set``, the named options and timm's flags."""
    overrides = parse_overrides(args.set or [])
    for key in ("dataset", "data_dir", "epochs", "seed", "train_subset"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    return timm_overrides(args, overrides, getattr(args, "config", None) or DEFAULT_CONFIG)


def data_args(p: argparse.ArgumentParser) -> None:
    """``--dataset`` and ``--data-dir``, of every command that reads a data set."""
    p.add_argument("--dataset", help=f"a registered data set: {', '.join(dataset_names())}")
    p.add_argument("--data-dir", dest="data_dir", help="folder of the dataset's files")
