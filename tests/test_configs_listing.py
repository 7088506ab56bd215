"""``accord configs``: every built-in config, grouped by model with the papers' recipes first, and filtered."""

from __future__ import annotations

import pytest

from accord.cli import main
from accord.config import list_configs
from accord.config.files import _fragments, split_name
from accord.config.listing import format_listing, model_order


def names(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_listing_has_every_config_once_grouped_with_the_paper_recipes_first(capsys):
    assert main(["configs"]) == 0
    out = capsys.readouterr().out
    assert sorted(names(out)) == sorted(list_configs())
    headers = [line.split(":")[0][2:] for line in out.splitlines() if line.startswith("# ")]
    assert headers == model_order()
    assert headers[-2:] == ["FashionMNIST-ResNet8", "FashionMNIST-ResNet20"] and headers[0] == "ResNet50"
    grouped = [split_name(n)[0] for n in names(out)]
    assert grouped == sorted(grouped, key=headers.index)  # each model's configs under its own line


@pytest.mark.parametrize("what", ["model", "aug", "method"])
def test_each_filter_keeps_exactly_the_configs_with_that_part(what):
    index = {"model": 0, "aug": 1, "method": 2}[what]
    values = {"model": list(_fragments("models")), "aug": list(_fragments("augs")),
              "method": ["ce", *_fragments("methods")]}[what]  # fmt: skip
    parts = {n: split_name(n) for n in list_configs()}
    for value in values:
        listed = names(format_listing(**{what: value}))
        expected = [n for n, part in parts.items() if (part[index] or "ce") == value]
        assert sorted(listed) == sorted(expected), value


def test_filters_combine_and_bad_values_are_one_line(capsys):
    assert main(["configs", "--model", "FashionMNIST-ResNet8", "--aug", "standard", "--method", "tied"]) == 0
    assert names(capsys.readouterr().out) == ["FashionMNIST-ResNet8-standard-tied"]
    assert main(["configs", "--method", "agmx"]) == 2
    err = capsys.readouterr().err
    assert "--method 'agmx': valid: ce, agmax" in err and err.count("\n") == 1
