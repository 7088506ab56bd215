"""accord inside timm's own training loop: tasks (``timm.task.TrainingTask``), a multi-view dataset wrapper and
a view-aware mixer. Needs timm >= 1.0.27 (the task API with trainable modules, EMA and task checkpoint state)."""

from .arguments import add_view_arguments, task_options
from .batch import check_view_batch
from .dataset import MultiViewDataset, policy_views
from .mixing import LoopMixer
from .tasks import AgMaxTask, JsdTask, TiedAugmentTask, ViewCETask, ViewTask, create_task

__all__ = [
    "AgMaxTask",
    "JsdTask",
    "LoopMixer",
    "MultiViewDataset",
    "add_view_arguments",
    "task_options",
    "TiedAugmentTask",
    "ViewCETask",
    "ViewTask",
    "check_view_batch",
    "create_task",
    "policy_views",
]
