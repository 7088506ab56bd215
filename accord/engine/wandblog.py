"""Weights & Biases (optional: ``pip install accord[wandb]``): a run's scalars in a W&B run of the same id.

The W&B run lives in ``<run>/wandb`` and takes accord's run id, so a resumed run continues the same W&B run
(``resume="allow"``). ``WANDB_MODE=offline`` keeps it on disk (``wandb sync`` uploads it later); the
project is ``WANDB_PROJECT`` when set, else ``accord``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError

MISSING = "wandb: true (--log-wandb) needs the wandb package: pip install wandb (or pip install accord[wandb])"


def wandb_available() -> bool:
    try:
        import wandb  # noqa: F401
    except ImportError:
        return False
    return True


class WandbLog:
    """One W&B run; :meth:`log` drops values that are not finite numbers (an evaluation skipped)."""

    def __init__(self, out: Path, cfg: Config, run_id: str | None) -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError(MISSING) from None
        self.run = wandb.init(
            project=None, dir=str(out), name=cfg.name, id=run_id, resume="allow", config=cfg.as_flat()
        )

    def log(self, values: dict[str, Any], step: int) -> None:
        finite = {k: v for k, v in values.items() if isinstance(v, int | float) and math.isfinite(v)}
        self.run.log(finite, step=step)

    def close(self) -> None:
        self.run.finish()
