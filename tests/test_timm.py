"""accord inside timm's own training loop: tasks, the multi-view dataset wrapper, the view-aware mixer and
examples/timm_train.py, all with timm's parts (create_model, create_dataset/create_loader, create_optimizer_v2,
create_scheduler_v2, the task's ModelEmaV3, CheckpointSaver)."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from timm.data import create_dataset, create_loader, create_transform
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.task import load_task_ema_checkpoint, resume_task_checkpoint
from timm.utils import CheckpointSaver
from torchvision.datasets import FakeData

import accord.models.cifar  # noqa: F401  (registers cifar_resnet8 with timm)
from accord.data import DataInfo
from accord.timm_loop import AgMaxTask, JsdTask, LoopMixer, MultiViewDataset, TiedAugmentTask, create_task, policy_views
from accord.views import collate_views

ROOT = Path(__file__).resolve().parents[1]
INFO = DataInfo("toy", num_classes=10, in_chans=1, image_size=28, mean=(0.5,), std=(0.5,), fixed_size=True)


def tiny_model() -> torch.nn.Module:
    return timm.create_model("cifar_resnet8", num_classes=10, in_chans=1)


def view_batch(num_views: int = 2, batch: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    data = FakeData(batch, (1, 28, 28), 10, random_offset=3)  # PIL images
    policies = ["crop-flip"] * num_views
    return collate_views(list(MultiViewDataset(data, policy_views(policies, INFO))))


def clone_params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], after: list[torch.nn.Parameter]) -> bool:
    return all(not torch.equal(b, p) for b, p in zip(before, after, strict=True))


def test_multiview_dataset_takes_pil_images():
    data = FakeData(4, (1, 28, 28), 10)  # torchvision's FakeData yields PIL images
    views = policy_views(["crop-flip", "crop-flip-randaug_2_14-cutout"], INFO)
    (v1, v2), label = MultiViewDataset(data, views)[0]
    assert v1.shape == v2.shape == (1, 28, 28) and v1.dtype == torch.float32 and isinstance(label, int)
    images, labels = collate_views([MultiViewDataset(data, views)[i] for i in range(4)])
    assert images.shape == (8, 1, 28, 28) and labels.shape == (4,)


def test_multiview_dataset_over_timm_create_dataset(imagefolder_dir):
    """timm's folder dataset (PIL) with one timm transform per view."""
    data = create_dataset("", root=str(imagefolder_dir / "train"), is_training=True)
    light = create_transform(32, is_training=True, scale=(0.5, 1.0))
    strong = create_transform(32, is_training=True, scale=(0.5, 1.0), auto_augment="rand-m9-n2", re_prob=0.5)
    views, label = MultiViewDataset(data, [light, strong])[0]
    assert [v.shape for v in views] == [(3, 32, 32)] * 2 and label in (0, 1, 2)


def test_timm_create_loader_sets_the_views_and_batches_view_major():
    """create_loader(num_aug_splits=2) assigns its (primary, secondary, final) pipeline to every view;
    fast_collate and the prefetcher give the view-major batch and repeated targets the tasks take."""
    data = MultiViewDataset(FakeData(8, (3, 40, 40), 3), num_views=2)
    loader = create_loader(
        data,
        (3, 32, 32),
        4,
        is_training=True,
        num_aug_splits=2,
        device=torch.device("cpu"),
        num_workers=0,
        persistent_workers=False,  # timm < 1.0.29 passes it on without workers, which torch refuses
    )
    images, target = next(iter(loader))
    assert images.shape == (8, 3, 32, 32) and images.dtype == torch.float32
    assert torch.equal(target[:4], target[4:])
    task = create_task("agmax", timm.create_model("resnet10t", num_classes=3), verbose=False)
    result = task(images, target)
    assert set(result) == {"loss", "output", "ce", "entropy", "l1"} and result["output"].shape == (8, 3)


def test_a_dataset_without_views_says_so():
    with pytest.raises(RuntimeError, match="no view transforms"):
        MultiViewDataset(FakeData(2, (1, 28, 28), 10))[0]


@pytest.mark.parametrize("method", ["agmax", "tied", "jsd", "ce"])
def test_task_in_a_loop_of_timm_parts(method, tmp_path, one_thread):
    """A few steps with timm's optimizer, scheduler, EMA and checkpoint saver; the loss's parameters train,
    the EMA copy holds them too, evaluation of the EMA uses its own weights, and a checkpoint restores them."""
    torch.manual_seed(0)
    task = create_task(method, tiny_model(), verbose=False)
    num_views = task.num_views
    task.setup_ema(decay=0.5)
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)
    scheduler, _ = create_scheduler_v2(optimizer, "cosine", num_epochs=1, step_on_epochs=False, updates_per_epoch=3)
    model = task.get_eval_model()
    criterion = task.get_trainable_module().criterion
    before_model, before_loss = clone_params(model), clone_params(criterion)
    images, labels = view_batch(num_views)
    task.train()
    for step in range(1, 4):
        result = task(images, labels)
        assert result["output"].shape == (num_views * 8, 10) and torch.isfinite(result["loss"])
        optimizer.zero_grad()
        result["loss"].backward()
        optimizer.step()
        task.update_ema(step=step)
        scheduler.step_update(num_updates=step)
    assert changed(before_model[-2:], list(model.parameters())[-2:])  # the classifier trained
    if method == "agmax":
        assert len(before_loss) == 4 and changed(before_loss, list(criterion.parameters()))  # the Q head trained
    assert set(result) >= {"loss", "output", "ce"}

    ema_model = task.get_eval_model(ema=True)
    assert task.has_ema() and ema_model is task.get_trainable_module(ema=True).module.model
    assert type(ema_model) is type(model) and ema_model is not model
    probe = images[:8]
    model.eval(), ema_model.eval()
    assert not torch.allclose(ema_model(probe), model(probe))  # the EMA weights, not the live ones

    saver = CheckpointSaver(task.get_trainable_module(), optimizer, checkpoint_dir=str(tmp_path), task=task)
    saver.save_checkpoint(0, metric=1.0)
    restored = create_task(method, tiny_model(), verbose=False)
    restored.setup_ema(decay=0.5)
    resume_task_checkpoint(restored, str(tmp_path / "last.pth.tar"), log_info=False)
    load_task_ema_checkpoint(restored, str(tmp_path / "last.pth.tar"))
    for ema in (False, True):
        for a, b in zip(
            restored.get_trainable_module(ema=ema).state_dict().values(),
            task.get_trainable_module(ema=ema).state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)
    state = torch.load(tmp_path / "last.pth.tar", weights_only=False)
    timm.create_model("cifar_resnet8", num_classes=10, in_chans=1).load_state_dict(state["state_dict"])  # timm keys
    assert state["task_state"]["method"] == method  # a resume with another --view-loss is refused in one line
    assert ("criterion" in state["task_state"]) == (method == "agmax")


def test_agmax_q_head_is_in_the_optimizer_and_clip_parameters():
    task = AgMaxTask(tiny_model(), verbose=False)
    q_head = set(map(id, task.get_trainable_module().criterion.parameters()))
    optimizer = create_optimizer_v2(task.get_trainable_module(), "sgd", lr=0.1)
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert q_head and q_head <= in_optimizer
    assert q_head <= set(map(id, task.get_clip_parameters()))


def test_tied_mixing_reaches_the_task_without_an_extra_argument():
    """LoopMixer sits where timm's mixup_fn does (same call, same return); fast_collate's repeated labels are taken,
    view 2 stays clean, and the task gets the mixed-feature target itself: the loss equals the explicit call's."""
    torch.manual_seed(0)
    images, labels = view_batch(2)
    task = TiedAugmentTask(tiny_model(), verbose=False)
    mixer = LoopMixer(task, mixup_alpha=0.0, cutmix_alpha=1.0, seed=0)
    input, target = mixer(images, labels.repeat(2))
    assert target.shape == (16, 10) and torch.equal(input[8:], images[8:])  # view 2 stays clean
    feature_mix = task._mixed.feature_mix
    assert feature_mix is not None
    result = task(input, target)
    assert set(result) == {"loss", "output", "ce", "mse"}
    explicit = task(input, target, feature_mix)
    assert torch.allclose(result["mse"], explicit["mse"])
    with pytest.raises(ValueError, match="blocks of 8 targets differ.*LoopMixer"):
        task(input, target)  # per-view targets that no view-aware mixer handed over
    with pytest.raises(ValueError, match="repeat|differ"):
        mixer(images, torch.arange(16) % 10)


def test_jsd_with_mixing_is_refused_when_the_mixer_is_built():
    task = JsdTask(tiny_model(), verbose=False)
    with pytest.raises(ValueError, match="'jsd' refuses MixUp/CutMix"):
        LoopMixer(task, mixup_alpha=0.8, cutmix_alpha=1.0)


def test_loop_mixer_takes_timm_mixup_args_and_agrees_with_the_task_on_smoothing():
    task = create_task("agmax", tiny_model(), smoothing=0.1, verbose=False)
    timm_args = dict(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5)
    LoopMixer(task, **timm_args, mode="batch", label_smoothing=0.1, num_classes=10)
    with pytest.raises(ValueError, match="label smoothing is the task's"):
        LoopMixer(task, **timm_args, label_smoothing=0.2)
    with pytest.raises(ValueError, match="mode='batch'"):
        LoopMixer(task, **timm_args, mode="pair")


def test_a_two_view_task_refuses_a_three_split_prefetcher_batch():
    """timm's --aug-splits 3 with a two-view method: fast_collate repeats the labels three times; the 12 rows split
    in two evenly, so only the targets show the batch is not two views of the same images."""
    data = MultiViewDataset(FakeData(8, (3, 40, 40), 8), num_views=3)
    data.dataset.targets = None
    labelled = _Relabelled(data)  # eight images, eight different labels
    loader = create_loader(
        labelled,
        (3, 32, 32),
        4,
        is_training=True,
        num_aug_splits=3,
        device=torch.device("cpu"),
        num_workers=0,
        persistent_workers=False,
    )
    images, target = next(iter(loader))
    assert images.shape == (12, 3, 32, 32) and target.shape == (12,)
    task = create_task("agmax", timm.create_model("resnet10t", num_classes=8), verbose=False)
    with pytest.raises(ValueError, match="agmax takes 2 views per image.*--aug-splits 2"):
        task(images, target)
    with pytest.raises(ValueError, match="'agmax' takes 2 views per image, got num_views=3"):
        create_task("agmax", timm.create_model("resnet10t", num_classes=8), num_views=3)
    with pytest.raises(ValueError, match="do not split"):
        task(images[:9], target[:9])
    loader = create_loader(  # --no-prefetcher: torch's default collate of the stacked views, (B, 3, C, H, W)
        labelled,
        (3, 32, 32),
        4,
        is_training=True,
        num_aug_splits=3,
        use_prefetcher=False,
        num_workers=0,
        persistent_workers=False,
    )
    images, target = next(iter(loader))
    assert images.shape == (4, 3, 3, 32, 32) and target.shape == (4,)
    with pytest.raises(ValueError, match=r"agmax takes 2 views per image: the batch has 3 \(timm: --aug-splits 2\)"):
        task(images, target)


class _Relabelled(torch.utils.data.Dataset):
    """A MultiViewDataset whose item ``i`` has label ``i`` (create_loader sets the views through ``transform``)."""

    def __init__(self, views: MultiViewDataset) -> None:
        self.views = views

    @property
    def transform(self):
        return self.views.transform

    @transform.setter
    def transform(self, value) -> None:
        self.views.transform = value

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int):
        return self.views[index][0], index


def test_every_registered_method_has_a_task_with_the_loss_own_defaults():
    """create_task builds ls and a method registered at run time; options are the loss's, by keyword."""
    import inspect

    from accord.losses import METHODS, AgMaxLoss, MethodSpec, ViewCrossEntropy, register

    for name in METHODS:
        task = create_task(name, tiny_model(), verbose=False)
        assert task.num_views == (METHODS[name].views or 1)
    agmax = create_task("agmax", tiny_model(), verbose=False).get_trainable_module().criterion
    assert agmax.dl_weight == inspect.signature(AgMaxLoss).parameters["dl_weight"].default
    assert create_task("ls", tiny_model(), verbose=False).get_trainable_module().criterion.label_smoothing == 0.1
    tied = create_task("tied", tiny_model(), verbose=False, weight=2.0, similarity="l1", smoothing=0.1)
    assert (tied.get_trainable_module().criterion.weight, tied.get_trainable_module().criterion.label_smoothing) == (
        2.0,
        0.1,
    )
    with pytest.raises(ValueError, match="no loss option 'dl_wieght'.*did you mean 'dl_weight'"):
        create_task("agmax", tiny_model(), dl_wieght=2.0)
    try:
        register(MethodSpec("ce-runtime", ViewCrossEntropy, "CE (registered at run time)"))
        task = create_task("ce-runtime", tiny_model(), num_views=2, verbose=False)
        task.train()
        assert torch.isfinite(task(*view_batch(2))["loss"])
        register(MethodSpec("no-smoothing", _PlainCE, "a loss without label smoothing"))
        assert create_task("no-smoothing", tiny_model(), smoothing=0.0, verbose=False)
        with pytest.raises(ValueError, match="'no-smoothing''s loss takes no label smoothing"):
            create_task("no-smoothing", tiny_model(), smoothing=0.1)
    finally:
        METHODS.pop("ce-runtime", None)
        METHODS.pop("no-smoothing", None)


class _PlainCE(torch.nn.Module):
    def forward(self, logits, target, features=None):
        loss = torch.nn.functional.cross_entropy(logits, target.repeat(logits.shape[0] // target.shape[0]))
        return {"loss": loss}


def test_the_task_smooths_each_view_as_timm_losses_do():
    """--smoothing on the tasks: labels as timm's LabelSmoothingCrossEntropy, mixed targets as timm's
    SoftTargetCrossEntropy on Mixup's smoothed targets."""
    from timm.data.mixup import mixup_target
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    torch.manual_seed(0)
    logits, labels = torch.randn(8, 10, dtype=torch.float64), torch.arange(4)
    for method in ("agmax", "tied", "agmax-kl", "ce"):
        spec_loss = create_task(method, tiny_model(), num_views=2, smoothing=0.1, verbose=False)
        criterion = spec_loss.get_trainable_module().criterion.double()
        features = torch.randn(8, 6, dtype=torch.float64)
        ce = criterion(logits, labels, features)["ce"]
        assert torch.allclose(ce, LabelSmoothingCrossEntropy(0.1)(logits, labels.repeat(2))), method
        soft = mixup_target(labels.repeat(2), 10, lam=0.7, smoothing=0.0).double()
        smoothed = mixup_target(labels.repeat(2), 10, lam=0.7, smoothing=0.1).double()
        ce = criterion(logits, soft, features)["ce"]
        assert torch.allclose(ce, SoftTargetCrossEntropy()(logits, smoothed)), method


def test_jsd_task_takes_timm_augmix_layout():
    task = JsdTask(tiny_model(), verbose=False)
    images, labels = view_batch(3)
    result = task(images, labels.repeat(3))
    assert set(result) == {"loss", "output", "ce", "jsd"} and result["output"].shape == (24, 10)


def _ddp_worker(rank: int, init: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same initial weights in both processes
        task = AgMaxTask(tiny_model(), verbose=False).prepare_distributed()
        images, labels = view_batch(2, batch=8)
        half = slice(4 * rank, 4 * rank + 4)  # each process its own half of every view
        mine = torch.cat([images[:8][half], images[8:][half]])
        loss = task(mine, labels[half])["loss"]
        loss.backward()
        q_head = task.get_trainable_module().module.criterion.q_head
        terms = task.write_terms(0, None)  # every process calls it; timm's output_dir is None beside the primary
        torch.save([[p.grad for p in q_head.parameters()], float(loss), terms], f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_prepare_distributed_averages_the_q_head_too(tmp_path, one_thread):
    """DDP wraps the model and the loss together: both processes end the step with the same Q-head gradient
    although each saw other images; the epoch's terms (write_terms) are the mean over both processes."""
    import torch.multiprocessing as mp

    out = str(tmp_path / "grads")
    mp.spawn(_ddp_worker, args=(f"file://{tmp_path / 'rendezvous'}", out), nprocs=2)
    (first, loss_0, terms_0), (second, loss_1, terms_1) = (torch.load(f"{out}.{r}", weights_only=False) for r in (0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert any(bool(g.abs().sum() > 0) for g in first)
    assert loss_0 != loss_1 and terms_0 == terms_1
    assert terms_0["loss"] == pytest.approx((loss_0 + loss_1) / 2, rel=1e-6)


def test_a_task_in_eval_mode_points_to_the_eval_model():
    task = create_task("ce", tiny_model(), num_views=2, verbose=False).eval()
    with pytest.raises(RuntimeError, match="get_eval_model"):
        task(*view_batch(2))


def test_tied_task_takes_the_similarity_terms_of_the_loss():
    task = TiedAugmentTask(timm.create_model("resnet10t", num_classes=10, in_chans=1), similarity="cosine")
    x, y = torch.randn(8, 1, 32, 32), torch.arange(4) % 10
    out = task(x, y)
    assert "cosine" in out and torch.isfinite(out["loss"])
