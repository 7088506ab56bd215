"""A run built from a config: data splits, views, model, loss, mixing, and the loaders of an epoch.

Under several processes (see :mod:`.trainer`) ``batch_size`` is the global batch: each process loads its
share of every step's images (:class:`~.sampling.EpochSampler`) and of the evaluation sets.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..config import Config, ConfigError, resolved
from ..data import DataInfo, build_splits
from ..data.loading import data_loader
from ..logs import logger
from ..losses import create_loss
from ..losses.mixing_rule import check_mixing
from ..models import MultiViewModel, create_model
from ..models.init import init_weights
from ..models.sync_batchnorm import convert_sync_batchnorm
from ..views import ViewDataset, ViewMixer, build_eval_transform, build_multiview_transform, collate_views
from .distributed import Distributed
from .sampling import EpochSampler, epoch_seed
from .signals import ignore_stop_signals


@dataclass
class Run:
    """Everything a training run is made of."""

    cfg: Config
    info: DataInfo
    model: MultiViewModel
    criterion: nn.Module
    train_set: ViewDataset
    val_set: ViewDataset
    test_set: ViewDataset
    device: torch.device
    mixer: ViewMixer | None
    views: nn.Module | None = None  # augment_on: device - makes the views of a uint8 batch on the device
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unreadable images dropped up front
    dist: Distributed = field(default_factory=Distributed)
    data: dict[str, Any] = field(default_factory=dict)  # the data identity (accord.data.identity), recorded


def build_model(cfg: Config, info: DataInfo) -> MultiViewModel:
    m = cfg.model
    try:
        net = create_model(m.model, info.num_classes, info.in_chans, m.drop_rate, m.drop_path_rate, m.pretrained_file)
    except ValueError as e:  # a pretrained file that does not fit, a model without drop-path
        raise ConfigError(str(e)) from None
    init_weights(net, m.init)
    return MultiViewModel(net, resolved(cfg.views.num_views, "num_views"), cfg.model.bn)


def data_info(cfg: Config, info: DataInfo) -> DataInfo:
    """``info`` with the config's evaluation crop and interpolation, and its own normalisation
    (``normalize_mean``/``normalize_std``) when it sets one."""
    info = dataclasses.replace(info, crop_pct=cfg.data.crop_pct, interpolation=cfg.data.interpolation)
    if cfg.data.normalize_mean is None:
        return info
    std = resolved(cfg.data.normalize_std, "normalize_std")  # resolution sets both or neither
    return dataclasses.replace(info, mean=cfg.data.normalize_mean, std=std)


def build_run(cfg: Config, device: torch.device | None = None, dist: Distributed | None = None) -> Run:
    """Seed, load the data and build the model and loss of ``cfg`` (a validated config); under ``dist``
    the model's BatchNorm layers become SyncBatchNorm when ``sync_bn`` is set."""
    dist = dist or Distributed()
    check_processes(cfg, dist)
    torch.manual_seed(cfg.run.seed)
    data = cfg.data
    splits = build_splits(
        data.dataset, data.data_dir, data.val_fraction, data.train_subset, cfg.run.seed, data.image_size,
        data.train_subset_per_class, data.val_source, data.crop_pct,
    )  # fmt: skip
    info = data_info(cfg, splits.info)
    model = build_model(cfg, info)
    criterion = create_loss(
        cfg.method.method, info.num_classes, resolved(cfg.views.num_views, "num_views"), **cfg.method.loss
    )
    init_weights(criterion, cfg.model.init)  # the AgMax authors re-draw the Q head with the backbone
    device = device or (dist.device if dist.enabled else None)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.run.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp: fp16 needs a CUDA device (it trains with a grad scaler); use amp: bf16 on the CPU")
    if cfg.model.sync_bn and dist.enabled:
        model = cast(MultiViewModel, convert_sync_batchnorm(model, device))  # a wrapper stays itself
    model.to(device)
    criterion.to(device)
    if cfg.run.channels_last:
        model.to(memory_format=torch.channels_last)
    mixer = _mixer(cfg, info)
    views, device_views = _train_views(cfg, info, device)
    evaluation = build_eval_transform(info)
    return Run(
        cfg=cfg,
        info=info,
        model=model,
        criterion=criterion,
        train_set=ViewDataset(splits.train, views, cfg.run.seed),
        val_set=ViewDataset(splits.val, evaluation, cfg.run.seed),
        test_set=ViewDataset(splits.test, evaluation, cfg.run.seed),
        device=device,
        mixer=mixer,
        views=device_views,
        skipped=splits.skipped,
        dist=dist,
        data=splits.identity,
    )


def _mixer(cfg: Config, info: DataInfo) -> ViewMixer | None:
    """The run's MixUp/CutMix (None for ``mix: none``)."""
    if cfg.views.mix == "none":
        return None
    mixing = check_mixing(cfg.method.method, "use mix: none")  # a config built by hand is not resolved
    return ViewMixer(
        info.num_classes,
        resolved(cfg.views.num_views, "num_views"),
        cfg.views.mix,
        mixing,
        resolved(cfg.views.mixup_alpha, "mixup_alpha"),
        cfg.views.cutmix_alpha,
        resolved(cfg.views.mix_prob, "mix_prob"),
        cfg.views.switch_prob,
    )


def _train_views(cfg: Config, info: DataInfo, device: torch.device) -> tuple[Callable, nn.Module | None]:
    """The training set's transform and, for ``augment_on: device``, the module making the views on the device."""
    policies = resolved(cfg.views.view_policies, "view_policies")
    if cfg.views.augment_on != "device":
        return build_multiview_transform(policies, info, cfg.views.same_crop), None
    from ..views.batched import BatchedViews, loader_transform

    device_views = BatchedViews(policies, info, cfg.views.same_crop).to(device)
    return loader_transform(policies, info, cfg.views.same_crop), device_views


def check_processes(cfg: Config, dist: Distributed) -> None:
    """What a config must allow to run on ``dist.world_size`` processes."""
    if not dist.enabled:
        return
    if cfg.optim.batch_size % dist.world_size:
        raise ConfigError(
            f"batch_size {cfg.optim.batch_size} is the global batch and must split evenly over "
            f"{dist.world_size} processes"
        )
    if cfg.run.nonfinite == "skip":
        raise ConfigError("nonfinite: skip runs in one process only (every process would have to skip the step)")


log = logger(__name__)
_warned_workers: set[int] = set()


def loader_workers(workers: int) -> int:
    """``workers`` bounded by the CPUs this process may use (more loader processes only contend and can
    exhaust memory); says so once in the log when it bounds."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers <= cpus:
        return workers
    if workers not in _warned_workers:
        _warned_workers.add(workers)
        log.warning("workers: %d is more than the %d CPUs here; using %d", workers, cpus, cpus)
    return cpus


def eval_loader(dataset: Dataset, cfg: Config, dist: Distributed | None = None) -> DataLoader:
    """Evaluation batches; under ``dist`` this process's share (every ``world_size``-th image)."""
    if dist is not None and dist.enabled:
        dataset = Subset(dataset, range(dist.rank, len(cast(Sized, dataset)), dist.world_size))
    batch, workers = cfg.run.eval_batch_size, loader_workers(cfg.data.workers)
    return data_loader(
        dataset, workers=workers, timeout=cfg.data.loader_timeout, batch_size=batch, collate_fn=collate_views
    )


def train_loader(run: Run, epoch: int, start_step: int = 0) -> DataLoader:
    """The training batches of ``epoch`` from batch ``start_step`` on (earlier ones are not loaded); under
    several processes, this process's share of each global batch.

    With ``accum_steps`` K, a batch is one update's images: this process's shares of K consecutive global
    micro-batches of ``batch_size`` (the loop splits them again), so every micro-batch holds the images that one
    process would put in it.
    """
    cfg, seed, dist = run.cfg, epoch_seed(run.cfg.run.seed, epoch), run.dist
    batch = cfg.optim.batch_size
    return data_loader(
        run.train_set,
        workers=loader_workers(cfg.data.workers),
        timeout=cfg.data.loader_timeout,
        batch_size=batch // dist.world_size * cfg.optim.accum_steps,
        sampler=EpochSampler(
            len(run.train_set),
            seed,
            start_step * cfg.optim.update_batch,
            rank=dist.rank,
            world_size=dist.world_size,
            batch_size=batch,
            drop_last=cfg.data.drop_last,
        ),
        drop_last=cfg.data.drop_last,
        collate_fn=collate_views,
        pin_memory=run.device.type == "cuda",
        generator=torch.Generator().manual_seed(seed),  # the workers' base seed; keeps torch's global RNG out
        worker_init_fn=ignore_stop_signals,
    )
