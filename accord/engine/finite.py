"""The weight and buffer check before a checkpoint is written, by its engine name: it lives in
:mod:`accord.step.finite` with every other non-finite check of training."""

from ..step.finite import NonFiniteStateError, check_finite_state, nonfinite_tensors

__all__ = ["NonFiniteStateError", "check_finite_state", "nonfinite_tensors"]
