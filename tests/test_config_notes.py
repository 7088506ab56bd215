"""``accord configs NAME`` says where a Tied-Augment config does not take the authors' BatchNorm step."""

from __future__ import annotations

import yaml

from accord.cli import main
from accord.config import config_notes, load_config


def test_tied_configs_without_separate_passes_carry_a_note():
    (note,) = config_notes(load_config("FashionMNIST-ResNet8-standard-tied"))  # bn: concat, accord's default
    assert "not the Tied-Augment authors' step" in note and "bn: separate" in note
    assert config_notes(load_config("ResNet50-Tied-randaug-tied")) == []  # the paper configs set bn: separate
    assert config_notes(load_config("FashionMNIST-ResNet8-standard-agmax")) == []


def test_accord_configs_prints_the_note_as_a_yaml_comment(capsys):
    assert main(["configs", "FashionMNIST-ResNet8-standard-tied"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("# note: bn: concat is not the Tied-Augment authors' step")
    assert yaml.safe_load(out)["bn"] == "concat"  # still a loadable config
    assert main(["configs", "WRN28-10-TiedCIFAR10-randaug-tied"]) == 0
    assert "# note:" not in capsys.readouterr().out
