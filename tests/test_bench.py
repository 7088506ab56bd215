"""The benchmark runs end to end at tiny sizes and writes every JSON field."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from accord.bench import MEASURED_METHODS, check_result
from accord.cli import main

FIELDS = (
    "config",
    "device",
    "step_ms",
    "overhead_ratio",
    "separate_vs_concat",
    "loss_share_pct",
    "loader_views_per_s",
    "model_views_per_s",
    "loader_starves_model",
    "peak_memory_mb",
)


def positive_finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def cli_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One tiny benchmark run through the CLI (it calls run_benchmark): the JSON it wrote and its stdout."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    args = ["bench", "--batch", "4", "--image-size", "16", "--repeats", "2", "--device", "cpu", "--out", str(out)]
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(args) == 0
    return json.loads(out.read_text()), buffer.getvalue()


def test_benchmark_fields_and_ratios(cli_result: tuple[dict, str]) -> None:
    result, _ = cli_result
    assert all(field in result for field in FIELDS)
    assert set(result["overhead_ratio"]) == set(MEASURED_METHODS) == set(result["loss_share_pct"])
    assert all(positive_finite(v) for v in result["overhead_ratio"].values())
    assert all(positive_finite(v) for v in result["step_ms"].values())
    assert positive_finite(result["separate_vs_concat"])
    assert all(0 < v < 1000 and math.isfinite(v) for v in result["loss_share_pct"].values())
    assert set(result["loader_views_per_s"]) == {"crop-flip", "crop-flip-randaug_2_14"}
    assert all(positive_finite(v) for d in result["loader_views_per_s"].values() for v in d.values())
    assert all(isinstance(v, bool) for v in result["loader_starves_model"].values())
    assert all(positive_finite(v) for v in result["peak_memory_mb"].values())
    check_result(result)


def test_cli_prints_table(cli_result: tuple[dict, str]) -> None:
    _, stdout = cli_result
    assert "overhead ratio" in stdout and "wrote" in stdout
