"""Where a run trained: what decides the float rounding of its numbers, recorded beside them.

Two runs of one config give the same bits only on the same versions of accord and its libraries, the same
processor vector path (torch's CPU capability) or GPU, the same number of threads and of processes. A run
records this in every checkpoint and in ``summary.json``, so that a number can be traced to where it came from
and a grid whose cells came from different places says so (``accord report``).
"""

from __future__ import annotations

import platform
from typing import Any

import timm
import torch
import torchvision

from .. import __version__

LIBRARIES = ("accord", "torch", "torchvision", "timm")


def describe_environment(device: torch.device, world_size: int) -> dict[str, Any]:
    """The environment of this process: library versions, Python, the processor's architecture and torch's
    vector path on it (or the GPU), intra-op threads and processes."""
    versions = (__version__, torch.__version__, torchvision.__version__, timm.__version__)
    # plain strings (torch's version is a str subclass that weights-only loading refuses)
    env: dict[str, Any] = {name: str(v) for name, v in zip(LIBRARIES, versions, strict=True)}
    env["python"] = platform.python_version()
    env["machine"] = platform.machine()
    env["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    env["threads"] = torch.get_num_threads()
    env["world_size"] = world_size
    return env


def environment_line(env: dict[str, Any]) -> str:
    """One line for a person: ``accord 0.1.0, torch 2.14.1, ..., CPU x86_64, vector path AVX512, 1 thread(s), ...``."""
    names = ", ".join(f"{name} {env.get(name, '?')}" for name in (*LIBRARIES, "python"))
    where = f"{env.get('gpu')} (CUDA {env.get('cuda')})" if env.get("gpu") else f"CPU {env.get('machine', '?')}"
    threads, processes = env.get("threads", "?"), env.get("world_size", "?")
    return (
        f"{names}, {where}, vector path {env.get('cpu_capability', '?')}, {threads} thread(s), {processes} process(es)"
    )


def environments_after_resume(earlier: list[dict[str, Any]], current: dict[str, Any]) -> list[dict[str, Any]]:
    """The environments a resumed run has trained in, in order: ``current`` added unless it is the last one."""
    return [*earlier, current] if not earlier or earlier[-1] != current else list(earlier)
