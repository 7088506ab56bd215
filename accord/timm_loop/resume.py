"""What a timm checkpoint's ``task_state`` holds for a view method, and the refusal of one from another method.

timm's ``resume_task_checkpoint`` loads the model, then the task's state, then the optimizer. A checkpoint of another
method would fail there with raw torch errors (AgMax's Q head in a Tied-Augment loss, an optimizer whose parameter
groups differ), or, worse, load without its loss's state and train a fresh Q head without a word (a Tied-Augment
checkpoint resumed as AgMax, ``--no-resume-opt`` included). The method's name travels in ``task_state`` and is
checked first, in one line.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def method_state(method: str, criterion: nn.Module) -> dict[str, Any]:
    """``{"method": name, "criterion": the loss's state}`` (the second only when the loss has state)."""
    state = criterion.state_dict()
    return {"method": method, **({"criterion": state} if state else {})}


def check_task_state(method: str, criterion: nn.Module, state: dict[str, Any] | None) -> None:
    """Raise ``ValueError`` in one line unless ``state`` is ``method``'s own (its name, and its loss's state keys)."""
    state = state or {}
    saved = state.get("method")
    if saved is not None and saved != method:
        raise ValueError(
            f"the checkpoint was trained with --view-loss {saved}, this run has --view-loss {method}: resume it with "
            f"--view-loss {saved}, or start {method} from its weights alone with --initial-checkpoint"
        )
    own, held = set(criterion.state_dict()), set(state.get("criterion", {}))
    if own != held:
        what = "no loss state" if not held else f"another loss's state ({', '.join(sorted(held)[:3])}, ...)"
        raise ValueError(
            f"the checkpoint holds {what}, not the {method} loss's ({', '.join(sorted(own)[:3]) or 'none'}, ...): "
            f"it was not trained with --view-loss {method}; start from its weights alone with --initial-checkpoint"
        )
