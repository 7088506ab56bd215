"""Losses of the agreement methods and their baselines.

Every loss takes ``(logits, target, features=None)`` for a view-major batch (rows ``[j*B, (j+1)*B)``
are view ``j``) and returns a dict of scalar terms whose ``"loss"`` entry is the total to minimise.
"""

from .agmax import AgMaxLoss, QHead, agmax_hidden_units
from .agreement import AgreementLoss
from .classification import ViewCrossEntropy
from .factory import METHODS, create_loss, method_mixing, method_views
from .jsd import JsdLoss
from .tied import TiedAugmentLoss

__all__ = [
    "METHODS",
    "AgMaxLoss",
    "AgreementLoss",
    "JsdLoss",
    "QHead",
    "TiedAugmentLoss",
    "ViewCrossEntropy",
    "agmax_hidden_units",
    "create_loss",
    "method_mixing",
    "method_views",
]
