"""The part of timm's model interface accord calls, as a type: ``nn.Module`` declares none of it."""

from __future__ import annotations

from typing import Protocol, cast

from torch import Tensor, nn


class TimmClassifier(Protocol):
    """A timm classifier: features, head and the classifier layer (every ``timm.create_model`` model has them)."""

    def forward_features(self, x: Tensor) -> Tensor: ...

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor: ...

    def get_classifier(self) -> nn.Module: ...


def timm_interface(model: nn.Module) -> TimmClassifier:
    """``model`` typed as a timm classifier (no check: a model without the methods fails where they are called)."""
    return cast(TimmClassifier, model)
