"""A run records where it trained (summary.json, checkpoints), and a report says when a grid's runs differ in it."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest
import torch
from tiny_runs import QUICK

import accord
from accord.cli import main
from accord.config import load_config
from accord.engine import fit, load_checkpoint
from accord.engine.checkpoint import save_atomic
from accord.engine.environment import describe_environment, environments_after_resume

TINY = {**QUICK, "train_subset": 96, "epochs": 2}
NAME = "FashionMNIST-ResNet8-standard"
ELSEWHERE = {**describe_environment(torch.device("cpu"), 1), "cpu_capability": "AVX2", "threads": 7}


class Stop(Exception):
    pass


def _stopped_after_epoch_1(cfg, out: Path) -> dict:
    """Train ``cfg`` into ``out`` and stop it once epoch 1 is logged; its last checkpoint."""

    def stop_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1/2"):
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, out, log=stop_after_first_epoch)
    return load_checkpoint(out / "checkpoint-last.pt")


def test_the_environment_names_versions_vector_path_threads_and_processes():
    env = describe_environment(torch.device("cpu"), 3)
    import timm
    import torchvision

    assert env["torch"] == torch.__version__ and env["torchvision"] == torchvision.__version__
    assert env["timm"] == timm.__version__ and env["python"] == platform.python_version()
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and env["machine"] == platform.machine()
    assert env["threads"] == torch.get_num_threads() and env["world_size"] == 3 and "gpu" not in env
    assert env["accord"] == accord.__version__
    assert environments_after_resume([env], env) == [env]
    assert environments_after_resume([ELSEWHERE], env) == [ELSEWHERE, env]


def test_a_run_records_its_environment_in_the_summary_and_every_checkpoint(fmnist_dir, tmp_path):
    cfg = load_config(NAME, {**TINY, "data_dir": str(fmnist_dir)})
    here = describe_environment(torch.device("cpu"), 1)
    summary = fit(cfg, tmp_path / "run", log=lambda _: None)
    assert summary["environment"] == here and "earlier_environments" not in summary
    assert json.loads((tmp_path / "run/summary.json").read_text())["environment"] == here
    for name in ("checkpoint-last.pt", "checkpoint-best.pt"):
        assert load_checkpoint(tmp_path / "run" / name)["environments"] == [here]


def test_a_run_resumed_elsewhere_records_both_environments_in_order(fmnist_dir, tmp_path):
    cfg = load_config(NAME, {**TINY, "data_dir": str(fmnist_dir)})
    out = tmp_path / "run"
    ckpt = _stopped_after_epoch_1(cfg, out)
    save_atomic({**ckpt, "environments": [ELSEWHERE]}, out / "checkpoint-last.pt")  # as if epoch 1 ran elsewhere
    summary = fit(cfg, out, resume=True, log=lambda _: None)
    here = describe_environment(torch.device("cpu"), 1)
    assert summary["environment"] == here and summary["earlier_environments"] == [ELSEWHERE]
    assert load_checkpoint(out / "checkpoint-last.pt")["environments"] == [ELSEWHERE, here]


def test_a_checkpoint_from_before_environments_were_kept_still_resumes(fmnist_dir, tmp_path):
    cfg = load_config(NAME, {**TINY, "data_dir": str(fmnist_dir)})
    out = tmp_path / "run"
    ckpt = _stopped_after_epoch_1(cfg, out)
    save_atomic({k: v for k, v in ckpt.items() if k != "environments"}, out / "checkpoint-last.pt")
    summary = fit(cfg, out, resume=True, log=lambda _: None)
    assert summary["environment"] == describe_environment(torch.device("cpu"), 1)
    assert "earlier_environments" not in summary


COMMITTED = Path(__file__).parent.parent / "docs/results/fashion-mnist/grid"


def _grid(tmp_path: Path, environments: dict[str, dict | None]) -> Path:
    """A grid folder of committed summaries (baseline and AgMax, seeds 0-1), each given an environment."""
    root = tmp_path / "grid"
    for folder, env in environments.items():
        summary = json.loads((COMMITTED / folder / "summary.json").read_text())
        if env is not None:
            summary["environment"] = env
        (root / folder).mkdir(parents=True)
        (root / folder / "summary.json").write_text(json.dumps(summary))
    shutil.copy(COMMITTED / "grid.json", root / "grid.json")
    return root


pytestmark = pytest.mark.usefixtures("one_thread")
CELLS = [f"FashionMNIST-ResNet8-standard{m}/seed{s}" for m in ("", "-agmax") for s in (0, 1)]


def test_report_names_the_one_environment_of_a_grid_once(tmp_path, capsys):
    here = describe_environment(torch.device("cpu"), 1)
    root = _grid(tmp_path, dict.fromkeys(CELLS, here))
    assert main(["report", str(root)]) == 0
    out, err = capsys.readouterr()
    assert out.count("Environment of every run: accord ") == 1 and f"torch {torch.__version__}" in out
    assert "warning" not in err.lower()


def test_report_warns_when_the_cells_of_a_grid_come_from_different_environments(tmp_path, capsys):
    here = describe_environment(torch.device("cpu"), 1)
    root = _grid(tmp_path, {**dict.fromkeys(CELLS, here), CELLS[-1]: ELSEWHERE})
    assert main(["report", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "**Warning**: the 4 runs come from 2 environments" in out
    assert "vector path AVX2, 7 thread(s)" in out and f"1 run(s), e.g. `{CELLS[-1]}`" in out
    assert err.strip().splitlines() == [
        f"accord: wrote report.md, results.csv and the figures in {root}",
        "accord: warning: the 4 runs come from 2 environments, so cells may differ by where they trained as well "
        "as by method (see report.md)",
    ]


def test_report_counts_an_unrecorded_environment_as_another(tmp_path, capsys):
    here = describe_environment(torch.device("cpu"), 1)
    root = _grid(tmp_path, {**dict.fromkeys(CELLS, here), CELLS[0]: None})
    assert main(["report", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "come from 2 environments" in err and "- not recorded (runs from before accord" in out
