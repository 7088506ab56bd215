"""A fault from outside a command's own code (a loader worker that dies or stalls, an interrupt, a lost process
of a torchrun group) ends every command with one line saying what happened and what the command leaves behind;
nothing waits forever, and a run keeps its last checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from child_hooks import hook_env
from tiny_runs import CHILD_ENV, PYTHON, REPO, train_args

from accord.cli import COMMANDS, build_parser, main
from accord.data.loading import data_loader
from accord.engine import distributed
from accord.engine.faults import FAULT_KINDS, classify, end_loader_workers
from accord.stops import AFTERMATH


class Suicidal(torch.utils.data.Dataset):
    """Items that send ``signum`` to the loader worker making them."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        os.kill(os.getpid(), self.signum)
        return torch.zeros(1)


def loader_error(signum: int) -> RuntimeError:
    """The error torch raises in the main process when its one worker gets ``signum`` (its traceback dropped:
    the loader's iterator goes with it)."""
    handler = signal.getsignal(signal.SIGCHLD)
    batches = iter(data_loader(Suicidal(signum), workers=1, timeout=1))
    try:
        next(batches)
    except RuntimeError as e:
        return e.with_traceback(None)
    finally:
        end_loader_workers()  # what the command line does: a stopped worker would keep the exit waiting
        del batches
        time.sleep(0.1)  # the SIGCHLD of the ended worker is handled by the default, then torch's handler is back
        signal.signal(signal.SIGCHLD, handler)
    raise AssertionError("the loader delivered a batch")


@pytest.fixture(scope="module")
def real_faults() -> dict[str, BaseException]:
    """One real error of every fault kind a single process meets (lost processes: see the torchrun tests)."""
    return {
        "worker died": loader_error(signal.SIGKILL),
        "worker stalled": loader_error(signal.SIGSTOP),
        "interrupted": KeyboardInterrupt(),
    }


def test_every_kind_is_classified_as_itself(real_faults):
    assert set(real_faults) == set(FAULT_KINDS) - {"lost process"}
    for kind, error in real_faults.items():
        fault = classify(error)
        assert fault is not None and fault.kind == kind, (kind, error)
        assert "\n" not in fault.what and fault.exit_code != 0
    assert classify(RuntimeError("a bug of accord's own")) is None  # not a fault: its traceback is wanted


def test_a_stalled_worker_is_ended_and_named(real_faults):
    fault = classify(real_faults["worker stalled"])
    assert fault is not None and "loader_timeout" in fault.what and "1 s" in fault.what
    assert not [p for p in __import__("multiprocessing").active_children() if p.is_alive()]


#: A command line of every command that parses (the command itself is replaced by the fault).
ARGV = {
    "train": ["train", "--out", "RUN"],
    "eval": ["eval", "--checkpoint", "RUN/checkpoint-best.pt"],
    "configs": ["configs"],
    "compare": ["compare", "--out", "CMP"],
    "grid": ["grid", "--models", "FashionMNIST-ResNet8", "--out", "GRID"],
    "report": ["report", "GRID"],
    "export": ["export", "RUN", "--out", "model.safetensors"],
    "import-agmax": ["import-agmax", "x.pth", "--arch", "resnet50", "--out", "x.pt"],
    "plot": ["plot", "RUN"],
    "bench": ["bench"],
    "predict": ["predict", "RUN", "image.png"],
}


def commands() -> list[str]:
    return list(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_every_command_says_what_a_stop_leaves():
    assert set(AFTERMATH) == set(commands())
    assert set(ARGV) == set(commands())


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "lost process"])
@pytest.mark.parametrize("command", commands())
def test_every_command_ends_a_fault_in_one_line(command, kind, real_faults, monkeypatch, tmp_path, capsys):
    def faulty(args):
        raise real_faults[kind]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(COMMANDS, command, (COMMANDS[command][0], faulty))
    code = main(ARGV[command])
    err = capsys.readouterr().err
    assert code == (130 if kind == "interrupted" else 1)
    assert err.count("\n") == 1 and err.startswith("accord: "), err
    noun = AFTERMATH[command][0]
    assert (f"{noun} interrupted; " if kind == "interrupted" else f"; {noun} stopped, ") in err, err
    if command != "train":
        assert "train --resume" not in err, err


@pytest.mark.parametrize("command", ["eval", "bench"])
def test_an_interrupted_evaluation_or_benchmark_says_nothing_was_written(command, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(COMMANDS, command, (COMMANDS[command][0], interrupted))
    assert main(ARGV[command]) == 130
    assert capsys.readouterr().err == f"accord: {AFTERMATH[command][0]} interrupted; nothing was written\n"


def test_a_lost_process_is_named_by_its_rank(monkeypatch):
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: its pid names no process now
    host = os.uname().nodename
    monkeypatch.setattr(distributed, "PEERS", [(host, os.getpid()), (host, ended.pid)])
    monkeypatch.setattr("accord.engine.faults.PEERS", distributed.PEERS)
    fault = classify(RuntimeError("[pair.cc:545] Read error [127.0.0.1]:53437: Connection reset by peer."))
    assert fault is not None and fault.kind == "lost process"
    assert fault.what == "lost rank 1 of 2: its process ended (Connection reset by peer)"


#: Loader workers of the processes it is imported in send themselves $ACCORD_TEST_FAULT (``parent:SIG``: their
#: main process) once the file $ACCORD_TEST_FAULT_WHEN exists.
FAULT_HOOK = """
import os, signal


def patch_datasets(module):
    get, sent = module.TensorImageDataset.__getitem__, []

    def faulty(self, index):
        from torch.utils.data import get_worker_info

        if get_worker_info() is not None and os.path.exists(os.environ["ACCORD_TEST_FAULT_WHEN"]) and not sent:
            sent.append(True)  # once, as a Ctrl-C is
            whom, _, name = os.environ["ACCORD_TEST_FAULT"].rpartition(":")
            os.kill(os.getppid() if whom == "parent" else os.getpid(), getattr(signal, name))
        return get(self, index)

    module.TensorImageDataset.__getitem__ = faulty


patch_on_import("accord.data.datasets", patch_datasets)
"""


def faulty_env(tmp_path: Path, fault: str, when: Path) -> dict[str, str]:
    env = hook_env(tmp_path / "hook", FAULT_HOOK, CHILD_ENV)
    return {**env, "ACCORD_TEST_FAULT": fault, "ACCORD_TEST_FAULT_WHEN": str(when)}


@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_a_stalled_or_dead_worker_ends_training_in_one_line_keeping_its_checkpoint(fault, fmnist_dir, tmp_path):
    out = tmp_path / "run"
    args = train_args(fmnist_dir, out, epochs=3, workers=1, loader_timeout=2)
    start = time.monotonic()
    done = subprocess.run(
        [PYTHON, "-m", "accord", *args], env=faulty_env(tmp_path, fault, out / "checkpoint-last.pt"), cwd=REPO,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("accord: error: ") and "data loader" in done.stderr
    assert f"its last checkpoint {out / 'checkpoint-last.pt'} is kept" in done.stderr
    assert f"resume with `accord train --resume {out}`" in done.stderr
    assert time.monotonic() - start < 120
    checkpoint = torch.load(out / "checkpoint-last.pt", weights_only=True)
    assert checkpoint["epoch"] == 0 and checkpoint["partial"] is None  # the first epoch's, whole


@pytest.fixture(scope="module")
def loader_run(fmnist_dir, tmp_path_factory, one_thread) -> Path:
    """A finished one-epoch run whose config evaluates with one loader worker and a 2 s loader timeout."""
    out = tmp_path_factory.mktemp("loader_run") / "run"
    assert main(train_args(fmnist_dir, out, workers=1, loader_timeout=2)) == 0  # in this process: no start-up
    return out


@pytest.mark.parametrize("fault", ["SIGSTOP", "SIGKILL"])
def test_a_stalled_or_dead_worker_ends_an_evaluation_in_one_line(fault, fmnist_dir, loader_run, tmp_path):
    args = ["eval", "--checkpoint", str(loader_run / "checkpoint-best.pt"), "--data-dir", str(fmnist_dir)]
    done = subprocess.run(
        [PYTHON, "-m", "accord", *args], env=faulty_env(tmp_path, fault, loader_run), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("accord: error: "), done.stderr
    assert done.stderr.endswith("; evaluation stopped, nothing was written\n"), done.stderr


def test_ctrl_c_during_an_evaluation_names_the_evaluation(fmnist_dir, loader_run, tmp_path):
    out = tmp_path / "robustness.json"
    args = ["eval", "--checkpoint", str(loader_run / "checkpoint-best.pt"), "--data-dir", str(fmnist_dir),
            "--corruptions", "noise", "--out", str(out)]  # fmt: skip
    done = subprocess.run(
        [PYTHON, "-m", "accord", *args], env=faulty_env(tmp_path, "parent:SIGINT", loader_run), cwd=tmp_path,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 130, done.stderr
    assert done.stderr == "accord: evaluation interrupted; nothing was written\n", done.stderr
    assert not out.exists()


def test_ctrl_c_during_a_benchmark_names_the_benchmark(tmp_path):
    bench = subprocess.Popen(
        [PYTHON, "-m", "accord", "bench", "--repeats", "1000", "--batch", "8", "--e2e-steps", "1", "--workers", "0"],
        env=CHILD_ENV, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert bench.stderr is not None
    first = bench.stderr.readline()  # the benchmark's first progress line: it is running
    bench.send_signal(signal.SIGINT)
    err = first + bench.communicate(timeout=120)[1]
    assert bench.returncode == 130, err
    assert err.splitlines()[-1] == "accord: benchmark interrupted; nothing was written", err
    assert "train --resume" not in err and not (tmp_path / "bench.json").exists()


def torchrun(args: list[str], cwd: Path) -> subprocess.Popen:
    """``torchrun --nproc_per_node 2 -m accord ARGS`` in its own process group (a terminal's Ctrl-C reaches all)."""
    env = {**CHILD_ENV, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "accord", *args],
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def rank_pid(agent: subprocess.Popen, rank: int) -> int:
    """The pid of the process of ``rank`` that the torchrun ``agent`` started."""
    children = Path(f"/proc/{agent.pid}/task/{agent.pid}/children").read_text().split()
    for pid in children:
        if f"RANK={rank}" in Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0"):
            return int(pid)
    raise AssertionError(f"no rank {rank} among {children}")


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the ranks' processes in /proc")
@pytest.mark.parametrize("lost", [1, 0])
def test_a_killed_rank_is_named_by_the_others_in_one_line(lost, fmnist_dir, tmp_path):
    out = tmp_path / "run"
    agent = torchrun(train_args(fmnist_dir, out, epochs=500, train_subset=320), tmp_path)
    try:
        wait_for(out / "checkpoint-last.pt", agent)
        os.kill(rank_pid(agent, lost), signal.SIGKILL)
        err = agent.communicate(timeout=120)[1]
    finally:
        agent.kill()
    ours = stop_lines(err)
    assert len(ours) == 1, err
    assert ours[0].startswith(f"accord: error: lost rank {lost} of 2: its process ended"), err
    assert ours[0].endswith(
        f"training stopped, its last checkpoint {out / 'checkpoint-last.pt'} is kept; "
        f"resume with `torchrun --nproc_per_node 2 -m accord train --resume {out}`"
    ), err
    assert not [line for line in err.splitlines() if line.startswith("[rank")], err  # no rank's traceback


def stop_lines(err: str) -> list[str]:
    """accord's lines of a torchrun group's stderr after it started (rank 0's line about the group's wait comes
    before any training)."""
    return [line for line in err.splitlines() if line.startswith("accord:") and "waiting up to" not in line]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "killpg"), reason="a Ctrl-C reaches a process group")
def test_ctrl_c_under_torchrun_prints_one_stop_line_naming_torchrun(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    agent = torchrun(train_args(fmnist_dir, out, epochs=500, train_subset=320), tmp_path)
    try:
        wait_for(out / "checkpoint-last.pt", agent)
        os.killpg(agent.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        err = agent.communicate(timeout=120)[1]
    finally:
        agent.kill()
    ours = stop_lines(err)
    assert len(ours) == 1, err
    assert ours[0].startswith("accord: SIGINT: stopped at "), err
    assert ours[0].endswith(f"resume with `torchrun --nproc_per_node 2 -m accord train --resume {out}`"), err


def test_every_data_loader_of_the_package_is_made_with_a_timeout():
    """torch's DataLoader is built in one place only (accord.data.loading), which bounds the wait for a batch."""
    import ast

    package = REPO / "accord"
    makers = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "data" / "loading.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "DataLoader"
    ]
    assert makers == []


@pytest.mark.parametrize("value", [0, -1, 0.0, float("nan"), float("inf"), 1e9, "soon", None, True])
def test_loader_timeout_outside_its_range_names_the_key(value, fmnist_dir):
    from accord.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="loader_timeout"):
        load_config("FashionMNIST-ResNet8-standard", {"loader_timeout": value, "data_dir": str(fmnist_dir)})


def test_a_fault_before_the_first_checkpoint_gives_a_command_that_works(fmnist_dir, tmp_path):
    out = tmp_path / "run"
    args = train_args(fmnist_dir, out, workers=1, loader_timeout=2)
    env = faulty_env(tmp_path, "SIGKILL", fmnist_dir)  # from the first batch on
    done = subprocess.run(
        [PYTHON, "-m", "accord", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    hint = f"{out} holds no checkpoint yet; run the same command again\n"
    assert done.stderr.endswith(hint), done.stderr
    again = subprocess.run([PYTHON, "-m", "accord", *args], env=CHILD_ENV, cwd=REPO, capture_output=True, text=True,
                           timeout=180)  # fmt: skip  # the same command: it starts the run again
    assert again.returncode == 0, again.stderr
