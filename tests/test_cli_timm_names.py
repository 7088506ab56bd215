"""What a timm user types into ``accord``: timm's flag names get accord's, errors show ``accord train``'s usage, a
checkpoint file passed to ``--resume`` names its folder, a run's name says its method and mixing, the concat-BN note
of Tied-Augment is printed as ``accord configs`` prints it, and ``accord eval`` reads timm's own checkpoints."""

from __future__ import annotations

import argparse

import pytest
import timm
import torch

import accord.models.cifar  # noqa: F401  (registers cifar_resnet8 with timm)
from accord.cli import build_parser, main
from accord.cli_flags import TIMM_HINTS, train_overrides
from accord.config import load_config


@pytest.mark.parametrize("flag", list(TIMM_HINTS))
def test_every_timm_flag_accord_spells_otherwise_gets_a_hint(flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", flag, "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: accord train ")  # the command's usage, not the top level's
    assert err[-1] == f"accord train: error: unrecognized arguments: {flag} 1; {flag} is timm's: {TIMM_HINTS[flag]}"


def test_a_config_key_flag_still_gets_its_set_hint(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--ema-decay", "0.9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: accord train ") and err[-1].endswith("use --set ema_decay=VALUE")


def test_resume_of_a_file_says_to_pass_its_folder(tmp_path, capsys):
    (tmp_path / "checkpoint-last.pt").write_bytes(b"")
    assert main(["train", "--resume", str(tmp_path / "checkpoint-last.pt")]) == 2
    assert f"--resume takes the run folder that holds it: --resume {tmp_path}" in capsys.readouterr().err


def test_a_run_name_says_its_method_and_mixing(imagefolder_dir):
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(imagefolder_dir), "--set", "model=resnet18"]
    args = build_parser().parse_args([*argv, "--set", "method=agmax", "--mixup", "0.2"])
    cfg = load_config("FashionMNIST-ResNet8-standard", train_overrides(args))
    assert cfg.name == "ImageFolder-resnet18-standard-mixup-agmax"
    assert load_config("FashionMNIST-ResNet8-standard", {"method": "tied"}).name == "FashionMNIST-ResNet8-standard-tied"
    assert load_config("FashionMNIST-ResNet8-standard-agmax").name == "FashionMNIST-ResNet8-standard-agmax"


def test_set_method_tied_prints_the_concat_note(tmp_path, capsys):
    main(["train", "--set", "method=tied", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert "accord: note: bn: concat is not the Tied-Augment authors' step" in err


def test_accord_eval_reads_a_timm_checkpoint(fmnist_dir, tmp_path, capsys, one_thread):
    """timm's CheckpointSaver stores train.py's args as an argparse.Namespace: allowed, and nothing else."""
    torch.manual_seed(0)
    net = timm.create_model("cifar_resnet8", num_classes=10, in_chans=1)
    args = argparse.Namespace(model="cifar_resnet8", dataset="", data_dir=None, input_size=None, img_size=28)
    torch.save({"epoch": 0, "arch": "cifar_resnet8", "state_dict": net.state_dict(), "args": args}, tmp_path / "t.pth")
    argv = ["eval", "--checkpoint", str(tmp_path / "t.pth"), "--dataset", "fashion_mnist", "--data-dir"]
    assert main([*argv, str(fmnist_dir)]) == 0
    assert f"{tmp_path / 't.pth'}: test top-1" in capsys.readouterr().out
