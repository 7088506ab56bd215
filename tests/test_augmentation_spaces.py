"""accord's copies of torchvision's augmentation spaces and AutoAugment policies equal the installed torchvision's.

accord states the tables itself (torchvision keeps them private); this test reads torchvision's private attributes,
so that a torchvision release that changes a table fails here, naming it, instead of silently changing the views.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from torchvision.transforms.v2 import _auto_augment as tv_auto

from accord.views.augmentation_spaces import (
    AUGMIX_SPACE,
    AUTOAUGMENT_POLICIES,
    AUTOAUGMENT_SPACE,
    RANDAUGMENT_SPACE,
    TRIVIALAUGMENT_SPACE,
)

SPACES = {
    "RandAugment": (RANDAUGMENT_SPACE, tv_auto.RandAugment),
    "TrivialAugmentWide": (TRIVIALAUGMENT_SPACE, tv_auto.TrivialAugmentWide),
    "AutoAugment": (AUTOAUGMENT_SPACE, tv_auto.AutoAugment),
    "AugMix": (AUGMIX_SPACE, tv_auto.AugMix),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_each_space_is_torchvisions(name: str) -> None:
    ours, transform = SPACES[name]
    theirs = transform._AUGMENTATION_SPACE
    assert list(ours) == list(theirs), f"{name}: operations or their order differ"
    for op, (magnitudes, signed) in ours.items():
        their_magnitudes, their_signed = theirs[op]
        assert signed == their_signed, f"{name}.{op}: signed"
        for bins, height, width in ((31, 32, 32), (10, 28, 28), (31, 224, 200), (2, 7, 9)):
            mine, reference = magnitudes(bins, height, width), their_magnitudes(bins, height, width)
            assert (mine is None) == (reference is None), f"{name}.{op}"
            if mine is not None:
                assert mine.dtype == reference.dtype and torch.equal(mine, reference), f"{name}.{op} at {bins} bins"


@pytest.mark.parametrize("policy", ["imagenet", "cifar10", "svhn"])
def test_autoaugment_policies_are_torchvisions(policy: str) -> None:
    theirs = tv_auto.AutoAugment(tv_auto.AutoAugmentPolicy[policy.upper()])._policies
    assert list(AUTOAUGMENT_POLICIES[policy]) == list(theirs)
    assert all(op in AUTOAUGMENT_SPACE for sub in theirs for op, _, _ in sub)


ALLOWED = {  # private by name, but the documented way to do the thing, and stable for years
    "torch.nn.modules.batchnorm._BatchNorm": "the base of BatchNorm1d/2d/3d, which torch's SyncBatchNorm subclasses",
}


def _private_uses(path: Path) -> list[str]:
    """``torch._x`` attributes and imports of a private torch/torchvision module or name in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("torch", "torchvision"):
            names = [*node.module.split("."), *(a.name for a in node.names)]
            allowed = [f"{node.module}.{a.name}" in ALLOWED for a in node.names]
            if any(map(_private, names)) and not all(allowed):
                found.append(f"{path}:{node.lineno} from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"{path}:{node.lineno} import {a.name}" for a in node.names if any(map(_private, a.name.split(".")))
            ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
            found += [f"{path}:{node.lineno} torch.{node.attr}"] if _private(node.attr) else []
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_accord_uses_no_private_torch_or_torchvision_api() -> None:
    """A private name may change in any release without a word; accord reads public API only."""
    root = Path(__file__).parent.parent / "accord"
    assert [use for path in sorted(root.rglob("*.py")) for use in _private_uses(path)] == []
    assert _private_uses(Path(__file__))  # the check sees this file's own private imports
