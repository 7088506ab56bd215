"""Calibration error, the CIFAR-10-C style corruptions, and `accord eval --corruptions` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from accord.cli import main
from accord.config import load_config
from accord.data import DataInfo
from accord.engine import evaluate_checkpoint, fit
from accord.evaluation import (
    CORRUPTION_NAMES,
    SEVERITIES,
    SEVERITY_PARAMS,
    calibration_error_from_confidences,
    contrast,
    corrupt,
    evaluate_checkpoint_robustness,
    expected_calibration_error,
    gaussian_blur,
    gaussian_noise,
    jpeg_compression,
    parse_corruptions,
    split_eval_transform,
)
from accord.views import build_eval_transform

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: extra threads only stall a busy machine

TINY = {"batch_size": 32, "lr_batch": 32, "eval_batch_size": 100, "workers": 0, "log_interval": 1, "epochs": 1}


def probs_with_confidence(confidence: float, n: int, classes: int = 4) -> torch.Tensor:
    """``n`` rows whose top class is 0, with probability ``confidence``."""
    rest = (1 - confidence) / (classes - 1)
    probs = torch.full((n, classes), rest, dtype=torch.float64)
    probs[:, 0] = confidence
    return probs


def labels_for(correct: list[bool]) -> torch.Tensor:
    """Label 0 (the predicted class) where the prediction is to be right, 1 elsewhere."""
    return torch.tensor([0 if c else 1 for c in correct])


# ---------------------------------------------------------------- ECE


def test_ece_is_the_gap_when_every_prediction_has_one_confidence():
    correct = [True] * 6 + [False] * 4  # accuracy 0.6 at confidence 0.8
    probs = probs_with_confidence(0.8, 10)
    assert expected_calibration_error(probs, labels_for(correct)) == pytest.approx(0.2)


def test_ece_of_perfectly_calibrated_bins_is_zero():
    high = [True, True, True, False]  # confidence 0.75, accuracy 3/4
    low = [True, False, True, False]  # confidence 0.5, accuracy 2/4
    probs = torch.cat([probs_with_confidence(0.75, 4), probs_with_confidence(0.5, 4)])
    assert expected_calibration_error(probs, labels_for(high + low)) == pytest.approx(0.0, abs=1e-12)


def test_ece_weighs_bins_by_their_share_of_the_data():
    # 4 predictions at 0.9, all right (gap 0.1); 6 at 0.3, half right (gap 0.2): 0.4 * 0.1 + 0.6 * 0.2
    confidences = torch.tensor([0.9] * 4 + [0.3] * 6)
    correct = torch.tensor([True] * 4 + [True, False] * 3)
    assert calibration_error_from_confidences(confidences, correct) == pytest.approx(0.16)


@pytest.mark.numerics
def test_ece_matches_the_binning_loop_of_guo_et_al():
    """The reference loop (Guo et al.'s code, torchmetrics' `_binning_with_loop`): bins (lower, upper]."""
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(500, 7, generator=g).mul(2).softmax(dim=1)
    labels = torch.randint(0, 7, (500,), generator=g)
    confidences, predictions = probs.max(dim=1)
    hits = (predictions == labels).double()
    edges = torch.linspace(0, 1, 16, dtype=torch.float64)  # the implementation's edges: a confidence between a
    expected = 0.0  # float32 edge and its float64 twin would otherwise fall in another bin on some processors
    for lower, upper in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidences.double() > lower) & (confidences.double() <= upper)
        if in_bin.any():
            gap = hits[in_bin].mean() - confidences[in_bin].double().mean()
            expected += in_bin.double().mean().item() * abs(gap.item())
    assert expected_calibration_error(probs, labels) == pytest.approx(expected, abs=1e-6)


def test_ece_puts_full_confidence_in_the_last_bin_and_checks_its_input():
    assert calibration_error_from_confidences(torch.ones(4), torch.tensor([1, 1, 1, 0])) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="n_bins"):
        calibration_error_from_confidences(torch.ones(4), torch.ones(4), n_bins=0)
    with pytest.raises(ValueError, match="probs"):
        expected_calibration_error(torch.ones(4), torch.ones(4))


# ---------------------------------------------------------------- corruptions


def textured(channels: int, dtype: torch.dtype = torch.uint8, n: int = 4, size: int = 16) -> torch.Tensor:
    """A batch with edges, gradients and mid-range pixels (so no corruption is hidden by clipping)."""
    g = torch.Generator().manual_seed(channels)
    ramp = torch.linspace(0.2, 0.8, size)
    base = ramp[None, :] * ramp[:, None] + 0.15 * torch.randn(n, channels, size, size, generator=g)
    base[..., size // 4 : size // 2, :] += 0.2
    images = base.clamp(0, 1)
    return (images * 255).round().to(torch.uint8) if dtype == torch.uint8 else images.to(dtype)


def mean_abs_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().mean().item()


@pytest.mark.parametrize("name", CORRUPTION_NAMES)
@pytest.mark.parametrize(
    "channels,dtype", [(1, torch.uint8), (3, torch.uint8), (3, torch.float32)], ids=["gray", "rgb", "float"]
)
def test_each_corruption_keeps_shape_dtype_range_and_grows_with_severity(name, channels, dtype):
    images = textured(channels, dtype)
    changes = []
    for severity in SEVERITIES:
        out = corrupt(images, name, severity, torch.Generator().manual_seed(0))
        assert out.shape == images.shape and out.dtype == images.dtype
        assert out.min() >= 0 and out.max() <= (255 if dtype == torch.uint8 else 1)
        changes.append(mean_abs_change(out, images))
    assert changes[0] > 0, changes
    assert changes[-1] > changes[0], changes
    single = corrupt(images[0], name, 3, torch.Generator().manual_seed(0))  # one CHW image works too
    assert single.shape == images.shape[1:]


def test_seeded_noise_repeats_and_another_seed_differs():
    images = textured(3)
    a = gaussian_noise(images, 3, torch.Generator().manual_seed(7))
    b = gaussian_noise(images, 3, torch.Generator().manual_seed(7))
    c = gaussian_noise(images, 3, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("channels", [1, 3])
def test_contrast_keeps_each_channels_mean(channels):
    images = textured(channels, torch.float32)
    images[:, -1] *= 0.5  # channels with different means: each keeps its own (torchvision's would not)
    for severity in SEVERITIES:
        out = contrast(images, severity)
        assert torch.allclose(out.mean(dim=(-2, -1)), images.mean(dim=(-2, -1)), atol=1e-6)
        quantised = contrast(textured(channels), severity).double().mean(dim=(-2, -1))
        assert torch.allclose(quantised, textured(channels).double().mean(dim=(-2, -1)), atol=0.5)


def test_blur_is_skimages_gaussian_border_included():
    """make_cifar_c.py blurs with skimage's gaussian (scipy's gaussian_filter, mode nearest, truncate 4)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    images = textured(3, torch.float64)
    for severity in SEVERITIES:
        sigma = SEVERITY_PARAMS["blur"][severity - 1]
        expected = ndimage.gaussian_filter(images.numpy(), (0, 0, sigma, sigma), mode="nearest", truncate=4.0)
        assert torch.allclose(gaussian_blur(images, severity), torch.from_numpy(expected), atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_changes_the_image(channels):
    images = textured(channels)
    assert not torch.equal(jpeg_compression(images, 1), images)


def test_corruptions_refuse_bad_input():
    with pytest.raises(ValueError, match="severity"):
        corrupt(textured(1), "noise", 6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        corrupt(textured(1, torch.float32) - 0.5, "blur", 1)  # normalised images are refused
    with pytest.raises(ValueError, match="unknown corruption fog"):
        parse_corruptions("noise,fog")
    assert parse_corruptions("all") == list(CORRUPTION_NAMES)
    assert parse_corruptions("jpeg, noise") == ["jpeg", "noise"]


@pytest.mark.parametrize("small", [True, False], ids=["28px", "imagenet-protocol"])
def test_split_eval_transform_is_build_eval_transform(small):
    info = DataInfo("t", 3, 3, 28 if small else 32, (0.5, 0.4, 0.3), (0.2, 0.3, 0.25), fixed_size=small)
    image = textured(3, n=1, size=45)[0]
    geometry, finish = split_eval_transform(info)
    assert geometry(image).dtype == torch.uint8
    assert torch.equal(finish(geometry(image)), build_eval_transform(info)(image))


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def checkpoint(fmnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    cfg = load_config("FashionMNIST-ResNet8-standard-agmax", {**TINY, "data_dir": str(fmnist_dir)})
    fit(cfg, out, log=lambda _: None)
    return out / "checkpoint-last.pt"


def test_clean_numbers_are_those_of_evaluate_checkpoint(checkpoint):
    clean = evaluate_checkpoint_robustness(checkpoint)["clean"]
    reference = evaluate_checkpoint(checkpoint)
    assert clean["top1"] == pytest.approx(reference["top1"]) and clean["top5"] == pytest.approx(reference["top5"])
    assert 0 <= clean["ece"] <= 100


def test_cli_eval_with_corruptions_writes_every_cell(checkpoint, capsys):
    json_path = checkpoint.parent / "robustness.json"
    assert main(["eval", "--checkpoint", str(checkpoint), "--limit", "50"]) == 0
    printed = capsys.readouterr().out
    assert "test top-1" in printed and "(50 images)" in printed and "ECE" in printed
    assert not json_path.exists()  # without --corruptions nothing is written

    assert main(["eval", "--checkpoint", str(checkpoint), "--corruptions", "--limit", "50"]) == 0
    printed = capsys.readouterr().out
    assert "| top-1 (%) | s1 | s2 | s3 | s4 | s5 | mean |" in printed
    result = json.loads(json_path.read_text())
    assert result["n"] == 50 and result["severities"] == list(SEVERITIES)
    assert list(result["corruptions"]) == list(CORRUPTION_NAMES)
    for cell in result["corruptions"].values():
        assert len(cell["top1"]) == len(SEVERITIES) == len(cell["ece"])
        assert all(0 <= v <= 100 for v in [*cell["top1"], cell["mean_top1"]])
    assert 0 <= result["mean_corruption_top1"] <= 100 and 0 <= result["clean"]["top1"] <= 100

    again = checkpoint.parent / "again.json"
    args = ["eval", "--checkpoint", str(checkpoint), "--corruptions", "--limit", "50", "--out", str(again)]
    assert main(args) == 0
    assert json.loads(again.read_text()) == result  # seeded: the same numbers again


def test_cli_eval_subset_of_corruptions_and_bad_names(checkpoint, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["eval", "--checkpoint", str(checkpoint), "--corruptions", "jpeg,noise", "--limit", "20", "--out", str(out)]
    assert main(args) == 0
    assert list(json.loads(out.read_text())["corruptions"]) == ["jpeg", "noise"]
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(checkpoint), "--corruptions", "fog"]) == 2
    assert "unknown corruption fog" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(checkpoint), "--limit", "0"]) == 2
