"""Engine: the training loop, evaluation, optimizer and schedules, checkpoints and run folders."""

from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .loop import NonFiniteLossError, evaluate, train_one_epoch
from .restore import evaluate_checkpoint, load_eval_model
from .trainer import RunFolderError, build_run, fit, summarize

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "RunFolderError",
    "build_run",
    "evaluate",
    "evaluate_checkpoint",
    "load_eval_model",
    "fit",
    "load_checkpoint",
    "save_atomic",
    "summarize",
    "train_one_epoch",
]
