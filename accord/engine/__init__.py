"""Engine: the training loop, evaluation, optimizer and schedules, checkpoints and run folders."""

from ..step import NonFiniteLossError
from .checkpoint import CheckpointError, load_checkpoint, save_atomic
from .distributed import Distributed, process_group
from .epochsetup import EpochSetup
from .evalpass import evaluate
from .loop import train_one_epoch
from .restore import evaluate_checkpoint, load_eval_model
from .run import build_run
from .runfiles import RunFolderError, summarize
from .trainer import fit

__all__ = [
    "CheckpointError",
    "Distributed",
    "EpochSetup",
    "NonFiniteLossError",
    "RunFolderError",
    "build_run",
    "evaluate",
    "evaluate_checkpoint",
    "load_eval_model",
    "fit",
    "load_checkpoint",
    "process_group",
    "save_atomic",
    "summarize",
    "train_one_epoch",
]
