"""accord's options in timm's ``train.py``: one call adds them to its parser and checks them with timm's own before
any set-up; :func:`task_options` turns the parsed arguments into :func:`~accord.timm_loop.create_task`'s keywords.

timm's ``--smoothing`` defaults to 0.1 for its own losses. A view method keeps its loss's own smoothing (none for the
papers' losses) unless the user sets one, on the command line or in train.py's ``--config`` file: the parser
notes that in ``args.view_smoothing`` and leaves ``args.smoothing`` as timm has it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import yaml

from ..losses import METHODS, method_spec
from ..losses.mixing_rule import check_mixing
from ..models.multiview import BN_MODES
from .dataset import VIEW_PIPELINES, pipelines_problem

GIVEN = "view_smoothing"  # the --smoothing the user set (command line or train.py's --config file), else None


class _NoteGiven(argparse._StoreAction):
    """timm's ``--smoothing``, which also notes that the user set it."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: Any = None) -> None:
        super().__call__(parser, namespace, values, option_string)
        setattr(namespace, GIVEN, values)


def add_view_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--view-loss METHOD``, ``--view-bn MODE`` and ``--view-option KEY=VALUE`` to timm's ``parser`` and check
    them when it parses (a bad combination is one ``parser.error`` line, before any set-up)."""
    group = parser.add_argument_group("accord view methods")
    group.add_argument("--view-loss", default=None, choices=list(METHODS), metavar="METHOD",
                       help=f"accord loss on the --aug-splits views: {', '.join(METHODS)}")  # fmt: skip
    group.add_argument("--view-bn", default=None, choices=list(BN_MODES),
                       help="how BatchNorm sees the views (default: the method's authors', MethodSpec.bn)")  # fmt: skip
    group.add_argument("--view-pipelines", default="same", choices=list(VIEW_PIPELINES),
                       help="same: every view timm's pipeline; weak-first: view 1 its crop and flip alone")  # fmt: skip
    group.add_argument("--view-option", default=[], action="append", metavar="KEY=VALUE",
                       help="a loss option of the method, e.g. dl_weight=2 (repeatable)")  # fmt: skip
    for action in parser._actions:  # argparse keeps no public list of its actions
        if action.dest == "smoothing" and type(action) is argparse._StoreAction:
            action.__class__ = _NoteGiven
    parser.set_defaults(**{GIVEN: None})
    parse = parser.parse_known_args

    def parse_checked(args: Sequence[str] | None = None, namespace: Any = None) -> tuple[Any, list[str]]:
        parsed, rest = parse(args, namespace)
        if getattr(parsed, GIVEN, None) is None and "smoothing" in parser._defaults:  # train.py's --config set it
            setattr(parsed, GIVEN, parsed.smoothing)
        if (problem := view_problem(parsed)) is not None:
            parser.error(problem)
        return parsed, rest

    parser.parse_known_args = parse_checked  # type: ignore[method-assign, assignment]  # parse_args calls it


def view_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the parsed view arguments, in one line (``None``: nothing)."""
    method = getattr(args, "view_loss", None)
    if method is None:
        given = args.view_bn or args.view_option or getattr(args, "view_pipelines", "same") != "same"
        return "--view-bn, --view-pipelines and --view-option need --view-loss" if given else None
    if getattr(args, "jsd_loss", False):
        return "--view-loss and --jsd-loss both choose the loss: drop --jsd-loss (--view-loss names AugMix's JSD too)"
    spec = method_spec(method)
    splits = getattr(args, "aug_splits", 0)
    if spec.views is not None and splits != spec.views:
        return f"--view-loss {method} takes {spec.views} views per image: set --aug-splits {spec.views} (got {splits})"
    if (problem := pipelines_problem(getattr(args, "view_pipelines", "same"), method, spec.clean_first)) is not None:
        return problem
    mixing = getattr(args, "mixup", 0) > 0 or getattr(args, "cutmix", 0) > 0
    try:
        if mixing:
            check_mixing(method, "drop --mixup/--cutmix")
        spec.check_options(loss_options(args.view_option))
    except ValueError as e:
        return str(e)
    return None


def loss_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["dl_weight=2", "similarity=l1"]`` as ``{"dl_weight": 2, "similarity": "l1"}`` (values read as YAML)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--view-option {pair!r}: expected KEY=VALUE, e.g. dl_weight=2")
        options[key.strip()] = yaml.safe_load(value)
    return options


def task_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`~accord.timm_loop.create_task`'s keywords from timm's parsed arguments: the views (``--aug-splits``), the
    smoothing only if the user set it, the BatchNorm mode, the log interval and the loss options."""
    return {
        "num_views": args.aug_splits or None,
        "smoothing": getattr(args, GIVEN, None),
        "bn_mode": getattr(args, "view_bn", None),
        "log_interval": getattr(args, "log_interval", None),
        **loss_options(getattr(args, "view_option", [])),
    }
