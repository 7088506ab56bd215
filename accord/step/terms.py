"""The loss terms a step reports, as running means: what a loop without accord's own logging shows and writes."""

from __future__ import annotations

from torch import Tensor


class TermMeans:
    """Running sums of every loss term (kept on the device: no host sync per step), read as means."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.steps = 0

    def add(self, terms: dict[str, Tensor]) -> None:
        for name, value in terms.items():
            value = value.detach().float().reshape(())
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.steps += 1

    def means(self) -> dict[str, float]:
        """Each term's mean over the steps added (one host read)."""
        return {name: float(total) / max(self.steps, 1) for name, total in self.sums.items()}

    def reset(self) -> None:
        self.sums, self.steps = {}, 0
