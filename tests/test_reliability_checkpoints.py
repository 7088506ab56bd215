"""What reaches a checkpoint (issue 17, items 4, 6 and 8): the best and last checkpoints agree after a
kill between their writes, non-finite weights or buffers are never written, and a checkpoint of another
run is one line on --resume."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from reliability_runs import CHILD_ENV, QUIET, REPO, tiny_config, train_args

from accord.cli import main
from accord.engine import fit, load_checkpoint
from accord.engine.checkpoint import save_atomic

pytestmark = pytest.mark.usefixtures("one_thread")

# A child `accord train` that SIGKILLs itself half way through writing checkpoint-best.pt of the last
# epoch: the temporary file `.checkpoint-best.pt.*.tmp` holds half the bytes when the process dies.
KILL_IN_LAST_BEST_WRITE = """
import io, os, signal, sys, torch
save = torch.save
def save_then_die(obj, f, *args, **kwargs):
    name = os.path.basename(os.readlink(f"/proc/self/fd/{f.fileno()}")) if hasattr(f, "fileno") else ""
    last_epoch = isinstance(obj, dict) and obj.get("epoch") == obj["config"]["epochs"] - 1
    if name.startswith(".checkpoint-best.pt.") and last_epoch:
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return save(obj, f, *args, **kwargs)
torch.save = save_then_die
from accord.cli import main
sys.exit(main(sys.argv[1:]))
"""


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sigkill_while_the_best_checkpoint_is_written_keeps_the_selected_model(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    # no validation split: every epoch is the best so far, so the last epoch writes checkpoint-best.pt
    argv = train_args(fmnist_dir, out, epochs=3, val_fraction=0.0)
    child = subprocess.run(
        [sys.executable, "-c", KILL_IN_LAST_BEST_WRITE, *argv], cwd=REPO, env=CHILD_ENV,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr
    assert list(out.glob(".checkpoint-best.pt.*.tmp"))  # it died inside the write
    assert main(["train", "--resume", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    best, last = load_checkpoint(out / "checkpoint-best.pt"), load_checkpoint(out / "checkpoint-last.pt")
    assert summary["best_epoch"] == 3 == best["epoch"] + 1 == last["epoch"] + 1
    assert same_weights(best["model"], last["model"])  # the epoch-3 weights the summary selects
    assert not list(out.glob(".*.tmp"))


def test_resume_repairs_a_best_checkpoint_left_behind_by_a_kill_between_the_two_writes(fmnist_dir, tmp_path):
    """The state an earlier accord (last written first, then best) left after such a kill."""
    out = tmp_path / "run"
    cfg = tiny_config(fmnist_dir, epochs=2, val_fraction=0.0)
    fit(cfg, out, log=QUIET)
    last = load_checkpoint(out / "checkpoint-last.pt")
    stale = {**last, "epoch": 0, "global_step": 2, "model": {k: v * 0 for k, v in last["model"].items()}}
    save_atomic(stale, out / "checkpoint-best.pt")
    lines: list[str] = []
    fit(cfg, out, resume=True, log=lines.append)
    assert any("did not hold epoch 2, the best one; rewrote it" in line for line in lines)
    assert same_weights(load_checkpoint(out / "checkpoint-best.pt")["model"], last["model"])
