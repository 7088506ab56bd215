"""Tests for accord.data.subsets: k images per class, seeded, and the error for a class too small."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import Subset

from accord.data.datasets import TensorImageDataset
from accord.data.subsets import class_balanced_indices, dataset_targets

# 3 classes: class 0 has 6 images, class 1 has 4, class 2 has 5
TARGETS = [0, 1, 2, 0, 0, 1, 2, 2, 0, 1, 0, 2, 1, 2, 0]


def test_k_per_class_sorted_and_from_the_right_classes():
    keep = class_balanced_indices(TARGETS, 3, seed=0)
    assert keep == sorted(keep) and len(set(keep)) == 9
    assert Counter(TARGETS[i] for i in keep) == {0: 3, 1: 3, 2: 3}


def test_seeded_same_seed_same_subset_other_seed_other_subset():
    assert class_balanced_indices(TARGETS, 2, seed=7) == class_balanced_indices(TARGETS, 2, seed=7)
    draws = {tuple(class_balanced_indices(TARGETS, 2, seed=s)) for s in range(10)}
    assert len(draws) > 1


def test_whole_smallest_class_is_allowed():
    keep = class_balanced_indices(TARGETS, 4, seed=1)
    assert [i for i in keep if TARGETS[i] == 1] == [1, 5, 9, 12]


def test_among_restricts_the_candidates():
    among = [0, 1, 2, 3, 5, 6, 7, 9, 10]  # class 0: 0, 3, 10; class 1: 1, 5, 9; class 2: 2, 6, 7
    keep = class_balanced_indices(TARGETS, 2, seed=0, among=among)
    assert set(keep) <= set(among) and Counter(TARGETS[i] for i in keep) == {0: 2, 1: 2, 2: 2}


def test_larger_than_the_smallest_class_names_it_in_one_line():
    with pytest.raises(ValueError) as info:
        class_balanced_indices(TARGETS, 5, seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert "train_subset_per_class 5 is larger than class 1, which has 4 training images" in message
    with pytest.raises(ValueError, match="class 'dog', which has 4"):
        class_balanced_indices(TARGETS, 5, seed=0, class_names=["cat", "dog", "eel"])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_per_class_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        class_balanced_indices(TARGETS, bad, seed=0)


def test_targets_from_datasets_and_subsets_without_loading_images():
    data = TensorImageDataset(torch.zeros(len(TARGETS), 1, 2, 2, dtype=torch.uint8), torch.tensor(TARGETS))
    assert dataset_targets(data) == TARGETS
    assert dataset_targets(Subset(data, [2, 0, 5])) == [2, 0, 1]
    with pytest.raises(TypeError, match="no `targets`"):
        dataset_targets(torch.utils.data.TensorDataset(torch.zeros(2)))
