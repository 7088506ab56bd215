"""One training step for every path: ``accord train``, timm's loop (the task) and ``accord bench`` run the same step.

The same batch and the same weights go to the step as each path builds and runs it, for every registered method; the
loss terms, the gradients and the updated parameters must be identical. Identical, not close: the three paths call
one module (:class:`accord.step.ViewStep`) on the same tensors on one thread, so equality holds by construction, and
any difference is a path that assembles the step differently (another BatchNorm mode, smoothing, loss option).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from accord.bench.steps import BenchConfig, bench_update, build_training
from accord.config import load_config
from accord.engine import EpochSetup, build_run, train_one_epoch
from accord.engine.trainer import _train_step
from accord.losses import METHODS
from accord.step import ViewStep, find_step
from accord.timm import LoopMixer, create_task

MIX_SEED = 7
TINY = {"batch_size": 8, "lr_batch": 8, "eval_batch_size": 100, "workers": 0, "log_interval": 1, "epochs": 1}
LR = 0.1


def run_trainer(run, x: Tensor, y: Tensor) -> tuple[dict[str, float], list[nn.Module]]:
    """The step as ``accord train`` builds (``_train_step``) and runs it (``train_one_epoch``, its MixUp/CutMix
    included), on one batch."""
    step = _train_step(run)
    optimizer = torch.optim.SGD([*run.model.parameters(), *run.criterion.parameters()], lr=LR)
    if run.mixer is not None:
        run.mixer.rng = np.random.default_rng(MIX_SEED)
    setup = EpochSetup(torch.device("cpu"), mixer=run.mixer, log_interval=1)
    stats = train_one_epoch(step, [(x, y)], optimizer, setup, log=print)
    return stats, [run.model.model, run.criterion]  # the epoch's means of one step: that step's terms


def run_task(run, method: str, x: Tensor, y: Tensor) -> tuple[dict[str, float], list[nn.Module]]:
    """The step as the timm task builds it (``create_task``) and timm's loop runs it."""
    cfg = run.cfg
    net = copy.deepcopy(run.model.model)
    task = create_task(
        method, net, num_views=cfg.views.num_views, bn_mode=cfg.model.bn, verbose=False, **cfg.method.loss
    )
    step = find_step(task.get_trainable_module())
    assert isinstance(step, ViewStep)
    step.criterion.load_state_dict(run.criterion.state_dict())
    optimizer = torch.optim.SGD(task.get_trainable_module().parameters(), lr=LR)
    task.train()
    if cfg.views.mix != "none":  # where timm's mixup_fn sits, with the trainer's mixing arguments
        mix, v = cfg.views.mix, cfg.views
        alphas = {"mixup_alpha": v.mixup_alpha if "mixup" in mix else 0.0, "cutmix_alpha": v.cutmix_alpha}
        mixer = LoopMixer(task, **alphas, prob=v.mix_prob, switch_prob=v.switch_prob)
        mixer.mixer.rng = np.random.default_rng(MIX_SEED)
        mixed, y = mixer(x, y)
        assert not torch.equal(mixed, x)  # this batch is mixed (the trainer's, with the same draws, too)
        x = mixed
    result = task(x, y)
    optimizer.zero_grad()
    result["loss"].backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in result.items() if k != "output"}, [step.model, step.criterion]


def run_bench(run, method: str, x: Tensor, y: Tensor) -> tuple[dict[str, float], list[nn.Module]]:
    """The step as ``accord bench`` builds (``build_training``) and times it (``bench_update``)."""
    cfg = run.cfg
    bench = BenchConfig(model=cfg.model.model, num_classes=run.info.num_classes, channels=run.info.in_chans)
    step, _ = build_training(bench, method, cfg.views.num_views, cfg.model.bn, torch.device("cpu"))
    step.model.load_state_dict(run.model.model.state_dict())
    step.criterion.load_state_dict(run.criterion.state_dict())
    assert dict(step.criterion.state_dict()).keys() == dict(run.criterion.state_dict()).keys()
    optimizer = torch.optim.SGD(step.parameters(), lr=LR)
    terms = bench_update(step, optimizer, x, y)
    return {k: float(v) for k, v in terms.items()}, [step.model, step.criterion]


def tensors(modules: list[nn.Module]) -> dict[str, Tensor]:
    """Every parameter and its gradient, by name (model first, then the loss)."""
    out = {}
    for i, module in enumerate(modules):
        for name, p in module.named_parameters():
            out[f"{i}.{name}"] = p.detach().clone()
            out[f"{i}.{name}.grad"] = p.grad.detach().clone() if p.grad is not None else torch.zeros(())
    return out


CASES = [(m, mix) for m in METHODS for mix in (("none", "mixup-cutmix") if METHODS[m].mixing else ("none",))]


@pytest.mark.parametrize(("method", "mix"), CASES)
def test_every_path_runs_the_same_step(method, mix, fmnist_dir, one_thread):
    """Every registered method, unmixed and (where it mixes) with MixUp/CutMix: Tied-Augment's view 2 features are
    mixed by the step. The bench times unmixed steps only."""
    overrides = {**TINY, "data_dir": str(fmnist_dir), "method": method, "mix": mix}
    cfg = load_config("FashionMNIST-ResNet8-standard", overrides)
    results = {}
    for path in ("train", "timm", "bench") if mix == "none" else ("train", "timm"):
        torch.manual_seed(0)
        run = build_run(cfg, torch.device("cpu"))  # the same seed: the same weights (and Q head) every time
        views = cfg.views.num_views
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(views * 4, run.info.in_chans, 28, 28, generator=gen)
        y = torch.randint(0, run.info.num_classes, (4,), generator=gen)
        if path == "train":
            results[path] = run_trainer(run, x, y)
        elif path == "timm":
            results[path] = run_task(run, method, x, y)
        else:
            results[path] = run_bench(run, method, x, y)
    terms = results["timm"][0]  # the loss's terms (the trainer's stats add top-1 and timings)
    assert "loss" in terms and len(terms) >= 2 or method in ("ce", "ls")
    reference = tensors(results["train"][1])
    for path in [p for p in results if p != "train"]:
        other_terms, other_modules = results[path]
        assert {k: results["train"][0][k] for k in terms} == other_terms == terms, path
        got = tensors(other_modules)
        assert got.keys() == reference.keys()
        for name, value in reference.items():
            assert torch.equal(got[name], value), f"{path}: {name}"  # exact: one module, the same ops, one thread


@pytest.mark.parametrize("method", list(METHODS))
def test_every_path_compiles_by_one_rule(method, fmnist_dir):
    """``compile: true``, timm's ``--torchcompile`` and ``accord bench --compile``: the model always, the loss unless
    its weights follow a schedule (a float that changes every step would recompile it each time)."""
    overrides = {**TINY, "data_dir": str(fmnist_dir), "method": method, "compile": True}
    cfg = load_config("FashionMNIST-ResNet8-standard", overrides)
    run = build_run(cfg, torch.device("cpu"))
    task = create_task(method, copy.deepcopy(run.model.model), num_views=cfg.views.num_views, verbose=False)
    task.compile(backend="eager")
    bench = BenchConfig(num_classes=10, channels=1, compile=True)
    steps = {
        "train": find_step(_train_step(run)),
        "timm": find_step(task.get_trainable_module()),
        "bench": build_training(bench, method, cfg.views.num_views, "concat", torch.device("cpu"))[0],
    }
    for path, step in steps.items():
        assert step is not None and step._compiled is not None, path
        model, loss = step._compiled
        assert model is not step.views, path
        assert (loss is step.criterion) == METHODS[method].progress, path


def test_only_the_step_module_assembles_model_and_loss():
    """A ``ViewStep`` (model + loss) and its DDP wrapper are made in ``accord.step`` alone; the engine, the timm task
    and the bench reach them through ``build_step``."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "accord"
    makers = {"ViewStep", "DistributedDataParallel", "DDP"}
    users = set()
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        where = path.relative_to(package).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                assert name not in makers or where.startswith("step/"), f"{where}:{node.lineno} builds {name}"
                users |= {where.split("/")[0]} if name == "build_step" else set()
    assert {"engine", "timm", "bench"} <= users
