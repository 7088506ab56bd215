"""A report compares like with like: the runs it sets side by side differ in their cell and seed, nothing else.

A run folder is ``<config>[@Kx]/seed<k>``. Its ``config.yaml`` differs from its cell's built-in config
(:func:`accord.config.load_config` of ``<config>``) by what the grid command set (``--epochs``, ``--set``,
``--train-subset``...) and by its seed: that difference, without the seed and with ``epochs`` divided by the
cell's factor ``K``, is the run's *setting*. Every run of a model must have the same setting, except for the
keys a grid set for one method only (``--set NAME:loss.weight=8``, recorded in ``grid.json``), which must agree
within that method's runs. A seed folder's name, its summary's seed and its config's seed must agree (a copied
``seed0`` renamed ``seed7`` would count one run twice). Runs without a ``config.yaml`` are not accord's and are
compared on their summary alone.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .engine.runfolder import RunFolder
from .errors import UserError

SHOWN = 3  # differing keys named in the one-line refusal


def run_setting(run: Path, saved: dict[str, Any]) -> dict[str, Any]:
    """The keys in which ``saved`` (a run's ``config.yaml``) differs from its cell's built-in config trained for
    as many epochs, with their values (never ``seed`` or ``name``), and ``epochs`` per unit of the cell's
    ``@Kx`` factor (values derived from the epochs, such as milestones from fractions, follow them)."""
    from .config import DEFAULTS

    config, _, factor = run.parent.name.partition("@")
    have = {**DEFAULTS, **saved}
    epochs: Any = have.get("epochs")
    valid = isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0
    built_in = _built_in(config, epochs if valid else None)
    have = as_resolved_method(have, built_in)
    setting = {k: have.get(k) for k in sorted(set(have) | set(built_in)) if have.get(k) != built_in.get(k)}
    setting.pop("name", None)
    setting.pop("seed", None)
    if valid and factor[:-1].isdigit():
        setting["epochs"] = epochs / int(factor[:-1])
    else:
        setting["epochs"] = epochs
    return setting


def as_resolved_method(have: dict[str, Any], built_in: dict[str, Any]) -> dict[str, Any]:
    """A saved config's method as resolution states it today: its loss options completed with the loss's defaults
    (a run saved when a fragment stated fewer), and named as the cell's method when both build the same loss on as
    many views (a two-view CE run saved as the baseline's method with ``num_views: 2``)."""
    from .losses import METHODS

    spec = METHODS.get(have.get("method"))  # type: ignore[arg-type]
    if spec is None or not isinstance(have.get("loss"), dict):
        return have
    have = {**have, "loss": {**spec.option_defaults(), **have["loss"]}}
    cell = METHODS.get(built_in.get("method"))  # type: ignore[arg-type]
    same_loss = cell is not None and (cell.loss, dict(cell.fixed)) == (spec.loss, dict(spec.fixed))
    if same_loss and cell is not spec and have.get("num_views") == built_in.get("num_views"):
        have["method"] = built_in["method"]
    return have


@functools.cache
def _built_in(config: str, epochs: int | None) -> dict[str, Any]:
    from .config import load_config

    return load_config(config, None if epochs is None else {"epochs": epochs}).as_flat()


def _saved_config(path: Path) -> dict[str, Any]:
    from .config import current_keys, parse_yaml

    try:
        saved = parse_yaml(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"{path}: not a run's config ({' '.join(str(e).split())})") from None
    if not isinstance(saved, dict):
        raise UserError(f"{path}: not a run's config (not a mapping of keys to values)")
    return current_keys(saved)  # a run saved before a key was renamed compares as one saved now


def check_seed_folder(run: Path, summary_seed: int, saved: dict[str, Any] | None) -> None:
    """Refuse a seed folder whose name, summary seed and config seed do not all say the same seed."""
    named = run.name.removeprefix("seed")
    seeds = {summary_seed} | ({saved.get("seed")} if saved is not None else set())
    if not named.isdigit() or seeds != {int(named)}:
        said = f"its summary says seed {summary_seed}" + (
            f", its {RunFolder.CONFIG} seed {saved.get('seed')!r}" if saved else ""
        )
        raise UserError(
            f"{run}: a seed folder named {run.name!r} but {said}; a copied or renamed run would count twice - "
            "move it out of the grid folder"
        )


def _differ(a: dict[str, Any], b: dict[str, Any], keys: Iterable[str] | None = None) -> list[str]:
    names = set(a) | set(b) if keys is None else set(keys)
    return sorted(k for k in names if a.get(k) != b.get(k))


def check_like_with_like(root: Path, runs: list[tuple[Path, str, str, int]], per_method: dict[str, Any]) -> None:
    """Refuse (one line naming two runs and the keys) runs of one model whose settings differ in more than the
    seed, and seed folders that disagree with their seed. ``runs``: (run folder, model, method, summary seed);
    ``per_method``: the keys a grid set for one method only, by method."""
    per_method = per_method if isinstance(per_method, dict) else {}  # a grid.json edited by hand
    first: dict[str, tuple[Path, dict[str, Any], set[str]]] = {}  # per model: a run, its setting, its own keys
    by_method: dict[tuple[str, str], tuple[Path, dict[str, Any]]] = {}
    for run, model, method, seed in runs:
        config = RunFolder(run).config
        saved = _saved_config(config) if config.is_file() else None
        check_seed_folder(run, seed, saved)
        if saved is None:
            continue
        setting = run_setting(run, saved)
        other, other_setting = by_method.setdefault((model, method), (run, setting))
        if differ := _differ(setting, other_setting):
            _refuse(root, run, setting, other, other_setting, differ)
        own = set(per_method.get(method.partition("@")[0]) or {})
        other, other_setting, other_own = first.setdefault(model, (run, setting, own))
        shared = (set(setting) | set(other_setting)) - own - other_own
        if differ := _differ(setting, other_setting, shared):
            _refuse(root, run, setting, other, other_setting, differ)


def _refuse(root: Path, run: Path, here: dict, other: Path, there: dict, keys: list[str]) -> None:
    shown = "; ".join(f"{k}: {there.get(k, 'built-in')!r} vs {here.get(k, 'built-in')!r}" for k in keys[:SHOWN])
    more = f" (and {len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    raise UserError(
        f"{root}: {other.relative_to(root)} and {run.relative_to(root)} were trained with other settings "
        f"({shown}{more}); a report compares runs that differ only in cell and seed - report them from separate folders"
    )
