"""A wrapper that runs a timm classifier on a view-major batch and exposes its pooled features."""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
from timm.layers import convert_splitbn_model
from torch import Tensor, nn

from .interface import timm_interface

BnMode = Literal["concat", "split", "separate"]
BN_MODES: tuple[str, ...] = get_args(BnMode)


class ViewOutput(NamedTuple):
    """Training output: logits ``(V*B, C)`` and pooled pre-classifier features ``(V*B, D)``."""

    logits: Tensor
    features: Tensor


class MultiViewModel(nn.Module):
    """Run a timm-interface classifier on all views of a batch; features and logits in training.

    The wrapped model keeps timm's own layout and key names (``self.model``), so its state dict loads
    into ``timm.create_model`` unchanged. Features are ``forward_head(x, pre_logits=True)``: after the
    final norm/activation and global pooling, just before the classifier.

    Args:
        model: a timm model (or one with ``forward_features``, ``forward_head`` and ``get_classifier``).
        num_views: number of views ``V`` in each training batch.
        bn_mode: how BatchNorm sees the views in training: ``concat`` (one pass over all ``V*B`` images,
            AgMax's default), ``split`` (timm's split BatchNorm: view ``j > 0`` uses auxiliary BN layers;
            evaluation uses the main ones) or ``separate`` (one forward pass per view).
    """

    def __init__(self, model: nn.Module, num_views: int = 1, bn_mode: BnMode = "concat") -> None:
        super().__init__()
        if num_views < 1:
            raise ValueError(f"num_views must be at least 1, got {num_views}")
        if bn_mode not in BN_MODES:
            raise ValueError(f"unknown bn mode {bn_mode!r}; valid: {', '.join(BN_MODES)}")
        if bn_mode == "split" and num_views < 2:
            raise ValueError("split BatchNorm needs at least 2 views")
        self.num_views = num_views
        self.bn_mode = bn_mode
        self.model = convert_splitbn_model(model, num_splits=num_views) if bn_mode == "split" else model

    def features(self, x: Tensor) -> Tensor:
        model = timm_interface(self.model)
        return model.forward_head(model.forward_features(x), pre_logits=True)

    def forward(self, x: Tensor) -> ViewOutput | Tensor:
        if not self.training:
            return self.model(x)
        if self.bn_mode == "separate" and self.num_views > 1:
            features = torch.cat([self.features(v) for v in x.chunk(self.num_views)])
        else:
            features = self.features(x)
        return ViewOutput(timm_interface(self.model).get_classifier()(features), features)
