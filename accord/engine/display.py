"""What an epoch shows while it trains: its clock, and the running loss means as a bar or as lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sized

from torch import Tensor
from tqdm import tqdm

from .epochprogress import EpochProgress, all_processes, means
from .epochsetup import EpochSetup
from .progress import ProgressLines, on_terminal
from .steplog import StepTimer, TimedBatches


class EpochClock:
    """The epoch's training seconds: those before a resume plus this call's."""

    def __init__(self, progress: EpochProgress) -> None:
        self.before, self.start = progress.seconds, time.perf_counter()

    def stamp(self, progress: EpochProgress) -> None:
        progress.seconds = self.before + time.perf_counter() - self.start


class EpochDisplay:
    """The running loss means over every process: a tqdm bar on a terminal, else a line every ``log_interval``
    updates (rank 0), with the epoch's and the run's ETA; and ``setup.on_log``'s scalars (:mod:`.steplog`)."""

    def __init__(
        self,
        loader: Iterable[tuple[Tensor, Tensor]],
        progress: EpochProgress,
        setup: EpochSetup,
        epoch: int | None,
        log: Callable[[str], None],
        global_step: int = 0,
    ) -> None:
        description = f"epoch {epoch + 1}" if epoch is not None else "train"
        self.interval, self.setup = setup.log_interval, setup
        self.timed = TimedBatches(loader)
        self.timer = StepTimer(self.timed)
        self.bar = tqdm(self.timed, desc=description, leave=False, dynamic_ncols=True, disable=not on_terminal())
        self.lines = None
        if self.bar.disable and (setup.dist is None or setup.dist.is_main):
            known = progress.steps + len(loader) if isinstance(loader, Sized) else None
            after = setup.total_steps - global_step - (known - progress.steps) if setup.total_steps and known else 0
            self.lines = ProgressLines(description, known, self.interval, progress.steps, log, after)
        self.world = setup.dist.world_size if setup.dist is not None else 1
        self.images_before = self.images_last = progress.images * self.world  # every process's share is equal

    def show(self, progress: EpochProgress, global_step: int = 0) -> None:
        if progress.steps % self.interval:
            return
        dist = self.setup.dist
        total = all_processes(progress, dist) if dist is not None and dist.enabled else progress  # a collective
        running = means(total)
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
        if self.lines is not None:
            self.lines.update(progress.steps, total.images - self.images_before, running)
        wait, compute = self.timer.interval()
        images, self.images_last = total.images - self.images_last, total.images
        if self.setup.on_log is not None:
            speed = {"images_per_s": images / max(wait + compute, 1e-9), "data_wait_s": wait, "compute_s": compute}
            self.setup.on_log(global_step, {**running, **speed})
