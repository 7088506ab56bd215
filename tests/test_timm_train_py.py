"""The lines docs/api.md adds to timm's train.py, in a loop built the way train.py builds it: timm's create_dataset
and create_loader (``num_aug_splits``, the prefetcher on and off), the task from create_task, LoopMixer where
``mixup_fn`` sits, EMA, CheckpointSaver and resume. Two steps per method, with and without MixUp/CutMix.

Lines marked ``# + accord`` are the ones the docs add; the rest is train.py's own logic, reduced to what runs here.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest
import timm
import torch
from timm.data import create_dataset, create_loader
from timm.optim import create_optimizer_v2
from timm.task import load_task_ema_checkpoint, resume_task_checkpoint
from timm.utils import CheckpointSaver, random_seed
from timm_patch import apply, changes, diff_block

from accord.losses import METHODS
from accord.step import NonFiniteLossError, find_step
from accord.timm_loop import LoopMixer, MultiViewDataset, add_view_arguments, create_task, task_options  # + accord

CASES = [
    (method, mix, prefetcher)
    for method in METHODS
    for mix in (("", "mixup-cutmix") if METHODS[method].mixing is not None else ("",))
    for prefetcher in (True, False)
]
MIX_FLAGS = {"": [], "mixup-cutmix": ["--mixup", "0.8", "--cutmix", "1.0"], "cutmix": ["--cutmix", "1.0"]}


def timm_parser() -> argparse.ArgumentParser:
    """The part of train.py's parser these lines touch, with its defaults (``--smoothing`` 0.1, ``--seed`` 42)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet10t")
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--aug-splits", type=int, default=0)
    parser.add_argument("--jsd-loss", action="store_true", default=False)
    parser.add_argument("-b", "--batch-size", type=int, default=4)
    parser.add_argument("--no-prefetcher", action="store_false", dest="prefetcher", default=True)
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--mixup", type=float, default=0.0)
    parser.add_argument("--cutmix", type=float, default=0.0)
    parser.add_argument("--mixup-prob", type=float, default=1.0)
    parser.add_argument("--mixup-switch-prob", type=float, default=0.5)
    parser.add_argument("--model-ema-decay", type=float, default=0.9)
    parser.add_argument("--torchcompile", nargs="?", type=str, default=None, const="inductor")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log-interval", type=int, default=1)
    parser.add_argument("--output", default="")
    parser.add_argument("--resume", default="")
    add_view_arguments(parser)  # + accord
    return parser


def timm_args(method: str, mix: str, prefetcher: bool, out: Path, resume: str = "", extra=()) -> argparse.Namespace:
    flags = ["--aug-splits", str(METHODS[method].views or 2), "--view-loss", method, *MIX_FLAGS[mix]]
    flags += [] if prefetcher else ["--no-prefetcher"]
    out.mkdir(parents=True, exist_ok=True)  # train.py's get_outdir
    return timm_parser().parse_args([*flags, "--output", str(out), "--resume", resume, *extra])


def views_dataset(args: argparse.Namespace, root: Path) -> MultiViewDataset:
    """train.py's training set with the documented wrap, its views set by create_loader (seeded as train.py seeds)."""
    random_seed(args.seed, 0)
    dataset_train = create_dataset("", root=str(root / "train"), is_training=True)
    dataset_train = MultiViewDataset(
        dataset_train, args.aug_splits, method=args.view_loss, seed=args.seed, pipelines=args.view_pipelines
    )  # + accord
    create_loader(dataset_train, input_size=(3, 32, 32), batch_size=4, is_training=True, use_prefetcher=False,
                  num_aug_splits=args.aug_splits, num_workers=0, persistent_workers=False)  # fmt: skip
    return dataset_train


def train(
    args: argparse.Namespace, root: Path, steps: int = 2, poison: int = 0, epochs: int = 1
) -> tuple[int, list[dict]]:
    """train.py's main() and train_one_epoch(), in order; returns the epoch the run ended on and each step's result.
    ``poison``: that step's input is NaN (a run that diverges there); ``epochs``: the run's length (after a resumed
    checkpoint's epoch), for the weight schedules (one epoch is trained)."""
    device = torch.device("cpu")
    random_seed(args.seed, 0)
    model = timm.create_model(args.model, num_classes=args.num_classes)
    num_aug_splits = args.aug_splits
    dataset_train = create_dataset("", root=str(root / "train"), is_training=True)
    mixup_active = args.mixup > 0 or args.cutmix > 0
    mixup_args = dict(
        mixup_alpha=args.mixup,
        cutmix_alpha=args.cutmix,
        cutmix_minmax=None,
        prob=args.mixup_prob,
        switch_prob=args.mixup_switch_prob,
        mode="batch",
        label_smoothing=args.smoothing,
        num_classes=args.num_classes,
    )
    collate_fn = mixup_fn = None
    assert not (mixup_active and not args.view_loss)  # timm's own Mixup paths are not under test here
    if num_aug_splits > 1:
        dataset_train = MultiViewDataset(
            dataset_train, num_aug_splits, method=args.view_loss, seed=args.seed, pipelines=args.view_pipelines
        )  # + accord
    loader_train = create_loader(
        dataset_train,
        input_size=(3, 32, 32),
        batch_size=args.batch_size,
        is_training=True,
        use_prefetcher=args.prefetcher,
        num_aug_splits=num_aug_splits,
        collate_fn=collate_fn,
        device=device,
        num_workers=0,
        persistent_workers=False,
    )
    task = create_task(args.view_loss, model, **task_options(args), device=device, verbose=True)  # + accord
    if args.view_loss and mixup_active:  # + accord
        mixup_fn = LoopMixer(task, **mixup_args)  # + accord
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.01, momentum=0.9)
    resume_epoch = (
        resume_task_checkpoint(task, args.resume, optimizer=optimizer, log_info=False) if args.resume else None
    )
    task.setup_ema(decay=args.model_ema_decay)
    if args.resume:
        load_task_ema_checkpoint(task, args.resume)
    if args.torchcompile:
        task.compile(backend=args.torchcompile)
    saver = CheckpointSaver(
        model=task.get_trainable_module(),
        optimizer=optimizer,
        args=args,
        checkpoint_dir=args.output,
        recovery_dir=args.output,
        task=task,
    )
    epoch = 0 if resume_epoch is None else resume_epoch
    num_epochs = epoch + epochs
    if args.view_loss:  # + accord
        task.set_schedule(num_epochs * len(loader_train), epoch * len(loader_train))  # + accord
    task.get_trainable_module().train()
    results = []
    for step, (input, target) in enumerate(loader_train, start=1):  # train_one_epoch
        raw = input.clone()
        if not args.prefetcher:
            input, target = input.to(device=device), target.to(device=device)
            if mixup_fn is not None:
                input, target = mixup_fn(input, target)
        if args.prefetcher and mixup_fn is not None:  # + accord
            input, target = mixup_fn(input, target)  # + accord
        if step == poison:
            input = input * float("nan")
        result = task(input, target)
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        task.update_ema(step=step)
        results.append({k: v.detach() for k, v in result.items()} | {"input": input, "raw": raw})
        if step == steps:
            break
    output_dir = args.output
    if args.view_loss:  # + accord
        task.write_terms(epoch, output_dir)  # + accord
    saver.save_checkpoint(epoch, metric=float(epoch))
    return epoch, results


@pytest.mark.parametrize(("method", "mix", "prefetcher"), CASES)
def test_timm_train_py_with_the_documented_lines(method, mix, prefetcher, imagefolder_dir, tmp_path, one_thread):
    assert train(timm_args(method, mix, prefetcher, tmp_path), imagefolder_dir)[0] == 0
    last = tmp_path / "last.pth.tar"
    state = torch.load(last, weights_only=False)
    assert {"state_dict", "state_dict_ema", "args"} <= set(state)
    assert state["task_state"]["method"] == method
    assert ("criterion" in state["task_state"]) == (method == "agmax")  # the Q head travels with the checkpoint
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    assert train(timm_args(method, mix, prefetcher, resumed, resume=str(last)), imagefolder_dir)[0] == 1


def test_the_wrong_split_count_stops_before_the_first_step(imagefolder_dir):
    data = create_dataset("", root=str(imagefolder_dir / "train"), is_training=True)
    with pytest.raises(ValueError, match=r"'tied' takes 2 views per image, got 3 \(timm: --aug-splits 2\)"):
        MultiViewDataset(data, 3, method="tied")


def test_a_clean_first_method_gets_augmix_layout(imagefolder_dir):
    """JSD's first view is the clean image (timm's AugMixDataset): view 1 only normalised after the shared crop."""
    data = MultiViewDataset(create_dataset("", root=str(imagefolder_dir / "train")), 3, method="jsd")
    loader = create_loader(
        data,
        (3, 32, 32),
        4,
        is_training=True,
        num_aug_splits=3,
        auto_augment="augmix-m5-w3",
        use_prefetcher=False,
        num_workers=0,
        persistent_workers=False,
    )
    views = data.transform
    assert views.shared is not None and len(views.transforms) == 3 and views.transforms[1] is views.transforms[2]
    images, target = next(iter(loader))
    assert images.shape == (4, 3, 3, 32, 32) and target.shape == (4,)  # torch's default collate: (B, V, C, H, W)


def test_the_documented_patch_is_at_most_twelve_lines():
    """docs/api.md's lines for timm's train.py: the count it states, no more than a dozen, each placed by a quote."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    block = diff_block(doc)
    added = [line for line in block if line.startswith("+")]
    changed = [line for line in block if line.startswith("-")]
    assert (len(added), len(changed)) == (12, 2) and len(added) <= 12
    assert "Twelve lines (ten added, two changed)" in doc
    assert any("LoopMixer(task, **mixup_args)" in line for line in added)
    assert all(change.anchor for change in changes(block))  # every change says where, in timm's own words


def test_an_anchor_that_occurs_twice_is_refused():
    """The check the real file gets: ``if mixup_active:`` alone occurs three times in train.py."""
    train_py = "if mixup_active:\n    a = 1\ncollate_fn = None\nif mixup_active:\n    b = 2\n"
    block = [" # 1. at `if mixup_active:`", "-if mixup_active:", "+if mixup_active and not args.view_loss:"]
    with pytest.raises(ValueError, match="occurs 2 times"):
        apply(train_py, block)
    block[0] = " # 1. at `collate_fn = None` / `if mixup_active:`"
    assert apply(train_py, block).splitlines()[3] == "if mixup_active and not args.view_loss:"


@pytest.mark.skipif(not os.environ.get("ACCORD_TIMM_TRAIN_PY"), reason="set ACCORD_TIMM_TRAIN_PY to timm's train.py")
def test_the_documented_lines_apply_to_timms_train_py(tmp_path):
    """Every anchor of the doc occurs once in the real train.py, and the patched file compiles."""
    source = Path(os.environ["ACCORD_TIMM_TRAIN_PY"]).read_text()
    patched = apply(source)
    compile(patched, "train.py", "exec")
    assert len(patched.splitlines()) - len(source.splitlines()) == 10  # ten added, two changed in place


def first_views(method: str, seed: int, root: Path, n: int = 6) -> list[torch.Tensor]:
    args = timm_parser().parse_args(["--aug-splits", "2", "--view-loss", method, "--seed", str(seed)])
    data = views_dataset(args, root)
    data.set_epoch(0)  # train.py's _set_loader_epoch
    return [data[i][0] for i in range(n)]


def accord_views(seed: int, fmnist_dir: Path, n: int = 6) -> list[torch.Tensor]:
    from accord.config import load_config
    from accord.engine import build_run

    cfg = load_config("FashionMNIST-ResNet8-standard-agmax", {"data_dir": str(fmnist_dir), "seed": seed})
    run = build_run(cfg, torch.device("cpu"))
    run.train_set.set_epoch(0)
    return [torch.stack(list(run.train_set[i][0])) for i in range(n)]


@pytest.mark.parametrize("path", ["timm", "accord"])
def test_the_loop_seed_reaches_the_views(path, imagefolder_dir, fmnist_dir, one_thread):
    """Two seeds give different views of the same images, one seed the same views, in timm's loop and accord's."""
    views = (lambda s: first_views("agmax", s, imagefolder_dir)) if path == "timm" else (
        lambda s: accord_views(s, fmnist_dir))  # fmt: skip
    one, again, two = views(1), views(1), views(2)
    assert all(torch.equal(a, b) for a, b in zip(one, again, strict=True))
    assert sum(torch.equal(a, b) for a, b in zip(one, two, strict=True)) == 0


def one_step_loss(method: str, root: Path, out: Path, extra=()) -> float:
    _, results = train(timm_args(method, "", True, out, extra=extra), root, steps=1)
    return float(results[0]["loss"])


def test_the_method_keeps_its_own_smoothing_unless_asked(imagefolder_dir, tmp_path, one_thread):
    """timm's --smoothing default (0.1) is not applied: ce and ls differ; --smoothing given applies to both."""
    ce, ls = (one_step_loss(m, imagefolder_dir, tmp_path / m) for m in ("ce", "ls"))
    assert ce != ls  # the same batch and weights: only the smoothing differs (0 and 0.1)
    asked = [one_step_loss(m, imagefolder_dir, tmp_path / f"{m}-asked", ["--smoothing", "0.1"]) for m in ("ce", "ls")]
    assert asked[0] == pytest.approx(asked[1], abs=1e-6) == ls  # the same smoothing, the same step (bound: float32)
    task = create_task(
        "agmax", timm.create_model("resnet10t", num_classes=3), **task_options(timm_args("agmax", "", True, tmp_path))
    )
    assert find_step(task.get_trainable_module()).criterion.label_smoothing == 0.0


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].views is not None])
def test_the_terms_reach_the_log_and_a_csv_beside_the_summary(method, imagefolder_dir, tmp_path, caplog, one_thread):
    import csv
    import logging

    with caplog.at_level(logging.INFO):
        _, results = train(timm_args(method, "", True, tmp_path), imagefolder_dir)
    terms = [k for k in results[0] if k not in ("output", "input", "raw")]
    assert "loss" in terms and len(terms) >= 2  # the total and its parts (one for a control without agreement term)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Terms (")]
    assert any(all(f" {t} " in line for t in terms) for line in logged), logged
    rows = list(csv.DictReader((tmp_path / "terms.csv").open()))
    assert len(rows) == 1 and set(rows[0]) == {"epoch", *terms}
    assert float(rows[0]["loss"]) == pytest.approx(sum(float(r["loss"]) for r in results) / len(results), rel=1e-5)


def test_torchcompile_compiles_the_step(imagefolder_dir, tmp_path, one_thread):
    """--torchcompile (here the eager backend: dynamo traces, nothing is code-generated) runs the step compiled."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    args = timm_args("agmax", "", True, tmp_path, extra=["--torchcompile", "eager"])
    _, compiled = train(args, imagefolder_dir, steps=1)
    assert counters["stats"]["unique_graphs"] > 0
    _, eager = train(timm_args("agmax", "", True, tmp_path / "eager"), imagefolder_dir, steps=1)
    assert float(compiled[0]["loss"]) == pytest.approx(float(eager[0]["loss"]), abs=1e-5)


def test_a_non_finite_loss_stops_before_its_update(imagefolder_dir, tmp_path, one_thread):
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss by step 2: loss=nan"):
        train(timm_args("jsd", "", True, tmp_path), imagefolder_dir, steps=3, poison=2)
    assert not (tmp_path / "last.pth.tar").exists()  # nothing saved from the diverged run


def test_cutmix_without_the_prefetcher_is_cutmix(imagefolder_dir, tmp_path, one_thread):
    """--cutmix 1.0 --no-prefetcher pastes boxes (every pixel is its own image's or one partner's), never blends as
    MixUp with alpha 1 would."""
    from accord.timm_loop.batch import view_major

    _, results = train(timm_args("agmax", "cutmix", False, tmp_path), imagefolder_dir, steps=1)
    mixed, raw = results[0]["input"], view_major("agmax", results[0]["raw"], 2)
    assert mixed.shape == raw.shape == (8, 3, 32, 32)  # view-major: 2 views x 4 images
    pasted = 0
    for i in range(8):
        own = (mixed[i] == raw[i]).all(0)  # per pixel, over channels
        others = [j for j in range(8) if (mixed[i][:, ~own] == raw[j][:, ~own]).all()]
        assert own.all() or others, f"row {i} is a blend, not a paste"
        pasted += int(not own.all())
    assert pasted > 0


@pytest.mark.parametrize(("saved", "resumed"), [("agmax", "tied"), ("tied", "agmax")])
@pytest.mark.parametrize("resume_opt", [True, False])
def test_a_checkpoint_of_another_method_is_refused_in_one_line(saved, resumed, resume_opt, imagefolder_dir, tmp_path):
    train(timm_args(saved, "", True, tmp_path), imagefolder_dir, steps=1)
    task = create_task(resumed, timm.create_model("resnet10t", num_classes=3), num_views=2, verbose=False)
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.01) if resume_opt else None
    with pytest.raises(ValueError, match=rf"trained with --view-loss {saved}, this run has --view-loss {resumed}") as e:
        resume_task_checkpoint(task, str(tmp_path / "last.pth.tar"), optimizer=optimizer, log_info=False)
    assert "\n" not in str(e.value)


def test_a_checkpoint_without_the_loss_state_is_refused(imagefolder_dir, tmp_path):
    """A checkpoint with no method recorded (timm's own, or from before) and no Q head: AgMax would start it fresh."""
    train(timm_args("tied", "", True, tmp_path), imagefolder_dir, steps=1)
    state = torch.load(tmp_path / "last.pth.tar", weights_only=False)
    del state["task_state"]
    torch.save(state, tmp_path / "plain.pth.tar")
    task = create_task("agmax", timm.create_model("resnet10t", num_classes=3), verbose=False)
    with pytest.raises(ValueError, match="holds no loss state, not the agmax loss's"):
        resume_task_checkpoint(task, str(tmp_path / "plain.pth.tar"), optimizer=None, log_info=False)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--aug-splits", "3", "--jsd-loss", "--view-loss", "jsd"], "--view-loss and --jsd-loss both choose the loss"),
        (["--aug-splits", "2", "--view-loss", "agmx"], r"invalid choice: 'agmx' \(choose from 'ce', 'ls', 'agmax'"),
        (["--aug-splits", "3", "--view-loss", "tied"], "--view-loss tied takes 2 views per image: set --aug-splits 2"),
        (["--aug-splits", "3", "--view-loss", "jsd", "--mixup", "0.8"], r"method 'jsd' refuses MixUp/CutMix \(drop"),
        (["--aug-splits", "2", "--view-loss", "agmax", "--view-option", "dl_wieght=2"], "did you mean 'dl_weight'"),
        (["--view-bn", "split"], "--view-bn, --view-pipelines and --view-option need --view-loss"),
    ],
)
def test_bad_view_arguments_stop_at_parsing_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        timm_parser().parse_args(flags)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert re.search(message, err[-1]), err[-1]


def test_view_loss_help_lists_the_methods():
    text = timm_parser().format_help()
    assert all(name in text for name in METHODS)


def test_tied_gets_its_authors_batchnorm_or_one_warning(caplog):
    import logging

    make = lambda **kw: create_task("tied", timm.create_model("resnet10t", num_classes=3), **kw)  # noqa: E731
    assert find_step(make().get_trainable_module()).views.bn_mode == "separate"
    with caplog.at_level(logging.WARNING):
        assert find_step(make(bn_mode="concat").get_trainable_module()).views.bn_mode == "concat"
    assert [r.getMessage() for r in caplog.records] == [
        "tied with bn_mode=concat is not its authors' step (theirs: separate)"
    ]


def loader_batches(root: Path, batch_size: int = 4) -> int:
    """len(loader_train) of the harness's loader (drop_last, as timm's training loader)."""
    return len(create_dataset("", root=str(root / "train"), is_training=True)) // batch_size


def mse_weights(results: list[dict]) -> list[float]:
    """Tied-Augment's weight at each step, read from its terms: loss = ce + w * mse."""
    return [float((r["loss"] - r["ce"]) / r["mse"]) for r in results]


def test_a_tied_weight_schedule_follows_the_run_in_timms_loop(imagefolder_dir, tmp_path, one_thread):
    """--view-option schedule=linear: w = weight * (batches done) / (num_epochs * len(loader_train)), a resumed run
    going on from its epoch, as accord train's schedule follows its updates."""
    n = loader_batches(imagefolder_dir)
    flags = ["--view-option", "schedule=linear", "--view-option", "weight=2"]
    _, first = train(timm_args("tied", "", True, tmp_path, extra=flags), imagefolder_dir, steps=2, epochs=2)
    assert mse_weights(first) == pytest.approx([0.0, 2.0 * 1 / (2 * n)], abs=1e-5)
    resumed = tmp_path / "resumed"
    args = timm_args("tied", "", True, resumed, resume=str(tmp_path / "last.pth.tar"), extra=flags)
    _, later = train(args, imagefolder_dir, steps=1, epochs=1)  # epoch 1 of 2
    assert mse_weights(later) == pytest.approx([2.0 * n / (2 * n)], abs=1e-5)


def test_a_scheduled_weight_without_the_training_length_is_refused(imagefolder_dir):
    task = create_task("tied", timm.create_model("resnet10t", num_classes=3), schedule="warmup", verbose=False)
    task.get_trainable_module().train()
    with pytest.raises(ValueError, match=r"tied: the loss's weight follows a schedule.*task.set_schedule") as e:
        task(torch.randn(4, 3, 32, 32), torch.tensor([0, 1]))
    assert "\n" not in str(e.value)
    constant = create_task("tied", timm.create_model("resnet10t", num_classes=3), verbose=False)
    constant.get_trainable_module().train()
    assert torch.isfinite(constant(torch.randn(4, 3, 32, 32), torch.tensor([0, 1]))["loss"])


def test_weak_first_views_take_timms_crop_alone_then_its_whole_pipeline(imagefolder_dir):
    """--view-pipelines weak-first: view 1 is timm's (primary, final), the others (primary, secondary, final)."""
    data = MultiViewDataset(create_dataset("", root=str(imagefolder_dir / "train")), 2, method="tied",
                            pipelines="weak-first")  # fmt: skip
    loader = create_loader(data, (3, 32, 32), 4, is_training=True, num_aug_splits=2, auto_augment="rand-m9-n2",
                           use_prefetcher=False, num_workers=0, persistent_workers=False)  # fmt: skip
    weak, strong = data.transform.transforms
    assert len(weak.transforms) == 2 and len(strong.transforms) == 3  # timm's primary and final; all three
    assert weak.transforms[0] is strong.transforms[0] and weak.transforms[1] is strong.transforms[2]
    assert "RandAugment" in repr(strong.transforms[1]) and "RandAugment" not in repr(weak)
    images, _ = next(iter(loader))
    assert images.shape == (4, 2, 3, 32, 32)
    same = MultiViewDataset(create_dataset("", root=str(imagefolder_dir / "train")), 2, method="tied")
    create_loader(same, (3, 32, 32), 4, is_training=True, num_aug_splits=2, auto_augment="rand-m9-n2",
                  use_prefetcher=False, num_workers=0, persistent_workers=False)  # fmt: skip
    assert all("RandAugment" in repr(view) for view in same.transform.transforms)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--aug-splits", "3", "--view-loss", "jsd", "--view-pipelines", "weak-first"], "jsd's views have their own"),
        (["--view-pipelines", "weak-first"], "--view-pipelines and --view-option need --view-loss"),
        (["--aug-splits", "2", "--view-loss", "tied", "--view-pipelines", "strong"], "invalid choice: 'strong'"),
    ],
)
def test_bad_view_pipelines_stop_at_parsing_in_one_line(flags, message, capsys):
    with pytest.raises(SystemExit):
        timm_parser().parse_args(flags)
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_the_terms_file_of_another_writer_is_left_as_it_is(tmp_path, caplog):
    import logging

    from accord.timm_loop.terms import write_terms

    (tmp_path / "terms.csv").write_text("the user's own\n")
    with caplog.at_level(logging.WARNING):
        assert write_terms({"loss": 1.0}, 0, tmp_path) is None
    assert (tmp_path / "terms.csv").read_text() == "the user's own\n"
    assert "accord did not write" in caplog.text
    other = tmp_path / "other"
    other.mkdir()
    write_terms({"loss": 1.0}, 0, other)
    write_terms({"loss": 0.5}, 1, other)
    write_terms({"loss": 0.7}, 1, other)  # epoch 1 again (a resumed run): its row replaced
    assert (other / "terms.csv").read_text().splitlines() == ["epoch,loss", "0,1.0", "1,0.7"]
