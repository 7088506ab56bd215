"""Expected calibration error (Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017).

The top-1 confidences are split into ``n_bins`` equal-width bins ``B_b = ((b-1)/M, b/M]`` and

    ECE = sum_b |B_b| / n * |acc(B_b) - conf(B_b)|

(torchmetrics' ``multiclass_calibration_error(norm="l1")`` bins and weighs the same way).
"""

from __future__ import annotations

import torch
from torch import Tensor

N_BINS = 15


def calibration_error_from_confidences(confidences: Tensor, correct: Tensor, n_bins: int = N_BINS) -> float:
    """ECE (a fraction in [0, 1]) of top-1 ``confidences`` (N,) and their 0/1 ``correct`` flags (N,).

    Guo et al., ICML 2017, eq. 3: ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|`` over ``n_bins``
    equal-width bins ``((b-1)/M, b/M]`` (a confidence of exactly 0 counts in the first bin).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    if confidences.shape != correct.shape or confidences.dim() != 1:
        raise ValueError(f"expected two (N,) tensors, got {tuple(confidences.shape)} and {tuple(correct.shape)}")
    n = confidences.numel()
    if n == 0:
        return float("nan")
    conf = confidences.detach().double().cpu()
    hits = correct.detach().double().cpu()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    index = (torch.bucketize(conf, edges) - 1).clamp(0, n_bins - 1)  # bucketize: edges[i-1] < x <= edges[i]
    conf_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, conf)
    hit_sum = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, index, hits)
    return float((conf_sum - hit_sum).abs().sum() / n)  # |B|/n * |acc - conf| = |sum hits - sum conf| / n


def expected_calibration_error(probs: Tensor, labels: Tensor, n_bins: int = N_BINS) -> float:
    """Expected calibration error of class probabilities ``probs`` (N, K) against ``labels`` (N,),
    as a fraction in [0, 1] (multiply by 100 for percent).

    Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017: with ``conf_i = max_k p_ik`` and
    equal-width confidence bins ``B_b``, ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``.
    """
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"expected probs (N, K) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}")
    confidences, predictions = probs.max(dim=1)
    return calibration_error_from_confidences(confidences, predictions == labels, n_bins)
