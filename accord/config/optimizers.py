"""The optimizer names a config may give: torch's SGD and every optimizer timm's registry knows."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from timm.optim import get_optimizer_class, list_optimizers


@functools.cache
def optimizer_names() -> tuple[str, ...]:
    """The valid ``optimizer`` values: every name ``timm.optim.list_optimizers()`` knows (``sgd`` among them)."""
    return tuple(sorted({"sgd", *(n for n in list_optimizers() if isinstance(n, str))}))  # names, not descriptions


def optimizer_class(name: str) -> Callable[..., torch.optim.Optimizer]:
    """The class ``name`` builds; raises (``AssertionError``/``ImportError``) where timm cannot build it here
    (bitsandbytes and APEX optimizers need CUDA and their package)."""
    return torch.optim.SGD if name == "sgd" else get_optimizer_class(name)
