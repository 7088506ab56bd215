"""What reaches a checkpoint and what is read from one: the best and last checkpoints agree after a kill
between their writes, non-finite weights or buffers are never written, a checkpoint that is empty, truncated,
foreign or carries pickled code is one line, a failed write leaves the old file, and `accord export` says which
checkpoint it took."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from interrupted_runs import config, temp_files
from tiny_runs import CHILD_ENV, QUIET, REPO, tiny_config, train_args

from accord.cli import main
from accord.engine import CheckpointError, fit, load_checkpoint
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


# ------------------------------------------------------------------------------ non-finite weights, buffers


def all_finite(ckpt: dict) -> bool:
    tensors = [*ckpt["model"].values(), *ckpt["criterion"].values()]
    for state in ckpt["optimizer"]["state"].values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    return all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())


def test_huge_lr_never_writes_an_infinite_running_var(fmnist_dir, tmp_path, capsys):
    """lr 1000 per image (32,000 at batch 32, the most the domains allow): the weights and BatchNorm buffers
    overflow while the loss of the step that overflowed them can still be finite, so the loss guard alone would
    save them; the state check before every checkpoint stops the run and keeps the last finite checkpoint."""
    out = tmp_path / "run"
    assert main(train_args(fmnist_dir, out, lr=1000.0, lr_batch=1, epochs=3, checkpoint_every_steps=1)) == 1
    err = capsys.readouterr().err
    found = re.search(r"non-finite weights or buffers after step (\d+)", err)
    assert found and "not saved" in err and "the last good checkpoint is kept" in err, err
    for name in ("checkpoint-last.pt", "checkpoint-best.pt"):
        if (out / name).exists():
            assert all_finite(load_checkpoint(out / name)), name
    assert load_checkpoint(out / "checkpoint-last.pt")["global_step"] == int(found.group(1)) - 1


def poison_buffer_at(monkeypatch: pytest.MonkeyPatch, at_call: int) -> None:
    """Make a BatchNorm running_var infinite before the ``at_call``-th training forward pass (it stays
    infinite through the pass); the loss stays finite: training-mode BatchNorm uses the batch statistics."""
    import accord.engine.trainer as trainer

    build_run = trainer.build_run

    def patched(cfg, device=None, dist=None):
        run = build_run(cfg, device, dist)
        calls = [0]

        def pre_hook(module, args):
            if module.training:  # training steps only, not the evaluation passes
                calls[0] += 1
                if calls[0] == at_call:
                    with torch.no_grad():
                        module.model.state_dict(keep_vars=True)["layer1.0.bn1.running_var"][0] = float("inf")

        run.model.register_forward_pre_hook(pre_hook)
        return run

    monkeypatch.setattr(trainer, "build_run", patched)


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_a_poisoned_buffer_with_a_finite_loss_reaches_no_checkpoint(fmnist_dir, tmp_path, monkeypatch, mode):
    from accord.engine.finite import NonFiniteStateError

    poison_buffer_at(monkeypatch, at_call=4)  # step 1 of epoch 2 (3 steps an epoch)
    cfg = tiny_config(fmnist_dir, epochs=2, train_subset=96, checkpoint_every_steps=1, nonfinite=mode)
    with pytest.raises(NonFiniteStateError, match=r"after step 4 \(epoch 2\) \(1 of \d+ tensors: layer1.0.bn1"):
        fit(cfg, tmp_path, log=QUIET)
    ckpt = load_checkpoint(tmp_path / "checkpoint-last.pt")
    assert ckpt["global_step"] == 3 and all_finite(ckpt)  # the end of epoch 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


def test_the_state_check_is_one_fused_reduction_that_finds_nan_and_inf():
    from accord.engine.finite import nonfinite_tensors

    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    assert nonfinite_tensors({"": net}) == []
    with torch.no_grad():
        net[0].bias[1] = float("nan")
        net[1].running_var[0] = float("inf")
    assert nonfinite_tensors({"m.": net}) == ["m.0.bias", "m.1.running_var"]


def test_checkpoint_with_a_pickled_payload_is_refused_on_resume(fmnist_dir, tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(config(fmnist_dir).as_flat()))
    torch.save({"model": Payload(), "config": {}}, out / "checkpoint-last.pt")
    assert main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'checkpoint-last.pt'}: cannot load checkpoint" in err and "\n" == err[-1]
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    save_atomic({"model": {"w": torch.ones(1000)}, "config": {}}, tmp_path / "c.pt")
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c\.pt: cannot load checkpoint \("):
        load_checkpoint(tmp_path / "c.pt")


class Foreign:  # a class of the user's, pickled into a checkpoint
    pass


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\n", "not a PyTorch checkpoint file: Unsupported operand 10"),
        (b"hello, not a checkpoint", "not a PyTorch checkpoint file: KeyError"),
        ("object", "it holds Python objects, which weights-only loading refuses: Unsupported global: GLOBAL "),
        ("truncated", "truncated or damaged file: PytorchStreamReader failed reading zip archive"),
    ],
    ids=["empty", "newline", "text", "pickled-object", "truncated"],
)
def test_an_unloadable_checkpoint_says_why_in_one_line_without_suggesting_unsafe_loading(tmp_path, content, reason):
    path = tmp_path / "c.pt"
    if content in ("object", "truncated"):
        torch.save({"model": Foreign(), "w": torch.ones(1000)}, path)
        if content == "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"{path}: cannot load checkpoint ({reason}") and "\n" not in message
    assert "weights_only" not in message  # torch's advice to load with weights_only=False is not passed on


def test_failed_write_leaves_the_old_checkpoint_and_no_temp_file(tmp_path):
    save_atomic({"v": 1}, tmp_path / "c.pt")

    class Unsaveable:
        def __reduce__(self):
            raise KeyboardInterrupt  # as a signal arriving in the middle of torch.save

    with pytest.raises(KeyboardInterrupt):
        save_atomic({"v": Unsaveable()}, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True) == {"v": 1}
    assert temp_files(tmp_path) == []


def test_export_says_when_it_takes_the_last_checkpoint(fmnist_dir, tmp_path, capsys):
    run = tmp_path / "run"
    fit(tiny_config(fmnist_dir), run, log=QUIET)
    (run / "checkpoint-best.pt").unlink()
    assert main(["export", str(run), "--out", str(tmp_path / "m.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "has no checkpoint-best.pt" in err and "using checkpoint-last.pt" in err and err.count("\n") == 1
