"""View-aware MixUp and CutMix: per-method semantics, targets, lam and the tied feature target."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from accord.config import ConfigError, load_config
from accord.engine import build_run
from accord.losses import AgMaxLoss, TiedAugmentLoss
from accord.views import FeatureMix, ViewMixer
from accord.views.mixing import cutmix_box

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: one thread is the fastest
B, C = 6, 6  # one class per image, so a target row names the image's partner


def batch(views: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(views * B, 1, 8, 8, generator=g), torch.arange(B)


def partners(target_rows: torch.Tensor, lam: float) -> torch.Tensor:
    """Recover each row's partner from its mixed target ``lam * e_i + (1 - lam) * e_perm[i]``."""
    rest = target_rows - lam * F.one_hot(torch.arange(B), C)
    rest[rest.abs() < 1e-6] = 0
    return torch.where(rest.abs().sum(1) > 1e-6, rest.argmax(1), torch.arange(B))


def test_cutmix_box_area_corrected_lam():
    rng = np.random.default_rng(0)
    for lam in (0.1, 0.5, 0.9):
        for _ in range(20):
            top, bottom, left, right, corrected = cutmix_box(28, 32, lam, rng)
            assert 0 <= top <= bottom <= 28 and 0 <= left <= right <= 32
            assert corrected == pytest.approx(1 - (bottom - top) * (right - left) / (28 * 32))
            assert corrected >= lam - 1e-9  # clipping only shrinks the box


def test_mixup_each_view_has_its_own_lam_and_partner():
    images, labels = batch()
    mixer = ViewMixer(C, 2, "mixup", "each", mixup_alpha=1.0)
    mixer.set_epoch(0, 3)
    out = mixer(images, labels)
    assert len(out.lams) == 2 and out.lams[0] != out.lams[1] and all(0 <= lam <= 1 for lam in out.lams)
    assert out.target.shape == (2 * B, C) and torch.allclose(out.target.sum(1), torch.ones(2 * B))
    perms = []
    for v, lam in enumerate(out.lams):
        rows = slice(v * B, (v + 1) * B)
        perm = partners(out.target[rows], lam)
        expected = lam * images[rows] + (1 - lam) * images[rows][perm]
        torch.testing.assert_close(out.images[rows], expected)
        perms.append(perm)
    assert not torch.equal(perms[0], perms[1])
    assert out.feature_mix is None


def test_tied_mixes_view_one_and_ties_view_two_features():
    images, labels = batch()
    mixer = ViewMixer(C, 2, "mixup", "first")
    mixer.set_epoch(1, 0)
    out = mixer(images, labels)
    (lam,) = out.lams
    torch.testing.assert_close(out.images[B:], images[B:])  # view 2 stays clean
    torch.testing.assert_close(out.target[B:], F.one_hot(labels, C).float())
    perm = partners(out.target[:B], lam)
    assert isinstance(out.feature_mix, FeatureMix) and out.feature_mix.lam == lam
    f2 = torch.randn(B, 4)
    torch.testing.assert_close(out.feature_mix(f2), lam * f2 + (1 - lam) * f2[perm])


def test_cutmix_pastes_one_box_with_area_corrected_lam():
    images, labels = batch(views=1)
    mixer = ViewMixer(C, 1, "cutmix", "each", cutmix_alpha=1.0)
    for epoch in range(5):
        mixer.set_epoch(0, epoch)
        out = mixer(images, labels)
        (lam,) = out.lams
        perm = partners(out.target, lam) if lam < 1 else torch.arange(B)
        changed = (out.images != images).any(0).any(0)  # (H, W) pixels taken from a partner
        pasted = (out.images == images) | (out.images == images[perm])
        assert pasted.all(), "every pixel comes from the image or its partner"
        if changed.any():
            rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
            area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert 1 - lam == pytest.approx(float(area) / 64)


def test_mix_prob_zero_leaves_the_batch_alone_and_draws_repeat_per_epoch():
    images, labels = batch()
    out = ViewMixer(C, 2, "mixup", prob=0.0)(images, labels)
    assert out.images is images and torch.equal(out.target, labels)
    mixer = ViewMixer(C, 2, "mixup-cutmix")
    mixer.set_epoch(0, 7)
    first = mixer(images, labels)
    mixer.set_epoch(0, 7)
    again = mixer(images, labels)
    assert torch.equal(first.images, again.images) and first.lams == again.lams


def test_mixed_ce_equals_lam_weighted_ce_over_views():
    """AgMax's mixed CE: 0.5 * sum_v [lam_v CE(z_v, y) + (1 - lam_v) CE(z_v, y[perm_v])]."""
    images, labels = batch()
    mixer = ViewMixer(C, 2, "mixup", "each")
    out = mixer(images, labels)
    logits = torch.randn(2 * B, C)
    loss = AgMaxLoss(C)(logits, out.target)["ce"]
    expected = 0.0
    for v, lam in enumerate(out.lams):
        rows = slice(v * B, (v + 1) * B)
        perm = partners(out.target[rows], lam)
        expected += 0.5 * (
            lam * F.cross_entropy(logits[rows], labels) + (1 - lam) * F.cross_entropy(logits[rows], perm)
        )
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_tied_loss_uses_the_mixed_feature_target():
    features = torch.randn(2 * B, 4, requires_grad=True)
    mix = FeatureMix(0.3, torch.tensor([1, 2, 3, 4, 5, 0]))
    terms = TiedAugmentLoss()(torch.randn(2 * B, C), torch.arange(B), features, feature_mix=mix)
    f1, f2 = features[:B], features[B:]
    expected = float(((f1 - (0.3 * f2 + 0.7 * f2[mix.index])) ** 2).mean().detach())
    assert float(terms["mse"].detach()) == pytest.approx(expected)
    terms["loss"].backward()
    assert features.grad[B:].abs().sum() > 0  # no stop-gradient on the target


def test_jsd_refuses_mixing():
    with pytest.raises(ConfigError, match="refuses MixUp/CutMix"):
        load_config("FashionMNIST-ResNet8-standard-jsd", {"mix": "mixup"})


@pytest.mark.parametrize("method", ["", "-ls", "-agmax", "-agmax-mse", "-agmax-kl", "-agmax-ce", "-tied", "-ce2"])
@pytest.mark.parametrize("mix", ["mixup", "cutmix", "mixup-cutmix"])
def test_each_method_trains_one_step_with_each_mixing(method, mix, fmnist_dir, train_one_step):
    cfg = load_config(
        f"FashionMNIST-ResNet8-standard{method}",
        {"data_dir": str(fmnist_dir), "mix": mix, "mix_prob": 1.0, "batch_size": 8, "workers": 0, "log_interval": 1},
    )
    run = build_run(cfg, device=torch.device("cpu"))
    seen = {}
    forward = run.criterion.forward

    def spy(logits, target, features=None, **extra):
        seen.update(target=target, extra=extra)
        return forward(logits, target, features, **extra)

    run.criterion.forward = spy
    mixer = run.mixer
    mixer.set_epoch(0, 0)

    def mixer_spy(images, labels):
        seen.update(images=images, labels=labels, mixed=mixer(images, labels))
        return seen["mixed"]

    stats = train_one_step(run, cfg, 8, mixer=mixer_spy)
    assert np.isfinite(stats["loss"])
    views, mixed, target = cfg.views.num_views, seen["mixed"], seen["target"]
    assert target is mixed.target and target.shape == (views * 8, 10)
    assert torch.allclose(target.sum(1), torch.ones(views * 8))
    assert all(0.0 <= lam <= 1.0 for lam in mixed.lams)
    if cfg.method.method == "tied":  # view 1 mixed; view 2 clean with one-hot targets; features tied
        assert len(mixed.lams) == 1 and isinstance(seen["extra"]["feature_mix"], FeatureMix)
        assert torch.equal(mixed.images[8:], seen["images"][8:])
        assert torch.equal(target[8:], F.one_hot(seen["labels"], 10).float())
    else:  # every view draws its own lam
        assert len(mixed.lams) == views and not seen["extra"]
