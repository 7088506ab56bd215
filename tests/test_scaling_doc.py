"""docs/scaling.md's commands run as written: on one machine, torchrun on one node, two c10d "nodes" on this
machine, and the Slurm job script (with a stand-in ``scontrol``), on the tiny config as ``run.yaml``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from restart_runs import SCALING_DOC, assert_same_weights, doc_blocks, doc_command, free_port, tiny_config

from accord.engine.identity import RESTART_KEYS

#: The job script runs long enough to be stopped in the middle: 6 epochs of 4 steps.
EPOCHS = 6


def workdir(tmp: Path, name: str, data_dir: Path, epochs: int = EPOCHS) -> tuple[Path, dict[str, str]]:
    """A folder holding ``run.yaml``, and an environment whose ``torchrun``, ``accord`` and ``scontrol``
    are this Python's (``scontrol`` records its arguments in ``scontrol.log``)."""
    folder = tmp / name
    folder.mkdir()
    (folder / "run.yaml").write_text(yaml.safe_dump(tiny_config(data_dir, epochs=epochs).as_flat()))
    bin_dir = tmp / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for tool, line in {
            "torchrun": f'exec {sys.executable} -m torch.distributed.run "$@"',
            "accord": f'exec {sys.executable} -m accord "$@"',
            "scontrol": 'echo "$@" >> scontrol.log',
        }.items():
            (bin_dir / tool).write_text(f"#!/bin/sh\n{line}\n")
            (bin_dir / tool).chmod(0o755)
    repo = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "PYTHONPATH": repo,
           "PYTHONUNBUFFERED": "1", "SLURM_JOB_ID": "4242"}  # fmt: skip
    return folder, env


def bash(command: str, cwd: Path, env: dict[str, str], **more: str) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", command], cwd=cwd, env={**env, **more}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def done(proc: subprocess.Popen, code: int = 0) -> str:
    output = proc.communicate(timeout=400)[0]
    assert proc.returncode == code, output
    return output


def test_the_doc_has_each_command():
    assert len(doc_blocks()) == 4
    for label in ("one machine", "one node", "each node"):
        assert "accord train --config run.yaml --out runs/r1" in doc_command(label)
    assert doc_blocks()[-1].startswith("#!/bin/bash\n")


@pytest.mark.slow
def test_one_machine_starts_then_resumes(fmnist_dir, tmp_path):
    folder, env = workdir(tmp_path, "one", fmnist_dir, epochs=1)
    done(bash(doc_command("one machine"), folder, env))
    assert "holds this run: resuming it" in done(bash(doc_command("one machine"), folder, env))


@pytest.mark.slow
def test_one_node_two_nodes_and_the_job_script_train_the_same_weights(fmnist_dir, tmp_path):
    reference, env = workdir(tmp_path, "node", fmnist_dir)
    done(bash(doc_command("one node"), reference, env))

    nodes, _ = workdir(tmp_path, "nodes", fmnist_dir)
    where = {"HEAD": "127.0.0.1", "PORT": str(free_port()), "JOB": "doc-test"}
    both = [bash(doc_command("each node"), nodes, env, **where) for _ in range(2)]
    for proc in both:
        done(proc)
    assert_same_weights(reference / "runs/r1", nodes / "runs/r1")

    job, _ = workdir(tmp_path, "job", fmnist_dir)
    (job / "job.sh").write_text(doc_blocks()[-1])
    script = subprocess.Popen(["bash", "job.sh"], cwd=job, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (job / "runs/r1/checkpoint-last.pt").is_file():  # the first checkpoint, after step 2
        assert script.poll() is None and time.monotonic() < deadline, script.communicate()[0]
        time.sleep(0.05)
    script.send_signal(signal.SIGUSR1)  # the scheduler's warning
    output = done(script)
    assert "SIGTERM: stopped at" in output, output
    assert (job / "scontrol.log").read_text() == "requeue 4242\n"
    assert not (job / "runs/r1/summary.json").exists()
    done(subprocess.Popen(["bash", "job.sh"], cwd=job, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True))  # fmt: skip  # the requeued job
    assert_same_weights(reference / "runs/r1", job / "runs/r1")


def test_the_doc_names_every_restart_key():
    text = SCALING_DOC.read_text()
    assert [key for key in sorted(RESTART_KEYS) if f"`{key}`" not in text] == []
