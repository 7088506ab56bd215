"""Multistep milestones that follow the number of epochs.

accord's multistep schedule takes ``milestones`` as epochs (:func:`accord.engine.optim.create_scheduler`
decays the lr by ``gamma`` at the first update of each). Two ways to make them follow ``epochs``:

* :func:`milestones_from_fractions`: each milestone a fraction ``f`` in (0, 1) of training, at epoch
  ``floor(f * epochs + 0.5)`` (round half up).
* :func:`agmax_milestones`: the AgMax authors' rule (roatienza/agmax, ``classifier.py``
  ``assign_lr_scheduler``), a table on the epoch count: ``epochs <= 30``: 10/20/30; ``<= 60``:
  15/30/40; ``<= 120``: 30/60/80; above: 75/150/225. It is a table and not a set of fractions:
  30/60/80 is 1/3, 2/3, 8/9 of 90 epochs while 75/150/225 is 5/18, 10/18, 15/18 of 270.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def milestones_from_fractions(fractions: Sequence[float], epochs: int) -> list[int]:
    """Epochs of the milestones given as fractions of ``epochs``; ValueError unless each is in (0, 1)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    out = []
    for f in fractions:
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 < f < 1.0:
            raise ValueError(f"milestone fraction {f!r} is not in (0, 1); fractions are of the training epochs")
        out.append(math.floor(f * epochs + 0.5))
    if list(fractions) != sorted(fractions):
        raise ValueError(f"milestone fractions must increase, got {list(fractions)}")
    return out


def agmax_milestones(epochs: int) -> list[int]:
    """The AgMax authors' multistep milestones for ``epochs`` (see the module docstring)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if epochs <= 30:
        return [10, 20, 30]
    if epochs <= 60:
        return [15, 30, 40]
    if epochs <= 120:
        return [30, 60, 80]
    return [75, 150, 225]
