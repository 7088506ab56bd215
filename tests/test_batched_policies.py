"""Batched per-image RandAugment/AutoAugment/TrivialAugment/AugMix against torchvision's per-image transforms."""

from __future__ import annotations

import pytest
import torch
from pixel_bounds import BLENDS, blend_mismatch, geometric_mismatch
from scipy import stats
from torchvision.transforms.v2 import _auto_augment as tv_auto

from accord.data import DataInfo
from accord.views.batched import BatchedViews
from accord.views.batched_ops import OPS, inverse_affine, warp_affine
from accord.views.batched_policies import (
    BatchedAugMix,
    BatchedAutoAugment,
    BatchedPolicy,
    BatchedRandAugment,
    BatchedTrivialAugment,
    Plan,
)
from accord.views.tokens import parse_operation

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.numerics]

RGB = DataInfo("cifar10", 10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), fixed_size=True)
GRAY = DataInfo("fashion_mnist", 10, 1, 28, (0.2860,), (0.3530,), fixed_size=True)
TV = tv_auto.TrivialAugmentWide()  # only its _apply_image_or_video_transform: the per-image reference op


def _images(n: int, chans: int = 3, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, chans, size, size), dtype=torch.uint8, generator=g)
    x[: n // 4] = x[: n // 4] // 3 + 40  # low-contrast images: autocontrast and equalize do something visible
    x[n // 4] = 77  # a flat image: equalize and autocontrast leave it alone
    return x


def _reference(image: torch.Tensor, name: str, magnitude: float, interpolation: str) -> torch.Tensor:
    return TV._apply_image_or_video_transform(image, name, magnitude, interpolation=interpolation, fill=TV._fill)


# ---------------------------------------------------------------------------------------- ops


SPACES = {  # (augmentation space, bins, interpolation): every space a policy draws from
    "randaug": (tv_auto.RandAugment._AUGMENTATION_SPACE, 31, "nearest"),
    "trivialaug": (tv_auto.TrivialAugmentWide._AUGMENTATION_SPACE, 31, "nearest"),
    "autoaug": (tv_auto.AutoAugment._AUGMENTATION_SPACE, 10, "nearest"),
    "augmix": (tv_auto.AugMix._AUGMENTATION_SPACE, 10, "bilinear"),
}


GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def _expect_matches(
    batch: torch.Tensor, magnitudes: torch.Tensor, out: torch.Tensor, name: str, interpolation: str
) -> list[str]:
    """Each image of ``out`` against torchvision's op on the same image: within the stated bound of
    tests/pixel_bounds.py for the geometric ops and the blends, bit-exact for the others. Why not, if it is not."""
    problems = []
    for img, m, got in zip(batch, magnitudes.tolist(), out, strict=True):
        ref = _reference(img, name, m, interpolation)
        if name in GEOMETRIC:
            problems.append(geometric_mismatch(img, got, ref, name, m, interpolation))
        elif name in BLENDS:
            problems.append(blend_mismatch(got, ref, name, m))
        elif not torch.equal(got, ref):
            problems.append(f"{name}({m:g}) differs")
    return sorted({p for p in problems if p})


@pytest.mark.parametrize("chans", [3, 1])
@pytest.mark.parametrize("space", sorted(SPACES))
def test_each_op_at_each_magnitude_matches_torchvision_on_each_image(space: str, chans: int) -> None:
    """Every op, every magnitude bin of the space (both signs), against torchvision per image: the integer ops,
    Brightness and AutoContrast bit-exact, the blends and geometric ops within the bounds of tests/pixel_bounds.py
    (at 28-32 px)."""
    table, bins, interpolation = SPACES[space]
    size = 32 if chans == 3 else 28
    x = _images(8, chans, size)
    for name, (magnitudes_fn, signed) in table.items():
        values = magnitudes_fn(bins, size, size)
        cases = [0.0] if values is None else [float(v) * s for v in values for s in ((1, -1) if signed else (1,))]
        magnitudes = torch.tensor(cases, dtype=torch.float32).repeat_interleave(len(x))
        batch = x.repeat(len(cases), 1, 1, 1)
        assert not _expect_matches(batch, magnitudes, OPS[name](batch, magnitudes, interpolation), name, interpolation)


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_geometric_ops_match_torchvision_at_224_px(interpolation: str) -> None:
    x = _images(2, 3, 224)
    cases = {
        "ShearX": [0.01, -0.17, 0.99],
        "ShearY": [0.3, -0.05],
        "Rotate": [4.5, -29.0, 135.0],
        "TranslateX": [101.5],
    }
    for name, values in cases.items():
        magnitudes = torch.tensor(values).repeat_interleave(2)
        batch = x.repeat(len(values), 1, 1, 1)
        assert not _expect_matches(batch, magnitudes, OPS[name](batch, magnitudes, interpolation), name, interpolation)


def _shifted_centre(x: torch.Tensor, magnitude: torch.Tensor, interpolation: str) -> torch.Tensor:
    """ShearX about a centre half a pixel below torchvision's (the top-left corner)."""
    zero = torch.zeros_like(magnitude, dtype=torch.float64)
    shear = (torch.rad2deg(torch.atan(magnitude.double())), zero)
    corner = (-x.shape[-1] * 0.5, -x.shape[-2] * 0.5 + 0.5)  # ShearX moves rows: a centre off in y shifts them
    return warp_affine(x, inverse_affine(zero, (zero, zero), shear, corner), interpolation)


MUTANTS = {  # name: (op the output is checked as, magnitude, what is really computed)
    "shear of the next bin": ("ShearX", 0.1, lambda x, m, i: OPS["ShearX"](x, m + 0.01, i)),
    "shear of the wrong sign": ("ShearX", 0.1, lambda x, m, i: OPS["ShearX"](x, -m, i)),
    "shear about a centre half a pixel off": ("ShearX", 0.1, _shifted_centre),
    "shear along the other axis": ("ShearX", 0.1, lambda x, m, i: OPS["ShearY"](x, m, i)),
    "fill 255 instead of 0": ("ShearX", 0.1, lambda x, m, i: 255 - OPS["ShearX"](255 - x, m, i)),
    "rotation of the next bin": ("Rotate", 12.0, lambda x, m, i: OPS["Rotate"](x, m + 1.0, i)),
    "rotation the other way": ("Rotate", 12.0, lambda x, m, i: OPS["Rotate"](x, -m, i)),
    "translation one pixel short": ("TranslateY", 5.0, lambda x, m, i: OPS["TranslateY"](x, m - 1, i)),
    "the other interpolation": ("ShearY", 0.23, lambda x, m, i: OPS["ShearY"](x, m, MUTATED_INTERPOLATION[i])),
    "saturation of the next bin": ("Color", 0.3, lambda x, m, i: OPS["Color"](x, m + 0.03, i)),
    "contrast of the next bin": ("Contrast", -0.3, lambda x, m, i: OPS["Contrast"](x, m + 0.03, i)),
    "sharpness of the wrong sign": ("Sharpness", 0.3, lambda x, m, i: OPS["Sharpness"](x, -m, i)),
}
MUTATED_INTERPOLATION = {"nearest": "bilinear", "bilinear": "nearest"}


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [28, 32, 224])
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_the_bound_catches_a_wrong_op(mutant: str, size: int, interpolation: str) -> None:
    """The bound is not loose: each deliberately wrong op fails it, while the right op passes."""
    name, magnitude, wrong = MUTANTS[mutant]
    x = _images(4, 3, size, seed=size)
    magnitudes = torch.full((len(x),), magnitude)
    assert not _expect_matches(x, magnitudes, OPS[name](x, magnitudes, interpolation), name, interpolation)
    assert _expect_matches(x, magnitudes, wrong(x, magnitudes, interpolation), name, interpolation), mutant


def test_rotations_by_right_angles_take_torchvisions_shortcut() -> None:
    x = _images(4)
    out = OPS["Rotate"](x.repeat(4, 1, 1, 1), torch.tensor([0.0, 90.0, -90.0, 180.0]).repeat_interleave(4))
    for k, turns in enumerate((0, 1, 3, 2)):
        assert torch.equal(out[4 * k : 4 * k + 4], torch.rot90(x, k=turns, dims=(-2, -1)))


# ---------------------------------------------------------------------------------------- policies


def _accord_op_on_one_image(image: torch.Tensor, name: str, magnitude: float, interpolation: str) -> torch.Tensor:
    return OPS[name](image[None], torch.tensor([magnitude], dtype=torch.float32), interpolation)[0]


def _replay(policy: BatchedPolicy, x: torch.Tensor, plan: Plan) -> torch.Tensor:
    """What ``plan`` makes of each image, one image and one op at a time (AugMix: with torchvision's mixing
    arithmetic): accord's op of each step on that image alone, whose tests against torchvision are above."""
    names = policy.space(x.shape[2], x.shape[3]).names

    def run(img: torch.Tensor, i: int, steps) -> torch.Tensor:
        for step in steps:
            k = int(step.ops[i])
            if k >= 0:
                img = _accord_op_on_one_image(img, names[k], float(step.magnitudes[i]), policy.interpolation)
        return img

    rows = []
    for i, image in enumerate(x):
        if plan.chains:  # torchvision's AugMix arithmetic on a batch of one
            weights = plan.weights[i]
            mix = weights[0].view(1, 1, 1, 1) * image[None]
            for j, chain in enumerate(plan.chains):
                mix.add_(weights[j + 1].view(1, 1, 1, 1) * run(image, i, chain)[None])
            rows.append(mix[0].to(torch.uint8))
        else:
            rows.append(run(image, i, plan.steps))
    return torch.stack(rows)


POLICIES = {
    "randaug_2_14": BatchedRandAugment(2, 14),
    "randaug_3_30": BatchedRandAugment(3, 30),
    "trivialaug": BatchedTrivialAugment(),
    "autoaug_imagenet": BatchedAutoAugment("imagenet"),
    "autoaug_cifar10": BatchedAutoAugment("cifar10"),
    "autoaug_svhn": BatchedAutoAugment("svhn"),
    "augmix_3": BatchedAugMix(3),
    "augmix_10": BatchedAugMix(10),
}


@pytest.mark.parametrize("chans", [3, 1])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_applies_its_plan_image_by_image(name: str, chans: int) -> None:
    """Grouping the images by op and applying each op to its group is exact by construction (every op's arithmetic
    on one image does not depend on the others), so the batch equals the plan replayed image by image bit for bit;
    with the op tests above, each image is what torchvision's policy makes of it under the same draws."""
    policy, x = POLICIES[name], _images(24, chans, 32 if chans == 3 else 28)
    plan = policy.sample(len(x), x.shape[2], x.shape[3], torch.Generator().manual_seed(1))
    assert torch.equal(policy.apply(x, plan), _replay(policy, x, plan))


def _chi_square(counts: torch.Tensor, expected: torch.Tensor) -> float:
    counts, expected = counts.double(), expected.double()
    keep = expected > 0
    assert counts[~keep].sum() == 0
    expected = expected[keep] / expected[keep].sum() * counts[keep].sum()
    return stats.chisquare(counts[keep].numpy(), expected.numpy()).pvalue


N = 20000


@pytest.mark.parametrize("name", ["randaug_2_14", "trivialaug"])
def test_randaug_and_trivialaug_pick_ops_uniformly(name: str) -> None:
    policy = POLICIES[name]
    plan = policy.sample(N, 32, 32, torch.Generator().manual_seed(0))
    space = policy.space(32, 32)
    for step in plan.steps:
        counts = torch.bincount(step.ops, minlength=len(space.names))
        assert _chi_square(counts, torch.ones(len(space.names))) > 1e-3
    if name == "trivialaug":  # TrivialAugment also draws its bin uniformly: the magnitudes of Rotate show it
        rotate = plan.steps[0].ops == space.names.index("Rotate")
        degrees = plan.steps[0].magnitudes[rotate].abs()
        bins = torch.bucketize(degrees, space.table[space.names.index("Rotate")], right=False)
        assert _chi_square(torch.bincount(bins, minlength=31), torch.ones(31)) > 1e-3


@pytest.mark.parametrize("table", ["imagenet", "cifar10", "svhn"])
def test_autoaugment_applies_each_op_as_often_as_its_policy_says(table: str) -> None:
    policy = POLICIES[f"autoaug_{table}"]
    plan = policy.sample(N, 32, 32, torch.Generator().manual_seed(0))
    names = policy.space(32, 32).names
    for j, step in enumerate(plan.steps):
        expected = torch.zeros(len(names) + 1, dtype=torch.float64)  # last: skipped
        for sub in policy.table:
            op, prob, _ = sub[j]
            expected[names.index(op)] += prob / len(policy.table)
            expected[-1] += (1 - prob) / len(policy.table)
        counts = torch.bincount(torch.where(step.ops < 0, len(names), step.ops), minlength=len(names) + 1)
        assert _chi_square(counts, expected) > 1e-3


def test_augmix_draws_uniform_ops_depths_and_dirichlet_weights() -> None:
    policy = POLICIES["augmix_3"]
    plan = policy.sample(N, 32, 32, torch.Generator().manual_seed(0))
    names = policy.space(32, 32).names
    for chain in plan.chains:
        depth = sum((step.ops >= 0).long() for step in chain)
        assert _chi_square(torch.bincount(depth, minlength=4)[1:], torch.ones(3)) > 1e-3
        counts = torch.bincount(chain[0].ops, minlength=len(names))
        assert _chi_square(counts, torch.ones(len(names))) > 1e-3
    weights = plan.weights
    assert torch.allclose(weights.sum(1), torch.ones(N), atol=1e-5)
    # with alpha = 1 the original's weight m[0] ~ Beta(1, 1) is uniform on [0, 1]
    assert stats.kstest(weights[:, 0].numpy(), "uniform").pvalue > 1e-3


@pytest.mark.parametrize("name", ["randaug_2_14", "trivialaug", "augmix_3"])
def test_signed_magnitudes_are_negative_half_the_time(name: str) -> None:
    policy = POLICIES[name]
    plan = policy.sample(N, 32, 32, torch.Generator().manual_seed(0))
    space = policy.space(32, 32)
    steps = [s for chain in plan.chains for s in chain] if plan.chains else plan.steps
    ops = torch.cat([s.ops for s in steps])
    mags = torch.cat([s.magnitudes for s in steps])
    nonzero_signed = (ops >= 0) & space.signed[ops.clamp_min(0)] & (mags != 0)
    negative = int((mags[nonzero_signed] < 0).sum())
    assert stats.binomtest(negative, int(nonzero_signed.sum()), 0.5).pvalue > 1e-3
    unsigned = (ops >= 0) & ~space.signed[ops.clamp_min(0)]
    assert (mags[unsigned] >= 0).all()


def test_each_image_draws_its_own_ops() -> None:
    x = _images(1).repeat(64, 1, 1, 1)
    for policy in POLICIES.values():
        out = policy(x, torch.Generator().manual_seed(0))
        assert len({bytes(img.flatten().numpy()) for img in out}) > 10, policy


def test_same_generator_state_repeats_the_output_and_default_is_the_global_generator() -> None:
    x = _images(16)
    for policy in POLICIES.values():
        g = torch.Generator().manual_seed(3)
        state = g.get_state()
        first = policy(x, g)
        after = policy(x, g)
        g.set_state(state)
        assert torch.equal(policy(x, g), first) and torch.equal(policy(x, g), after)
        torch.manual_seed(4)
        saved = torch.get_rng_state()
        first = policy(x)
        torch.set_rng_state(saved)
        assert torch.equal(policy(x), first)


def test_tokens_build_the_loaders_defaults_and_bad_input_is_refused() -> None:
    def device(token: str, info: DataInfo = RGB) -> object:
        return parse_operation(token).device(info)

    imagenet = DataInfo("imagefolder", 3, 3, 32, RGB.mean, RGB.std, fixed_size=False)
    assert repr(device("randaug")) == "BatchedRandAugment(num_ops=2, magnitude=9)"
    assert device("autoaug").policy == "cifar10"
    assert device("autoaug", imagenet).policy == "imagenet"
    assert device("autoaug_svhn").policy == "svhn"
    assert device("augmix_5").severity == 5
    assert isinstance(device("trivialaug"), BatchedTrivialAugment)
    with pytest.raises(ValueError, match="uint8"):
        BatchedRandAugment()(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="severity"):
        BatchedAugMix(11)


# ---------------------------------------------------------------------------------------- BatchedViews


@pytest.mark.parametrize("info", [RGB, GRAY], ids=["rgb32", "gray28"])
def test_batched_views_accept_every_loader_token(info: DataInfo) -> None:
    policies = ["crop-flip-randaug_2_14-cutout", "autoaug", "autoaug_svhn-trivialaug", "standard-augmix_2", "none"]
    views = BatchedViews(policies, info)
    images = _images(6, info.in_chans, info.image_size)
    out = views(images)
    assert out.shape == (30, info.in_chans, info.image_size, info.image_size) and out.dtype == torch.float32
    mean, std = torch.tensor(info.mean).view(1, -1, 1, 1), torch.tensor(info.std).view(1, -1, 1, 1)
    assert torch.allclose(out[24:], (images.float() / 255 - mean) / std, atol=1e-6)  # "none" untouched


def test_batched_view_operations_equal_the_policy_on_the_same_generator_state() -> None:
    images = _images(8)
    torch.manual_seed(0)
    views = BatchedViews(["trivialaug"], RGB)(images)
    torch.manual_seed(0)
    expected = BatchedTrivialAugment()(images)
    mean, std = torch.tensor(RGB.mean).view(1, 3, 1, 1), torch.tensor(RGB.std).view(1, 3, 1, 1)
    assert torch.allclose(views, (expected.float() / 255 - mean) / std, atol=1e-6)
