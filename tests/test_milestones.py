"""Tests for accord.config.milestones: fractions of training, and the AgMax authors' table."""

from __future__ import annotations

import pytest

from accord.config.milestones import agmax_milestones, milestones_from_fractions


def test_fractions_scale_with_the_epoch_count():
    assert milestones_from_fractions([1 / 3, 2 / 3, 8 / 9], 90) == [30, 60, 80]
    assert milestones_from_fractions([1 / 3, 2 / 3, 8 / 9], 9) == [3, 6, 8]
    assert milestones_from_fractions([0.5], 3) == [2]  # 1.5 rounds half up


def test_agmax_table_as_the_authors_classifier_py():
    # roatienza/agmax classifier.py assign_lr_scheduler
    assert agmax_milestones(90) == [30, 60, 80]
    assert agmax_milestones(270) == [75, 150, 225]
    assert agmax_milestones(120) == [30, 60, 80] and agmax_milestones(121) == [75, 150, 225]
    assert agmax_milestones(60) == [15, 30, 40] and agmax_milestones(30) == [10, 20, 30]
    assert agmax_milestones(270) != milestones_from_fractions([1 / 3, 2 / 3, 8 / 9], 270)  # a table, not fractions


@pytest.mark.parametrize("bad", [0, 1, 1.2, -0.1, True, "0.5"])
def test_fraction_outside_the_open_unit_interval_is_one_line(bad):
    with pytest.raises(ValueError) as info:
        milestones_from_fractions([0.3, bad], 90)
    assert f"milestone fraction {bad!r} is not in (0, 1)" in str(info.value) and "\n" not in str(info.value)


def test_fractions_must_increase_and_epochs_be_positive():
    with pytest.raises(ValueError, match="must increase"):
        milestones_from_fractions([0.6, 0.3], 90)
    with pytest.raises(ValueError, match="positive integer"):
        milestones_from_fractions([0.5], 0)
    with pytest.raises(ValueError, match="positive integer"):
        agmax_milestones(0)
