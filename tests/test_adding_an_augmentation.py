"""docs/adding-an-augmentation.md, done as it says: its class, exactly as written there, registers a token that a
config accepts, the loader and the device make, and the registry's own tests pick up without a failure."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torchvision.transforms import v2

from accord.config import ConfigError, load_config
from accord.data import DataInfo
from accord.views import REGISTRY, build_policy, parse_policy, unregister
from accord.views.batched import BatchedViews

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "adding-an-augmentation.md"
RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)
MODULE = "my_augmentations"  # the name the doc imports it by


def doc_class_source() -> str:
    """The doc's first Python block: the whole augmentation."""
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)[0]


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user_code")
    (folder / f"{MODULE}.py").write_text(doc_class_source())
    return folder


@pytest.fixture(scope="module")
def grey(module_dir: Path) -> Iterator[ModuleType]:
    """The doc's module, imported (which registers its token); unregistered afterwards."""
    spec = importlib.util.spec_from_file_location(MODULE, module_dir / f"{MODULE}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    assert "grey" not in REGISTRY
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        unregister("grey")


def _greyed(images: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round().to(torch.uint8).expand_as(images)


def _normalised(images: torch.Tensor) -> torch.Tensor:
    return v2.Normalize(RGB.mean, RGB.std)(images.float() / 255)


def _images(n: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(n))


def test_the_token_parses_and_a_config_accepts_it(grey: ModuleType) -> None:
    random_grey: Any = grey.RandomGrey
    assert parse_policy("crop-flip-grey_0.5-cutout", 32).operations == (random_grey(p=0.5),)
    assert parse_policy("grey", 32).operations == (random_grey(p=0.2),)
    assert REGISTRY["grey"] is random_grey
    for bad in ("grey_2", "grey_x", "grey_1_2"):
        with pytest.raises(ValueError, match=re.escape(f"'{bad}'") + ".*" + re.escape("grey[_P]")):
            parse_policy(f"crop-{bad}", 32)
    for augment_on in ("loader", "device"):
        cfg = load_config("FashionMNIST-ResNet8-standard", {"policy": "crop-flip-grey_0.5", "augment_on": augment_on})
        assert cfg.views.view_policies == ("crop-flip-grey_0.5",)
    with pytest.raises(ConfigError, match="grey_9"):
        load_config("FashionMNIST-ResNet8-standard", {"policy": "crop-flip-grey_9"})


def test_the_loader_makes_it(grey: ModuleType) -> None:
    images = _images(4)
    for p, expected in (("1", _greyed(images)), ("0", images)):
        policy = build_policy(f"grey_{p}", RGB)
        made = torch.stack([policy(image) for image in images])
        assert torch.allclose(made, _normalised(expected), atol=1e-6)


def test_the_device_makes_it_per_image(grey: ModuleType) -> None:
    images = _images(64)
    out = BatchedViews(["grey_1", "grey_0", "grey_0.5"], RGB)(images)
    assert torch.allclose(out[:64], _normalised(_greyed(images)), atol=1e-6)
    assert torch.allclose(out[64:128], _normalised(images), atol=1e-6)
    made_grey = [torch.allclose(out[128 + i], _normalised(_greyed(images[i : i + 1]))[0], atol=1e-6) for i in range(64)]
    assert 10 < sum(made_grey) < 54  # each image drew its own: about half of them grey


def test_the_registry_tests_pick_it_up_and_pass(module_dir: Path) -> None:
    """The registry's tests and the loader's and device's views tests, run with the doc's module loaded first (as a
    pytest plugin): they pass, and every per-augmentation test ran the new one too."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", MODULE, "-p", "no:cacheprovider",
         "tests/test_augmentation_registry.py", "tests/test_views.py", "tests/test_batched_views.py",
         "-k", "not loader_workers and not training_with_views"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(module_dir)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    passed = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("PASSED")]
    per_augmentation = {test.removesuffix("[crop]") for test in passed if test.endswith("[crop]")}
    assert per_augmentation, run.stdout[-3000:]
    assert {test.removesuffix("[grey]") for test in passed if test.endswith("[grey]")} == per_augmentation
