"""examples/timm_train.py: every registered method with every --mix trains two steps (EMA, timm checkpoints) or is
refused at start-up with one line."""

from __future__ import annotations

import os
import re
import runpy
import sys
from pathlib import Path

import pytest

from accord.losses import METHODS

ROOT = Path(__file__).resolve().parents[1]
MIXES = ("none", "mixup", "cutmix", "mixup-cutmix")


def run_example(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["timm_train.py", *argv])
    runpy.run_path(str(ROOT / "examples" / "timm_train.py"), run_name="__main__")


@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_with_every_mix_trains_or_is_refused(
    method, mix, fmnist_dir, tmp_path, monkeypatch, capsys, one_thread
):
    argv = ["--data-dir", str(fmnist_dir), "--steps", "2", "--method", method, "--batch-size", "16", "--mix", mix]
    argv += ["--model-ema", "--output", str(tmp_path)]
    if METHODS[method].mixing is None and mix != "none":
        with pytest.raises(SystemExit) as exit:
            run_example(argv, monkeypatch)
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            exit.value.code == 2
            and err[-1] == f"timm_train.py: error: method {method!r} refuses MixUp/CutMix (drop --mixup/--cutmix)"
        )
        assert not os.listdir(tmp_path)  # refused before anything was trained or written
        return
    run_example(argv, monkeypatch)
    out = capsys.readouterr().out
    assert "step 2: loss" in out
    assert re.search(rf"{method}: test top-1 \d+\.\d\d, EMA test top-1 \d+\.\d\d after 2 steps", out), out
    assert {"last.pth.tar", "model_best.pth.tar"} <= set(os.listdir(tmp_path))
