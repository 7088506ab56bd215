"""One training step for every path (``accord train``, timm's loop, ``accord bench``): model + loss, the compile
rule, DistributedDataParallel, the non-finite stop, the update in two parts and the loss terms it reports."""

from .finite import (
    Agreement,
    NonFiniteGuard,
    NonFiniteLossError,
    NonFiniteStateError,
    TorchAgreement,
    check_finite_means,
    check_finite_state,
    skip_if_nonfinite,
)
from .module import AMP_DTYPES, ViewStep, autocast, build_step, distribute, find_step
from .terms import TermMeans
from .update import apply_update, backward

__all__ = [
    "AMP_DTYPES",
    "Agreement",
    "NonFiniteGuard",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "TermMeans",
    "TorchAgreement",
    "ViewStep",
    "apply_update",
    "autocast",
    "backward",
    "build_step",
    "check_finite_means",
    "check_finite_state",
    "distribute",
    "find_step",
    "skip_if_nonfinite",
]
