"""``pip install -e .`` into an environment that already has another torch keeps that torch.

No torch is downloaded: the target environment gets *stand-in* distributions named ``torch`` and ``torchvision``
(metadata only) at the lowest versions pyproject.toml accepts, and sees the rest of accord's dependencies (timm,
numpy, ..., setuptools for the build) installed; pip runs offline (``--no-index``, no configuration). If the
resolver wanted another torch it would have to fetch one and fail, as it does for a pyproject that pins torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOW = {"torch": "2.3.0", "torchvision": "0.18.0"}  # in the declared ranges, unlike the environment's own
OWN = ("torch", "torchvision", "triton", "functorch", "torchgen", "nvidia", "cuda", "accord", "__editable__")


def write_stand_in(site: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    (info / "INSTALLER").write_text("stand-in\n")
    (info / "RECORD").write_text("")


def make_env(tmp: Path) -> Path:
    """A venv with stand-in torch/torchvision at LOW and, through a .pth, every other installed distribution."""
    env = tmp / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (site,) = env.glob("lib/python3*/site-packages")
    write_stand_in(site, "torch", LOW["torch"])
    write_stand_in(site, "torchvision", LOW["torchvision"], (f"torch=={LOW['torch']}",))
    others = tmp / "others"  # this interpreter's packages minus torch & co. and accord
    others.mkdir()
    source = Path(metadata.distribution("timm").locate_file(""))
    for entry in source.iterdir():
        if not entry.name.lower().startswith(OWN) and entry.suffix != ".pth":
            (others / entry.name).symlink_to(entry)
    (site / "others.pth").write_text(f"{others}\n")
    return env


def pip(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """This interpreter's pip acting on ``env``, offline and without any pip configuration or PIP_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    cmd = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "--no-index"]
    cmd += ["--no-build-isolation", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=clean, timeout=300)


def installed_version(env: Path, name: str) -> str:
    code = f"from importlib.metadata import version; print(version({name!r}))"
    out = subprocess.run([env / "bin" / "python", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def copy_project(dst: Path) -> Path:
    shutil.copytree(ROOT / "accord", dst / "accord", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dst / name)
    return dst


@pytest.mark.slow
def test_editable_install_keeps_the_environments_torch(tmp_path):
    project = copy_project(tmp_path / "project")  # pip's build writes egg-info next to pyproject.toml
    env = make_env(tmp_path)
    report = tmp_path / "report.json"
    plan = pip(env, "--dry-run", "--report", str(report), "-e", str(project), cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]] == ["accord"]

    done = pip(env, "-e", str(project), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed_version(env, "torch") == LOW["torch"]
    assert installed_version(env, "torchvision") == LOW["torchvision"]
    assert installed_version(env, "accord")

    # the control: with the former exact pins the same install needs another torch, which it cannot get offline
    pinned = copy_project(tmp_path / "pinned")
    text = (pinned / "pyproject.toml").read_text()
    text = re.sub(r'"torch>=[^"]*"', '"torch==2.14.1"', text)
    (pinned / "pyproject.toml").write_text(re.sub(r'"torchvision>=[^"]*"', '"torchvision==0.29.1"', text))
    refused = pip(env, "--dry-run", "-e", str(pinned), cwd=tmp_path)
    assert refused.returncode != 0 and "torch" in refused.stdout + refused.stderr
