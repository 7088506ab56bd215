"""Views never touch the caller's random state, and a plain loop sees new views every epoch."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from accord.data import DataInfo, TensorImageDataset
from accord.views import ViewDataset, build_multiview_transform, collate_views

RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)


def _data(n: int = 16) -> TensorImageDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return TensorImageDataset(images, torch.arange(n))


def _transform():
    return build_multiview_transform(["crop-flip", "crop-flip-randaug_2_14"], RGB)


def test_indexing_leaves_the_global_rng_alone() -> None:
    for seed in (0, None):
        ds = ViewDataset(_data(), _transform(), seed=seed)
        torch.manual_seed(7)
        before = torch.get_rng_state()
        ds[3], ds[5]
        assert torch.equal(torch.get_rng_state(), before), seed


def test_a_workers_0_epoch_leaves_the_global_rng_alone() -> None:
    ds = ViewDataset(_data(), _transform(), seed=0)
    loader = DataLoader(ds, batch_size=4, num_workers=0, collate_fn=collate_views,
                        generator=torch.Generator().manual_seed(1), shuffle=True)  # fmt: skip
    torch.manual_seed(7)
    expected = torch.rand(3)  # what the caller draws next, had no epoch run in between
    torch.manual_seed(7)
    for _ in loader:
        pass
    assert torch.equal(torch.rand(3), expected)


def test_readme_loop_sees_new_views_every_epoch() -> None:
    """The README's loop: no seed, no set_epoch, shuffle=True."""
    loader = DataLoader(ViewDataset(_data(), _transform()), batch_size=16, shuffle=False, collate_fn=collate_views)
    first, _ = next(iter(loader))
    second, _ = next(iter(loader))
    assert first.shape == second.shape == (32, 3, 32, 32)
    assert not torch.equal(first, second)


def test_readme_loop_sees_new_views_every_epoch_with_workers() -> None:
    loader = DataLoader(ViewDataset(_data(8), _transform()), batch_size=8, num_workers=2, collate_fn=collate_views)
    first, _ = next(iter(loader))
    second, _ = next(iter(loader))
    assert not torch.equal(first, second)


def test_a_seeded_dataset_repeats_its_views_for_an_epoch() -> None:
    a, b = ViewDataset(_data(), _transform(), seed=3), ViewDataset(_data(), _transform(), seed=3)
    torch.manual_seed(1)
    x = a[2][0]
    torch.manual_seed(2)
    assert all(torch.equal(u, v) for u, v in zip(x, b[2][0], strict=True))
