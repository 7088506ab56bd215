"""A timm user's command line on ``accord train``: timm's flags as aliases of the config keys that mean the same,
a hint to ``--set`` for a flag that names a config key, no prefixes, and run names that say the data set."""

from __future__ import annotations

import pytest
import yaml

from accord.cli import build_parser, main
from accord.cli_flags import train_overrides
from accord.config import load_config

CONFIG = "FashionMNIST-ResNet8-standard"


def resolved(*argv: str):
    args = build_parser().parse_args(["train", *argv])
    return load_config(args.config or CONFIG, train_overrides(args))


def test_timm_flags_set_the_keys_that_mean_the_same():
    cfg = resolved(
        *("--config", f"{CONFIG}-agmax", "-b", "8", "--lr", "0.05", "--model", "resnet10t", "--weight-decay", "1e-4"),
        *("--smoothing", "0.1", "--mixup", "0.8", "--cutmix", "1.0", "--mixup-prob", "0.5", "--model-ema"),
        *("--model-ema-decay", "0.99", "--opt", "adamw", "--sched", "multistep", "--warmup-epochs", "1", "-j", "0"),
        *("--drop", "0.1", "--drop-path", "0.05", "--clip-grad", "1.0", "--momentum", "0.8", "--channels-last"),
    )
    o, v = cfg.optim, cfg.views
    assert (cfg.model.model, o.batch_size, o.lr, o.lr_batch, o.weight_decay) == ("resnet10t", 8, 0.05, 8, 1e-4)
    assert cfg.method.loss["label_smoothing"] == 0.1
    assert (v.mix, v.mixup_alpha, v.cutmix_alpha, v.mix_prob) == ("mixup-cutmix", 0.8, 1.0, 0.5)
    assert (o.ema, o.ema_decay, o.optimizer, o.schedule, o.warmup_epochs, o.momentum) == (
        True,
        0.99,
        "adamw",
        "multistep",
        1,
        0.8,
    )
    assert (cfg.model.drop_rate, cfg.model.drop_path_rate, o.clip_grad, cfg.data.workers) == (0.1, 0.05, 1.0, 0)
    assert cfg.run.channels_last


def test_lr_is_timm_s_learning_rate_at_the_configs_batch_size():
    cfg = resolved("--lr", "0.05")
    assert (cfg.optim.lr, cfg.optim.lr_batch) == (0.05, cfg.optim.batch_size)  # applied as given, not rescaled


def test_smoothing_is_the_method_s_own_option_and_mixing_flags_follow_timm():
    assert resolved("--config", f"{CONFIG}-jsd", "--smoothing", "0.2").method.loss["smoothing"] == 0.2
    assert resolved("--mixup", "0.2").views.mix == "mixup"
    assert resolved("--config", "FashionMNIST-ResNet8-cutmix", "--cutmix", "0").views.mix == "none"


def test_an_unknown_flag_that_names_a_config_key_says_use_set(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--ema-decay", "0.9", "--val-fraction", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--ema-decay is config key 'ema_decay': use --set ema_decay=VALUE" in err
    assert "use --set val_fraction=VALUE" in err


@pytest.mark.parametrize("prefix", ["--smooth", "--model-em", "--weight-dec", "--batch"])
def test_timm_flags_take_no_prefixes(prefix, capsys):
    with pytest.raises(SystemExit) as done:
        main(["train", prefix, "1"])
    assert done.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_resume_refuses_timm_flags_rather_than_ignoring_them(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["train", "--resume", str(tmp_path), "--lr", "0.1", "-b", "8"])
    assert done.value.code == 2 and "drop --lr -b" in capsys.readouterr().err


def test_run_names_say_the_data_set(imagefolder_dir):
    cfg = resolved("--dataset", "imagefolder", "--data-dir", str(imagefolder_dir))
    assert cfg.name == "ImageFolder-ResNet8-standard"
    assert load_config("WRN28-10-CIFAR10-standard", {"dataset": "cifar100"}).name == "WRN28-10-CIFAR100-standard"
    assert (
        load_config("ResNet50-standard", {"dataset": "cifar10", "image_size": 32}).name == "CIFAR10-ResNet50-standard"
    )


def test_b_lr_model_trains(fmnist_dir, tmp_path, one_thread):
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(fmnist_dir), "-b", "8", "--lr", "0.05", "--model", "resnet10t", "--epochs", "1"]
    argv += ["--train-subset", "16", "-j", "0", "--set", "eval_batch_size=100", "--out", str(out)]
    assert main(argv) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["model"], saved["batch_size"], saved["lr"], saved["lr_batch"]) == ("resnet10t", 8, 0.05, 8)


def test_an_image_folder_run_can_select_on_val_as_timm_does(imagefolder_dir, tmp_path, one_thread):
    from accord.config import ConfigError
    from accord.data import build_splits

    split = build_splits("imagefolder", imagefolder_dir, val_fraction=0.25, image_size=32)
    folder = build_splits("imagefolder", imagefolder_dir, val_fraction=0.25, image_size=32, val_source="folder")
    assert (len(split.train), len(split.val), len(split.test)) == (18, 6, 9)
    assert (len(folder.train), len(folder.val)) == (24, 9) and folder.val is folder.test  # all of train/ trains
    with pytest.raises(ConfigError, match="val_source: folder selects on an image folder's val/"):
        load_config(CONFIG, {"val_source": "folder"})
    out = tmp_path / "run"
    argv = ["train", "--dataset", "imagefolder", "--data-dir", str(imagefolder_dir), "--img-size", "32", "-b", "8"]
    argv += ["--epochs", "1", "-j", "0", "--set", "val_source=folder", "--set", "eval_batch_size=16", "--out", str(out)]
    assert main(argv) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert saved["val_source"] == "folder" and summary["name"] == "ImageFolder-ResNet8-standard"
    assert summary["best_val_top1"] == summary["test_top1"]  # val/ selects and is reported
