"""Top-1 of each class, named: which classes a model gets right and which it confuses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def per_class_accuracy(correct: Tensor, labels: Tensor, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Top-1 (%) and image count of every class, in label order; a class without test images has top-1 NaN."""
    correct, labels = correct.reshape(-1).double().cpu(), labels.reshape(-1).long().cpu()
    n = torch.bincount(labels, minlength=len(class_names))[: len(class_names)]
    hits = torch.bincount(labels, weights=correct, minlength=len(class_names))[: len(class_names)]
    return [
        {"class": name, "top1": 100.0 * float(hits[i]) / int(n[i]) if n[i] else float("nan"), "n": int(n[i])}
        for i, name in enumerate(class_names)
    ]


def format_per_class(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table of :func:`per_class_accuracy`: one row per class."""
    lines = ["| class | top-1 (%) | images |", "|---|---:|---:|"]
    for row in rows:
        top1 = "n/a" if math.isnan(row["top1"]) else f"{row['top1']:.2f}"
        lines.append(f"| {row['class']} | {top1} | {row['n']} |")
    return "\n".join(lines)
