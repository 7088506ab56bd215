"""Losses of the agreement methods and their baselines, and the registry of methods.

Every loss takes ``(logits, target, features=None)`` for a view-major batch (rows ``[j*B, (j+1)*B)``
are view ``j``) and returns a dict of scalar terms whose ``"loss"`` entry is the total to minimise.
"""

from ._views import expand_target, split_views
from .agmax import AgMaxLoss, QHead, agmax_hidden_units
from .agreement import AgreementLoss
from .classification import LabelSmoothingCrossEntropy, ViewCrossEntropy
from .jsd import JsdLoss
from .registry import (
    METHODS,
    MethodSpec,
    baseline_method,
    create_loss,
    featured_methods,
    method_of_loss,
    method_spec,
    register,
)
from .tied import TiedAugmentLoss

__all__ = [
    "METHODS",
    "AgMaxLoss",
    "AgreementLoss",
    "JsdLoss",
    "LabelSmoothingCrossEntropy",
    "MethodSpec",
    "QHead",
    "TiedAugmentLoss",
    "ViewCrossEntropy",
    "agmax_hidden_units",
    "baseline_method",
    "create_loss",
    "expand_target",
    "featured_methods",
    "method_of_loss",
    "method_spec",
    "register",
    "split_views",
]
