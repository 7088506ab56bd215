"""docs/adding-a-method.md, followed to the letter on a copy of accord, breaks no test.

The page's three steps are applied to a copy of the package: its loss module is written to
``accord/losses/cosine.py``, its two registry lines go where it says (the import with the others at the top,
the entry in the tuple of built-in methods) and its YAML fragment to ``accord/configs/methods/``. The copy
passes ruff, and the test files that read the registry pass on it, with the new method among their cases.
Outside accord, the page's method trains in every config ``accord configs`` lists for it and in a timm loop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from method_doc import FRAGMENT, LOSS_MODULE, NAME, REGISTRY_LINES, ROOT, doc_loss, registry_entry

import accord.config.files
from accord.cli import main
from accord.config import list_configs, load_config
from accord.losses import METHODS, MethodSpec
from accord.timm_loop import LoopMixer, create_task

#: The test files whose cases come from the registry (or that a new method could break): run on the copy.
REGISTRY_TESTS = (
    "tests/test_every_method.py",
    "tests/test_method_facts.py",
    "tests/test_method_registry.py",
    "tests/test_losses.py",
    "tests/test_configs_listing.py",
    "tests/test_config_snapshot.py",
    "tests/test_config_notes.py",
    "tests/test_config_domains.py",
    "tests/test_report_saved_methods.py",
)
SMALL = "FashionMNIST-ResNet8-"


def follow_the_page(root: Path) -> Path:
    """A copy of accord (package, tests, pyproject, the page) under ``root`` with the page's method added."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("accord", "tests"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "adding-a-method.md", root / "docs" / "adding-a-method.md")
    losses = root / "accord" / "losses"
    (losses / "cosine.py").write_text(LOSS_MODULE)
    lines = (losses / "registry.py").read_text().splitlines()
    line = REGISTRY_LINES.splitlines()[0]  # with the other loss imports, at the top, by module name
    imports = [i for i, text in enumerate(lines) if text.startswith("from .") and not text.startswith("from ..")]
    lines.insert(next((i for i in imports if lines[i] > line), imports[-1] + 1), line)
    tuple_end = max(i for i, line in enumerate(lines) if line.startswith("):"))
    lines.insert(tuple_end, f"    {registry_entry()},")  # in the tuple of built-in methods
    (losses / "registry.py").write_text("\n".join(lines) + "\n")
    (root / "accord" / "configs" / "methods" / f"{NAME}.yaml").write_text(FRAGMENT)
    return root


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return follow_the_page(tmp_path_factory.mktemp("added"))


def test_the_added_code_passes_ruff(copy: Path) -> None:
    added = [str(copy / "accord" / "losses" / name) for name in ("cosine.py", "registry.py")]
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--config", str(ROOT / "pyproject.toml")], ["format", "--check", "--diff"]):
        done = subprocess.run([*ruff, *command, *added], capture_output=True, text=True, cwd=copy, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_registry_tests_pass_with_the_added_method(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    args = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-m", "not slow and not exhaustive"]
    done = subprocess.run([*args, *REGISTRY_TESTS], capture_output=True, text=True, cwd=copy, env=env, timeout=1200)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert f"test_one_training_step_runs_mixed_and_unmixed[{NAME}]" in done.stdout  # the copy's registry was read
    assert f"test_a_method_fragment_states_only_what_differs_from_the_loss[{NAME}]" in done.stdout


@pytest.fixture(params=["each", "first"])
def cosine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MethodSpec:
    """The page's method registered with one mixing rule, and its YAML fragment among the built-in ones."""
    spec = MethodSpec(NAME, doc_loss(), views=2, mixing=request.param)
    monkeypatch.setitem(METHODS, NAME, spec)
    configs = tmp_path / "configs"
    shutil.copytree(accord.config.files.CONFIG_DIR, configs)
    (configs / "methods" / f"{NAME}.yaml").write_text(FRAGMENT)
    monkeypatch.setattr(accord.config.files, "CONFIG_DIR", configs)
    return spec


@pytest.mark.slow
def test_every_listed_config_trains_one_step(cosine: MethodSpec, fmnist_dir: Path, tmp_path: Path, one_thread) -> None:
    names = [n for n in list_configs() if n.endswith(f"-{NAME}")]
    assert any("mixup" in n for n in names) and any("cutmix" in n for n in names)
    for name in names:
        assert load_config(name).method.method == NAME
    small = [n for n in names if n.startswith(SMALL)]
    assert len(small) == len({p.stem for p in (accord.config.files.CONFIG_DIR / "augs").glob("*.yaml")})
    sets = ["epochs=1", "train_subset=32", "batch_size=32", "lr_batch=32", "workers=0", "eval_batch_size=100",
            "val_fraction=0.1", "mix_prob=1.0"]  # fmt: skip
    for name in small:
        out = tmp_path / name
        args = ["--config", name, "--data-dir", str(fmnist_dir), *[f"--set={s}" for s in sets], "--out", str(out)]
        assert main(["train", *args]) == 0, name
        assert "cosine" in (out / "metrics.jsonl").read_text(), name


def test_create_task_trains_it_in_a_timm_loop(cosine: MethodSpec, one_thread) -> None:
    torch.manual_seed(0)
    task = create_task(NAME, timm.create_model("cifar_resnet8", num_classes=10, in_chans=1), verbose=False)
    mixer = LoopMixer(task, mixup_alpha=0.8, cutmix_alpha=1.0, seed=0)
    optimizer = torch.optim.SGD(task.get_trainable_module().parameters(), lr=0.1)
    images, labels = torch.rand(16, 1, 28, 28), torch.arange(8) % 10
    task.train()
    for mixed in (False, True, False, True):  # timm's loop: mixup_fn (here LoopMixer) right before the task
        batch, target = mixer(images, labels.repeat(2)) if mixed else (images, labels.repeat(2))
        result = task(batch, target)
        assert {"loss", "ce", "cosine"} <= set(result) and torch.isfinite(result["loss"])
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
