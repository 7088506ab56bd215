"""Tests for accord.views.batched: per-sample-random views of a whole batch, laid out as collate_views does."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from accord.data import DataInfo
from accord.views import build_eval_transform, parse_policy
from accord.views.batched import BatchedViews

GRAY = DataInfo("fashion_mnist", 10, 1, 28, (0.2860,), (0.3530,), fixed_size=True)
RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)
LARGE = DataInfo("imagefolder", 3, 3, 32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), fixed_size=False)


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(info: DataInfo, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    size = info.image_size
    return torch.randint(1, 256, (n, info.in_chans, size, size), dtype=torch.uint8, generator=g)


def _same_image(info: DataInfo, n: int) -> torch.Tensor:
    """``n`` copies of one image: any difference between outputs comes from per-sample draws."""
    return _images(info, 1).repeat(n, 1, 1, 1)


def _normalized(info: DataInfo, images: torch.Tensor) -> torch.Tensor:
    return torch.stack([build_eval_transform(info)(image) for image in images])


def _placement(original: torch.Tensor, view: torch.Tensor) -> tuple[int, int, bool] | None:
    """The crop offset ``(dy, dx)`` into the 4-px zero-padded image, and the flip, that turn ``original`` into
    ``view``; None when no crop of the padded image, flipped or not, equals the view exactly."""
    size, padded = original.shape[-1], F.pad(original, (4, 4, 4, 4))
    for flipped in (False, True):
        unflipped = view.flip(-1) if flipped else view  # the flip comes after the crop
        for dy in range(9):
            for dx in range(9):
                if torch.equal(padded[:, dy : dy + size, dx : dx + size], unflipped):
                    return dy, dx, flipped
    return None


# ---------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("info", [GRAY, RGB], ids=["gray28", "rgb32"])
def test_output_is_view_major_float(info: DataInfo) -> None:
    images = _images(info, 5)
    views = BatchedViews(["crop-flip", "crop-flip-cutout", "none"], info)(images)
    assert views.shape == (15, info.in_chans, info.image_size, info.image_size) and views.dtype == torch.float32
    # view 2 ("none") is rows [10, 15): the normalised images in batch order
    assert torch.allclose(views[10:], _normalized(info, images), atol=1e-6)


def test_none_views_are_normalized_copies_in_collate_layout() -> None:
    images = _images(RGB, 4)
    views = BatchedViews(["none", "none"], RGB)(images)
    expected = _normalized(RGB, images)  # ToDtype(scale=True) + Normalize, as the loader's pipeline does
    assert torch.allclose(views, torch.cat([expected, expected]), atol=1e-6)


@pytest.mark.numerics
def test_float_input_in_unit_range_gives_the_same_views() -> None:
    images = _images(RGB, 6)
    module = BatchedViews(["crop-flip", "crop-flip-cutout"], RGB)
    torch.manual_seed(3)
    from_uint8 = module(images)
    torch.manual_seed(3)
    from_float = module(images.float() / 255)
    assert torch.allclose(from_uint8, from_float, atol=1e-6)


# ---------------------------------------------------------------------------------------- content


@pytest.mark.numerics
def test_crop_and_flip_shift_and_mirror_the_image_over_zero_padding() -> None:
    torch.manual_seed(0)
    images = _images(RGB, 48)
    views = BatchedViews(["crop-flip"], RGB)(images)
    # undo the normalisation: the padding is black, as torchvision's RandomCrop(padding=4) pads a uint8 image
    mean, std = torch.tensor(RGB.mean).view(1, 3, 1, 1), torch.tensor(RGB.std).view(1, 3, 1, 1)
    pixels = ((views * std + mean) * 255).round().to(torch.uint8)
    placements = [_placement(image, view) for image, view in zip(images, pixels, strict=True)]
    assert None not in placements
    assert {flipped for _, _, flipped in placements} == {False, True}
    assert len({(dy, dx) for dy, dx, _ in placements}) > 10  # per-sample crops, not one offset for the batch


def test_crop_offsets_cover_the_whole_padding_range() -> None:
    torch.manual_seed(0)
    info = GRAY
    image = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    image[..., 12, 12] = 255  # one bright pixel: its position after the crop is 16 - offset
    views = BatchedViews(["crop"], info)(image.repeat(512, 1, 1, 1))
    bright = (views[:, 0] > 0).flatten(1).nonzero()[:, 1]
    rows, cols = bright // 28, bright % 28
    assert len(rows) == 512  # the pixel is never cropped away: the offset is at most the padding
    assert set(rows.tolist()) == set(range(8, 17)) and set(cols.tolist()) == set(range(8, 17))


@pytest.mark.parametrize(("info", "policy"), [(RGB, "cutout"), (GRAY, "crop-flip-cutout"), (RGB, "cutout_8")])
def test_cutout_erases_one_square_of_the_policies_side(info: DataInfo, policy: str) -> None:
    torch.manual_seed(0)
    white = torch.full((32, info.in_chans, info.image_size, info.image_size), 255, dtype=torch.uint8)
    views = BatchedViews([policy], info)(white)
    side = parse_policy(policy, info.image_size).cutout
    erased = (views == 0).all(dim=1)  # (B, H, W): zero on the normalised image, in every channel
    corners = set()
    for mask in erased:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert mask.sum() == side * side and len(rows) == side and len(cols) == side  # one full square
        corners.add((int(rows[0]), int(cols[0])))
    assert len(corners) > 10  # each image draws its own square


# ---------------------------------------------------------------------------------------- randomness


def test_images_of_one_batch_and_views_of_one_image_are_drawn_apart() -> None:
    torch.manual_seed(0)
    views = BatchedViews(["crop-flip", "crop-flip"], RGB)(_same_image(RGB, 32))
    first, second = views.chunk(2)
    assert len({tuple(v.flatten()[:200].tolist()) for v in first}) > 10
    assert sum(not torch.equal(a, b) for a, b in zip(first, second, strict=True)) > 20


def test_same_crop_shares_the_geometry_between_views() -> None:
    torch.manual_seed(0)
    images = _images(RGB, 16)
    shared = BatchedViews(["crop-flip", "crop-flip"], RGB, same_crop=True)(images)
    first, second = shared.chunk(2)
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="same_crop"):
        BatchedViews(["crop-flip", "flip"], RGB, same_crop=True)


def test_global_seed_and_saved_rng_state_repeat_the_views() -> None:
    module, images = BatchedViews(["crop-flip", "crop-flip-cutout"], RGB), _images(RGB, 8)
    torch.manual_seed(5)
    first = module(images)
    torch.manual_seed(5)
    assert torch.equal(module(images), first)
    state = torch.get_rng_state()  # what a checkpoint keeps: resuming from it repeats the next batch's views
    after = module(images)
    torch.set_rng_state(state)
    assert torch.equal(module(images), after)
    assert not torch.equal(after, first)


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "policy",
    ["crop-blur", "crop_3", "crop-flip-jitter_1", "randaugment", "randaug_2_14_p50", "randaug_2", "lighting_x"],
)
def test_malformed_tokens_are_refused_naming_them(policy: str) -> None:
    """The grammar's own one-line error, as the loader gives it."""
    token = policy.split("-")[-1]
    with pytest.raises(ValueError, match=re.escape(repr(token))):
        BatchedViews(["crop-flip", policy], RGB)


@pytest.mark.parametrize("policy", ["crop-flip-randaug_2_14_p0.5", "crop-flip-randaug_2_14_bilinear"])
def test_config_refuses_a_token_not_made_on_the_device_in_one_line(policy: str) -> None:
    """Whatever the loader accepts, a token the device path does not make is one line naming it."""
    from accord.config import ConfigError, load_config

    with pytest.raises(ConfigError) as error:
        load_config("FashionMNIST-ResNet8-standard-tied", {"augment_on": "device", "policy": policy})
    message = str(error.value)
    assert "\n" not in message and f"token '{policy.split('-')[-1]}'" in message and "augment_on: loader" in message


@pytest.mark.parametrize("policy", ["crop-flip-randaug_2_14", "trivialaug", "augmix_2", "autoaug_svhn", "randaug"])
def test_image_operations_are_drawn_per_image_on_the_device(policy: str) -> None:
    torch.manual_seed(0)
    views = BatchedViews([policy], RGB)(_same_image(RGB, 32))
    assert len({tuple(v.flatten().tolist()) for v in views}) > 10


def test_bad_cutout_large_images_and_wrong_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="cutout side"):
        BatchedViews(["cutout_32"], RGB)
    with pytest.raises(ValueError, match=r"expected the loader's crops \(2 views x B"):  # large: the loader crops
        BatchedViews(["crop-flip", "crop-flip"], LARGE)(_images(LARGE, 3))
    with pytest.raises(ValueError, match="at least one"):
        BatchedViews([], RGB)
    module = BatchedViews(["crop-flip"], RGB)
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 32, 32\)"):
        module(_images(GRAY, 2))
    with pytest.raises(ValueError, match=r"call \.to\(device\)"):
        module(torch.zeros(2, 3, 32, 32, device="meta"))


def test_training_with_views_on_the_device_runs_and_resumes_exactly(fmnist_dir, tmp_path, monkeypatch):
    """``augment_on: device``: the loader collates uint8 images, the views are made batch-wise on the device
    from torch's generator, which mid-epoch checkpoints hold, so a stopped run resumes to the same result."""
    import signal

    from interrupted_runs import assert_same_run, plant, send
    from test_train import metrics, tiny_config

    from accord.engine import fit, load_checkpoint
    from accord.engine.trainer import TrainingInterrupted

    cfg = tiny_config("FashionMNIST-ResNet8-cutout-tied", fmnist_dir, augment_on="device")
    fit(cfg, tmp_path / "whole", log=lambda _: None)
    records = metrics(tmp_path / "whole")
    assert records[-1]["train"]["loss"] < records[0]["train"]["loss"]
    with monkeypatch.context() as patch:
        plant(patch, at_call=4, action=send(signal.SIGTERM))
        with pytest.raises(TrainingInterrupted):
            fit(cfg, tmp_path / "cut", log=lambda _: None)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint-last.pt")["partial"] is not None
    fit(cfg, tmp_path / "cut", resume=True, log=lambda _: None)
    assert_same_run(tmp_path / "cut", tmp_path / "whole")
    loader_made = tiny_config("FashionMNIST-ResNet8-cutout-tied", fmnist_dir)
    fit(loader_made, tmp_path / "loader", log=lambda _: None)
    assert metrics(tmp_path / "loader") != records  # the device path really makes other views than the loader's


def test_device_views_take_image_operations_in_the_config():
    from accord.config import load_config

    cfg = load_config("FashionMNIST-ResNet8-randaugment-tied", {"augment_on": "device"})
    assert cfg.views.augment_on == "device"


def test_loader_of_device_views_gathers_a_batch_in_one_index_with_the_per_image_values() -> None:
    """``augment_on: device``'s loader transform draws nothing, so ViewDataset fetches a batch of an in-memory
    dataset (through nested Subsets) in one index: the same images and labels, in order, as image by image."""
    from torch.utils.data import DataLoader, Subset

    from accord.data.datasets import TensorImageDataset
    from accord.views import ViewDataset, collate_views
    from accord.views.batched import Uint8Images, loader_transform

    gen = torch.Generator().manual_seed(0)
    base = TensorImageDataset(torch.randint(0, 256, (20, 1, 5, 5), dtype=torch.uint8, generator=gen), torch.arange(20))
    uint8 = loader_transform(["crop"], GRAY)
    data = ViewDataset(Subset(Subset(base, list(range(19, -1, -1))), [0, 3, 5, 7, 11]), uint8, seed=0)
    fetched = data.__getitems__([4, 0, 2])
    assert [label for _, label in fetched] == [8, 19, 14]
    for (image, label), index in zip(fetched, [4, 0, 2], strict=True):
        assert image.dtype == torch.uint8 and torch.equal(image, data[index][0]) and label == data[index][1]
    images, labels = next(iter(DataLoader(data, batch_size=5, collate_fn=collate_views)))
    assert torch.equal(images, base.images[[19, 16, 14, 12, 8]]) and labels.tolist() == [19, 16, 14, 12, 8]
    assert Uint8Images.fetch_batch([(torch.zeros(1, 2, 2, dtype=torch.uint8), 0)], [0]) is None  # other datasets
    assert len(ViewDataset([(torch.zeros(1, 2, 2, dtype=torch.uint8), 3)], uint8).__getitems__([0])) == 1


def test_pad_crop_takes_every_window_of_the_padded_image_and_flip_mirrors_half() -> None:
    """On a 2x2 image padded by 1 px, each crop is one of the 9 windows of the 4x4 padded image (hand-listed
    through F.pad), all 9 occur, channels move together; the flip mirrors about half of the images."""
    from accord.views.batched_geometry import RandomFlip, RandomPadCrop

    torch.manual_seed(0)
    image = torch.tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], dtype=torch.uint8)  # (C=2, 2, 2)
    padded = F.pad(image, (1, 1, 1, 1))
    windows = {(dy, dx): padded[:, dy : dy + 2, dx : dx + 2] for dy in range(3) for dx in range(3)}
    crops = RandomPadCrop(1)(image.repeat(300, 1, 1, 1))
    assert crops.dtype == torch.uint8 and crops.shape == (300, 2, 2, 2)
    seen = {next(k for k, w in windows.items() if torch.equal(w, crop)) for crop in crops}
    assert seen == set(windows)
    flipped = RandomFlip()(image.repeat(400, 1, 1, 1))
    mirrored = sum(torch.equal(f, image.flip(-1)) for f in flipped)
    assert all(torch.equal(f, image) or torch.equal(f, image.flip(-1)) for f in flipped) and 150 < mirrored < 250
