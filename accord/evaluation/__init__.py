"""Evaluation beyond top-1: expected calibration error (:mod:`.calibration`), common corruptions
(:mod:`.corruptions`) and the accuracy of a model or checkpoint under them (:mod:`.robustness`)."""

from .calibration import N_BINS, calibration_error_from_confidences, expected_calibration_error
from .corruptions import (
    CORRUPTION_NAMES,
    SEVERITIES,
    SEVERITY_PARAMS,
    blur_kernel_size,
    contrast,
    corrupt,
    gaussian_blur,
    gaussian_noise,
    jpeg_compression,
    parse_corruptions,
)
from .per_class import format_per_class, per_class_accuracy
from .robustness import (
    evaluate_checkpoint_robustness,
    evaluate_robustness,
    format_robustness,
    noise_generator,
    split_eval_transform,
)

__all__ = [
    "CORRUPTION_NAMES",
    "N_BINS",
    "SEVERITIES",
    "SEVERITY_PARAMS",
    "blur_kernel_size",
    "calibration_error_from_confidences",
    "contrast",
    "corrupt",
    "evaluate_checkpoint_robustness",
    "evaluate_robustness",
    "expected_calibration_error",
    "format_per_class",
    "format_robustness",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg_compression",
    "noise_generator",
    "parse_corruptions",
    "per_class_accuracy",
    "split_eval_transform",
]
