"""docs/adding-a-method.md's example, run as the page writes it.

Its loss module passes ruff; registered under each MixUp/CutMix rule a loss may declare, the method trains one
step through ``accord train`` in every FashionMNIST-ResNet8 config ``accord configs`` lists for it (the
mixing ones included) and resolves in every other listed config; and ``accord.timm.create_task`` trains it
in a timm-style loop, mixed by ``LoopMixer``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import timm
import torch

import accord.config.files
from accord.cli import main
from accord.config import list_configs, load_config
from accord.losses import METHODS, MethodSpec
from accord.timm import LoopMixer, create_task

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "adding-a-method.md").read_text()
LOSS_MODULE = re.search(r"```python\n(# accord/losses/cosine\.py\n.*?)```", DOC, re.S).group(1)
FRAGMENT = re.search(r"```yaml\n(# accord/configs/methods/cosine\.yaml\n.*?)```", DOC, re.S).group(1)
SMALL = "FashionMNIST-ResNet8-"


def doc_loss() -> type[torch.nn.Module]:
    """The page's CosineAgreementLoss; its one relative import taken from accord's public names."""
    namespace: dict[str, Any] = {}
    source = LOSS_MODULE.replace("from ._views import", "from accord.losses import")
    exec(compile(source, "docs/adding-a-method.md", "exec"), namespace)
    return namespace["CosineAgreementLoss"]


@pytest.fixture(params=["each", "first"])
def cosine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MethodSpec:
    """The page's method registered with one mixing rule, and its YAML fragment among the built-in ones."""
    spec = MethodSpec("cosine", doc_loss(), "cosine agreement", views=2, mixing=request.param)
    monkeypatch.setitem(METHODS, "cosine", spec)
    configs = tmp_path / "configs"
    shutil.copytree(accord.config.files.CONFIG_DIR, configs)
    (configs / "methods" / "cosine.yaml").write_text(FRAGMENT)
    monkeypatch.setattr(accord.config.files, "CONFIG_DIR", configs)
    return spec


def test_the_loss_module_passes_ruff(tmp_path: Path) -> None:
    module = tmp_path / "cosine.py"
    module.write_text(LOSS_MODULE)
    ruff = [sys.executable, "-m", "ruff"]
    for command in (["check", "--config", str(ROOT / "pyproject.toml")], ["format", "--check", "--diff"]):
        done = subprocess.run([*ruff, *command, str(module)], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_registry_step_puts_the_import_with_the_others() -> None:
    """Appending an import at the end of registry.py fails ruff (E402); the page says to put it at the top."""
    assert "with the other loss imports, at the top" in DOC and "at the end of accord/losses/registry.py" not in DOC


@pytest.mark.slow
def test_every_listed_config_trains_one_step(cosine: MethodSpec, fmnist_dir: Path, tmp_path: Path, one_thread) -> None:
    names = [n for n in list_configs() if n.endswith("-cosine")]
    assert any("mixup" in n for n in names) and any("cutmix" in n for n in names)
    for name in names:
        assert load_config(name).method.method == "cosine"
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
    task = create_task("cosine", timm.create_model("cifar_resnet8", num_classes=10, in_chans=1), verbose=False)
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
