"""Views: augmentation policies and the multi-view transform, dataset wrapper and collate."""

from .mixing import FeatureMix, MixedBatch, ViewMixer
from .multiview import MultiViewTransform, ViewDataset, build_multiview_transform, collate_views
from .policies import build_eval_transform, build_policy
from .tokens import Policy, parse_policy

__all__ = [
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
]
