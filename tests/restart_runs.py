"""torchrun runs of the tiny config that lose a process on purpose, for the start-or-resume tests.

A start-up hook (:mod:`child_hooks`) SIGKILLs the worker of rank ``ACCORD_KILL_RANK`` once, at ``ACCORD_KILL_AT``,
and leaves a flag file so that the restarted workers live: the kill is a real ``kill -9`` of one rank at a known point.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import tiny_runs
import torch
from child_hooks import hook_env
from tiny_runs import QUICK

from accord.config import Config
from accord.engine import load_checkpoint
from accord.engine.runfiles import TIMING_KEYS

REPO = Path(__file__).resolve().parents[1]
# 128 training images, global batch 32: 4 steps an epoch over 2 processes; a checkpoint every 2 steps
TINY = {
    **QUICK, "eval_batch_size": 50, "epochs": 2, "train_subset": 128, "val_fraction": 0.2, "checkpoint_every_steps": 2,
    "dist_timeout": 60,
}  # fmt: skip

#: Where a rank is killed: ``step N`` (in its Nth training step, mid-epoch), ``save N`` (half way through
#: writing its Nth checkpoint file), ``evaluation`` (as it starts the first epoch's evaluation: an epoch's end).
KILL_HOOK = """
import os, signal
from pathlib import Path

at, rank = os.environ.get("ACCORD_KILL_AT"), os.environ.get("ACCORD_KILL_RANK")
flag = os.environ.get("ACCORD_KILL_FLAG")
calls = {"step": 0, "save": 0}


def die(kind, number=0):
    calls[kind] = calls.get(kind, 0) + 1
    if at == f"{kind} {calls[kind]}".strip() or at == kind:
        Path(flag).touch()
        os.kill(os.getpid(), signal.SIGKILL)


def patch_step(module):
    forward = module.ViewStep.forward  # the one training step of every path

    def step(self, *args, **kwargs):
        die("step")
        return forward(self, *args, **kwargs)

    module.ViewStep.forward = step


def patch_evaluation(module):
    evaluate = module.evaluate  # patched where it is defined, before the trainer imports it

    def evaluation(*args, **kwargs):
        die("evaluation")
        return evaluate(*args, **kwargs)

    module.evaluate = evaluation


if at and flag and not Path(flag).exists() and os.environ.get("RANK") == rank:
    import io, torch
    save = torch.save

    def half_then_die(obj, f, *args, **kwargs):
        try:
            name = os.path.basename(os.readlink(f"/proc/self/fd/{f.fileno()}"))
        except (AttributeError, OSError):  # an in-memory buffer: a collective's pickling
            name = ""
        if not name.startswith(".checkpoint-"):
            return save(obj, f, *args, **kwargs)
        if at == f"save {calls['save'] + 1}":
            buffer = io.BytesIO()
            save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            f.flush()
        die("save")
        return save(obj, f, *args, **kwargs)

    torch.save = half_then_die
    patch_on_import("accord.step.module", patch_step)
    patch_on_import("accord.engine.evalpass", patch_evaluation)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_args(data_dir: Path, out: Path, **extra: object) -> list[str]:
    """The start command's ``accord train`` arguments (the same for the first start and every restart)."""
    return tiny_runs.train_args(data_dir, out, **{**TINY, **extra})


def child_env(tmp: Path, kill_at: str | None = None, kill_rank: int = 1) -> dict[str, str]:
    """The environment of a torchrun: one thread, the kill hook first on the path when ``kill_at`` is set."""
    env = hook_env(tmp / "hook", KILL_HOOK, {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    if kill_at:
        env |= {"ACCORD_KILL_AT": kill_at, "ACCORD_KILL_RANK": str(kill_rank), "ACCORD_KILL_FLAG": str(tmp / "killed")}
    return env


def torchrun(args: list[str], env: dict[str, str], cwd: Path, *launch: str) -> subprocess.Popen:
    """``torchrun [launch] -m accord ARGS`` started in the background, its output piped."""
    command = [sys.executable, "-m", "torch.distributed.run", *launch, "-m", "accord", *args]
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


SCALING_DOC = REPO / "docs" / "scaling.md"


def doc_blocks() -> list[str]:
    """The bash blocks of docs/scaling.md."""
    return re.findall(r"```bash\n(.*?)```", SCALING_DOC.read_text(), flags=re.S)


def doc_command(label: str) -> str:
    """The command of docs/scaling.md's block whose first line is ``# label``."""
    for block in doc_blocks():
        first, _, rest = block.partition("\n")
        if first == f"# {label}":
            return rest.strip()
    raise AssertionError(f"docs/scaling.md has no block '# {label}'")


def launch_flags(label: str, **variables: str) -> list[str]:
    """torchrun's flags in docs/scaling.md's command ``label`` (``$NAME`` replaced by ``variables``)."""
    command = doc_command(label)
    for name, value in variables.items():
        command = command.replace(f"${name}", value)
    words = shlex.split(command)
    assert words[0] == "torchrun" and "-m" in words, command
    return words[1 : words.index("-m")]


def one_node() -> list[str]:
    """The doc's torchrun on one node: 2 processes, 2 restarts."""
    return launch_flags("one node")


def c10d_node(port: int, run_id: str = "accord-test") -> list[str]:
    """The doc's torchrun on each of two c10d "nodes" (one process each), meeting at 127.0.0.1:``port``."""
    return launch_flags("each node", HEAD="127.0.0.1", PORT=str(port), JOB=run_id)


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> str:
    """Wait for every launcher; their output, joined; each must succeed."""
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=timeout)[0])
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
    text = "\n".join(outputs)
    assert all(p.returncode == 0 for p in procs), text
    return text


def weights(out: Path) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(out / "checkpoint-last.pt")
    return {f"{part}.{k}": v for part in ("model", "criterion") for k, v in ckpt[part].items()}


def assert_same_weights(a: Path, b: Path) -> None:
    """Bit for bit: the same final weights and the same per-epoch numbers but for timings."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert [k for k in wa if not torch.equal(wa[k], wb[k])] == []
    timing = TIMING_KEYS
    ta, tb = ([{k: v for k, v in json.loads(line).items() if k not in timing}
               for line in (out / "metrics.jsonl").read_text().splitlines()] for out in (a, b))  # fmt: skip
    assert ta == tb


def tiny_config(data_dir: Path, **extra: object) -> Config:
    """The config that :func:`train_args` trains."""
    return tiny_runs.tiny_config(data_dir, **{**TINY, **extra})
