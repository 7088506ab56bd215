"""Models: any timm classifier, CIFAR-style ResNets and WRNs, and the multi-view wrapper."""

from . import cifar  # noqa: F401  (registers the CIFAR models with timm)
from .factory import create_model, resolve_model_name
from .multiview import BN_MODES, MultiViewModel, ViewOutput

__all__ = ["BN_MODES", "MultiViewModel", "ViewOutput", "create_model", "resolve_model_name"]
