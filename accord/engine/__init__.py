"""Engine: the training loop, evaluation, optimizer and schedules, checkpoints and run folders."""

from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .loop import NonFiniteLossError, evaluate, train_one_epoch
from .trainer import RunFolderError, build_run, evaluate_checkpoint, fit, summarize

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "RunFolderError",
    "build_run",
    "evaluate",
    "evaluate_checkpoint",
    "fit",
    "load_checkpoint",
    "save_atomic",
    "summarize",
    "train_one_epoch",
]
