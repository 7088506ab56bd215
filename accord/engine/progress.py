"""Progress off a terminal (a log file, ``nohup``, a batch job): plain lines instead of a progress bar.

On a terminal tqdm draws its bar on stderr; elsewhere a bar is unreadable (carriage returns) or absent, so
training writes one line every ``log_interval`` updates with the running loss terms, images/s and the epoch's
ETA to the run's log (stdout; stderr under ``--json``, so that stderr holds errors alone otherwise), and
evaluation one line at every tenth of its batches on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def on_terminal() -> bool:
    return sys.stderr.isatty()


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    """``3h02m``, ``4m05s``, ``12s``."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLines:
    """One line per ``every`` steps: ``epoch 1 step 50/312: loss 1.234 ce 1.100 | 812 img/s | ETA 3m12s, run
    1h02m``.

    ``first`` is the step the counting starts from (a resumed epoch's steps already done); images/s and the
    ETAs are over the steps run here; the run's (``after`` steps in later epochs) leaves out evaluation.
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        every: int,
        first: int = 0,
        write: Callable[[str], None] = _stderr,
        after: int = 0,
    ) -> None:
        self.description, self.total, self.every, self.first, self.write = description, total, every, first, write
        self.after = after  # the steps of the run's later epochs: the run's ETA counts them too
        self.start = time.perf_counter()

    def update(self, step: int, images: int, terms: dict[str, float]) -> None:
        """After ``step`` (counted within the epoch) with ``images`` seen since ``first``."""
        if step % self.every:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        done = step - self.first
        loss = " ".join(f"{k} {v:.3f}" for k, v in terms.items())
        of = f"/{self.total}" if self.total else ""
        eta = ""
        if self.total and done > 0:
            eta = f" | ETA {duration((self.total - step) * elapsed / done)}"
            eta += f", run {duration((self.total - step + self.after) * elapsed / done)}" if self.after else ""
        self.write(f"{self.description} step {step}{of}: {loss} | {images / elapsed:.0f} img/s{eta}")


def eval_progress(
    batches: Iterable[T], description: str, write: Callable[[str], None] = _stderr, every_s: float = 0.0
) -> Iterator[T]:
    """``batches`` with a tqdm bar on a terminal, else a line at every tenth of them (when their number is
    known) that comes ``every_s`` seconds or more after the previous line."""
    if on_terminal():
        yield from tqdm(batches, desc=description, leave=False, dynamic_ncols=True)
        return
    total = len(batches) if isinstance(batches, Sized) else 0
    marks = {max(1, round(total * k / 10)) for k in range(1, 11)} if total else set()
    start = last = time.perf_counter()
    for i, batch in enumerate(batches, 1):
        yield batch
        if i in marks and time.perf_counter() - last >= every_s:
            last = time.perf_counter()
            write(f"{description}: {i}/{total} batches, {duration(last - start)}")
