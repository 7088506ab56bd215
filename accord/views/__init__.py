"""Views: augmentations (one registered class per policy token), policies, the multi-view transform, dataset
wrapper and collate."""

from .augmentation import REGISTRY, Augmentation, register, unregister
from .mixing import FeatureMix, MixedBatch, ViewMixer
from .multiview import MultiViewTransform, ViewDataset, build_multiview_transform, collate_views
from .policies import build_eval_transform, build_policy
from .tokens import Policy, parse_policy

__all__ = [
    "REGISTRY",
    "Augmentation",
    "FeatureMix",
    "MixedBatch",
    "ViewMixer",
    "MultiViewTransform",
    "Policy",
    "ViewDataset",
    "build_eval_transform",
    "build_multiview_transform",
    "build_policy",
    "collate_views",
    "parse_policy",
    "register",
    "unregister",
]
