"""Tests for accord.weights: the AgMax authors' released checkpoints, looked up by name, never downloaded."""

from __future__ import annotations

import pytest

from accord.config import load_config
from accord.weights import RELEASE, RELEASED, fetch_hint, find_local, released_weights


def test_registry_matches_the_authors_readme():
    # roatienza/agmax README.md, "Test": file names, and the release folder of the written URLs
    assert RELEASE == "https://github.com/roatienza/agmax/releases/download/agmax-0.1.0/"
    r101 = released_weights("agmax-resnet101-cutmix-auto_augment")
    assert r101.url == RELEASE + "imagenet-agmax-mi-ResNet101-cutmix-auto_augment-81.19-mlp-4096.pth"
    assert (r101.arch, r101.hidden_units, r101.top1, r101.url_stated) == ("resnet101", 4096, 81.19, True)
    r50 = released_weights("agmax-resnet50-cutmix-auto_augment")
    assert r50.filename == "imagenet-agmax-ResNet50-cutmix-auto_augment-79.12-mlp-2048.pth"
    assert not r50.url_stated and r50.hidden_units == 2048
    assert released_weights("baseline-resnet50-cutmix-auto_augment").top1 == 78.5
    assert all(w.sha256 is None for w in RELEASED.values())  # none published


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_each_entry_names_a_built_in_config(name):
    cfg = load_config(RELEASED[name].config)
    assert cfg.model.model == RELEASED[name].arch


def test_unknown_name_is_one_line_listing_the_valid_names():
    with pytest.raises(ValueError) as info:
        released_weights("agmax-resnet50")
    message = str(info.value)
    assert "\n" not in message and "unknown released weights 'agmax-resnet50'" in message
    assert all(name in message for name in RELEASED)


def test_find_local_returns_the_first_copy_and_says_where_to_fetch_a_missing_one(tmp_path):
    name = "baseline-resnet101-cutmix-auto_augment"
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        find_local(name, [empty])
    message = str(info.value)
    assert "\n" not in message and RELEASED[name].url in message and str(empty / RELEASED[name].filename) in message
    (full / RELEASED[name].filename).write_bytes(b"x")
    assert find_local(name, [empty, full]) == full / RELEASED[name].filename


def test_hint_for_a_file_whose_url_the_authors_do_not_write():
    hint = fetch_hint(RELEASED["agmax-resnet50-cutmix-auto_augment"])
    assert "names the file but not its URL" in hint and "likely" in hint


def test_eval_weights_imports_a_local_copy_and_evaluates_it(imagefolder_dir, tmp_path, capsys, one_thread):
    """`accord eval --weights NAME` converts the local file (the AgMax baseline layout, ``module.feature_extractor.*``
    and ``module.classifier.*``; a 3-class ResNet-50 to fit the image-folder fixture) and evaluates it."""
    import timm
    import torch

    from accord.cli import main

    torch.manual_seed(0)
    net = timm.create_model("resnet50", num_classes=3).eval()
    layout = {
        "module." + ("classifier." + k[3:] if k.startswith("fc.") else "feature_extractor." + k): v
        for k, v in net.state_dict().items()
    }
    name = "baseline-resnet50-cutmix-auto_augment"
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"epoch": 270, "best_top1": 78.5, "model_state_dict": layout}, folder / released_weights(name).filename)
    argv = ["eval", "--weights", name, "--weights-dir", str(folder), "--data-dir", str(imagefolder_dir)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{name}: test top-1" in printed and "(9 images)" in printed


def test_eval_weights_bad_name_or_missing_file_is_one_line(tmp_path, capsys):
    from accord.cli import main

    assert main(["eval", "--weights", "agmax-resnet50", "--weights-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown released weights 'agmax-resnet50'" in err and "valid: " in err and "\n" not in err
    name = "baseline-resnet101-cutmix-auto_augment"
    assert main(["eval", "--weights", name, "--weights-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert released_weights(name).url in err and str(tmp_path) in err and "\n" not in err
    assert main(["eval"]) == 2
    assert "one of --checkpoint FILE or --weights NAME" in capsys.readouterr().err
