"""Bad config input gets one ConfigError line that names the key and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.config import ConfigError, format_keys, load_config, parse_overrides

BASE = "FashionMNIST-ResNet8-standard"


def one_line(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_base_loops_are_one_line(tmp_path: Path):
    a, b, me = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "me.yaml"
    a.write_text(f"base: {b}\nepochs: 1\n")
    b.write_text(f"base: {a}\n")
    me.write_text("base: me.yaml\n")
    for path in (a, me):
        with pytest.raises(ConfigError, match="base: loops back") as info:
            load_config(path)
        one_line(info)


def test_a_file_may_start_from_another_file(tmp_path: Path):
    (tmp_path / "parent.yaml").write_text(f"base: {BASE}-tied\nepochs: 3\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nlr: 0.05\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.name, cfg.optim.epochs, cfg.optim.lr, cfg.method.method) == ("child", 3, 0.05, "tied")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=[1,2", "--set 'lr=\\[1,2': the value of 'lr' is not valid YAML"),
        ("milestones=[a,b]", "config key 'milestones': expected a list of int, got \\['a', 'b'\\]"),
        ("lr=[1, 2]", "config key 'lr': expected float"),
    ],
)
def test_bad_set_values(item: str, message: str):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(BASE, parse_overrides([item]))
    one_line(info)


def test_loss_option_typo_lists_the_methods_options():
    with pytest.raises(ConfigError, match="did you mean 'dl_weight'.*valid: hidden_units, dl_weight") as info:
        load_config(f"{BASE}-agmax", parse_overrides(["loss.dl_weigth=2"]))
    one_line(info)


def test_numbers_people_write_are_floats(tmp_path: Path):
    cfg = load_config(BASE, parse_overrides(["weight_decay=5e-4", "lr=1e-3", "warmup_lr=1E-5"]))
    assert (cfg.optim.weight_decay, cfg.optim.lr, cfg.optim.warmup_lr) == (5e-4, 1e-3, 1e-5)
    path = tmp_path / "mine.yaml"
    path.write_text(f"base: {BASE}\nweight_decay: 1e-4\nlr: 2e-1\n")
    cfg = load_config(path)
    assert (cfg.optim.weight_decay, cfg.optim.lr) == (1e-4, 0.2)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("lr=.nan", "'lr': must be a finite number"),
        ("lr=.inf", "'lr': must be a finite number"),
        ("lr=0", "'lr' must be positive"),
        ("weight_decay=-1e-4", "'weight_decay' must not be negative"),
        ("weight_decay=.inf", "'weight_decay': must be a finite number"),
        ("momentum=1.0", "'momentum' must be in \\[0, 1\\)"),
        ("momentum=-0.1", "'momentum' must not be negative"),
        ("gamma=.nan", "'gamma': must be a finite number"),
        ("loss.weight=.nan", "loss.weight: must be a finite number"),
    ],
)
def test_non_finite_and_out_of_range_numbers(item: str, message: str):
    name = f"{BASE}-tied" if item.startswith("loss.") else BASE
    with pytest.raises(ConfigError, match=message) as info:
        load_config(name, parse_overrides([item]))
    one_line(info)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "resnet5O"}, "unknown model 'resnet5O'.*Valid: ResNet8"),
        ({"policy": "crop-flipp"}, "unknown token 'flipp'"),
        ({"view_policies": ["crop-flip", "crop-randaugg"]}, "unknown token 'randaugg'"),
        ({"dataset": "mnist"}, "'dataset': 'mnist' is not one of fashion_mnist, cifar10, cifar100, imagefolder"),
    ],
)
def test_unknown_names_are_caught_at_resolution(overrides: dict, message: str, tmp_path: Path):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(BASE, overrides)
    one_line(info)


def test_help_keys_lists_every_key_with_type_default_and_description():
    text = format_keys()
    assert "  lr: float = 0.1\n      learning rate per lr_batch images" in text
    assert "  schedule: one of cosine, multistep = 'cosine'" in text
    assert "[optim]" in text and "[views]" in text


def test_cli_refuses_bad_names_before_any_folder(tmp_path: Path, capsys: pytest.CaptureFixture):
    from accord.cli import main

    out = tmp_path / "run"
    for item in ("model=resnet5O", "policy=crop-flipp", "dataset=mnist", "loss.bogus=1", "lr=1e-3x"):
        assert main(["train", "--config", BASE, "--set", item, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("accord: error: ") and err.count("\n") == 1, err
        assert not out.exists()


def test_cli_help_keys(capsys: pytest.CaptureFixture):
    from accord.cli import main

    assert main(["configs", f"{BASE}-tied", "--help-keys"]) == 0
    text = capsys.readouterr().out
    assert "  method: str = 'tied'" in text and "  lr: float = 0.1" in text
