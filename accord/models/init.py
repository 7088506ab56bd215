"""Weight initialisation schemes, among them the AgMax authors' re-initialisation of AgMax runs.

The AgMax reference code (roatienza/agmax) re-draws every weight of an AgMax ImageNet model before
training (``classifier.py`` ``AgMaxClassifier._build_model``, ``models.py`` ``AgMaxNet.init_weights``,
``features/extractor.py`` ``init_weights``, ``features/resnet.py`` ``ResNet.init_weights``): every
``Conv2d`` and ``Linear`` weight ~ N(0, std^2) with std = 0.2 (``configs/constant.py``), their biases 0,
every BatchNorm weight 1 and bias 0, then the last BatchNorm of each residual block back to 0. It does
so only when a config turns on both ``init_backbone`` and ``init_extractor`` (the ResNet configs, not
the WideResNet ones); baselines keep their layers' PyTorch defaults.

Schemes (:func:`init_weights`):

* ``default``: leave the module as it was built (timm's own init for timm models).
* ``pytorch``: each ``Conv2d``/``Linear``/BatchNorm layer's own PyTorch ``reset_parameters`` (what the
  AgMax baselines use), then the model's zero-init of the last BatchNorm of each residual block.
* ``agmax``: ``normal_0.2`` followed by that zero-init of the last residual BatchNorm: the AgMax runs.
* ``normal_<std>``: weights ~ N(0, std^2), biases 0, BatchNorm weight 1 and bias 0; nothing else (what
  the AgMax ablations without a Q head get, whose ``init_weights`` stops after the model-wide draw).

"The last BatchNorm of each residual block" is whatever a block's ``zero_init_last()`` method zeroes
(timm's ResNet ``BasicBlock`` and ``Bottleneck`` have it), the authors' ``bn2``/``bn3``. Subclasses of
``Conv2d`` and ``Linear`` are included (the authors' code matched the exact classes; for their ResNets
the two are the same). Apply the scheme to the Q head as well: the authors re-draw it with the backbone.
"""

from __future__ import annotations

import math
import re

from torch import nn

AGMAX_STD = 0.2  # roatienza/agmax configs/constant.py agmax_weights_std
_NORMAL = re.compile(r"normal_(\d+(?:\.\d*)?(?:e-?\d+)?)")
_LAYERS = (nn.Conv2d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def parse_scheme(scheme: str) -> tuple[str, float | None]:
    """``"agmax"`` -> ``("agmax", 0.2)``, ``"normal_0.02"`` -> ``("normal", 0.02)``; ValueError if unknown."""
    if scheme in ("default", "pytorch"):
        return scheme, None
    if scheme == "agmax":
        return "agmax", AGMAX_STD
    match = _NORMAL.fullmatch(scheme) if isinstance(scheme, str) else None
    std = float(match.group(1)) if match else math.nan
    if not std > 0 or math.isinf(std):
        raise ValueError(
            f"unknown init scheme {scheme!r}; valid: default, pytorch, agmax (N(0, 0.2) as the AgMax authors), "
            "normal_<std> with std > 0 (e.g. normal_0.02)"
        )
    return "normal", std


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise ``module`` in place by ``scheme`` (see the module docstring); returns ``module``."""
    kind, std = parse_scheme(scheme)
    if kind == "default":
        return module
    for m in module.modules():
        if isinstance(m, _LAYERS):
            if kind == "pytorch":
                m.reset_parameters()
            else:
                assert std is not None  # parse_scheme gives a std for every kind but default and pytorch
                nn.init.normal_(m.weight, 0.0, std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        elif isinstance(m, _NORMS):
            if kind == "pytorch":
                m.reset_parameters()
            elif m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    if kind in ("pytorch", "agmax"):
        zero_init_last(module)
    return module


def zero_init_last(module: nn.Module) -> int:
    """Call ``zero_init_last()`` on every block of ``module`` that has it; returns how many did."""
    inits = [init for m in module.modules() if callable(init := getattr(m, "zero_init_last", None))]
    for init in inits:
        init()
    return len(inits)
