"""The benchmark runs end to end at tiny sizes and writes every JSON field."""

from __future__ import annotations

import contextlib
import io
import json
import math

import pytest

from accord.bench import AUGMENT_ON, E2E_POLICIES, MEASURED_METHODS, check_result
from accord.bench.end_to_end import synthetic_fashion_mnist
from accord.cli import main
from accord.losses import method_spec

FIELDS = (
    "config",
    "device",
    "step_ms",
    "overhead_ratio",
    "own_bn_vs_concat",
    "loss_share_pct",
    "loader_views_per_s",
    "model_views_per_s",
    "loader_starves_model",
    "peak_memory_mb",
    "end_to_end_ratio",
    "end_to_end_views_per_s",
    "end_to_end_setup",
)


def positive_finite(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def cli_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One tiny benchmark run through the CLI (it calls run_benchmark): the JSON it wrote and its stdout."""
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    args = ["bench", "--batch", "4", "--image-size", "16", "--repeats", "2", "--device", "cpu", "--out", str(out)]
    args += ["--e2e-steps", "2", "--workers", "0"]
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
    own_bn = {m for m in MEASURED_METHODS if method_spec(m).bn != "concat"}
    assert set(result["own_bn_vs_concat"]) == own_bn and all(map(positive_finite, result["own_bn_vs_concat"].values()))
    assert all(0 < v < 1000 and math.isfinite(v) for v in result["loss_share_pct"].values())
    assert set(result["loader_views_per_s"]) == {"crop-flip", "crop-flip-randaug_2_14"}
    assert all(positive_finite(v) for d in result["loader_views_per_s"].values() for v in d.values())
    assert all(isinstance(v, bool) for v in result["loader_starves_model"].values())
    assert all(positive_finite(v) for v in result["peak_memory_mb"].values())
    check_result(result)


def test_cli_prints_table(cli_result: tuple[dict, str]) -> None:
    _, stdout = cli_result
    assert "overhead ratio" in stdout and "wrote" in stdout


def test_end_to_end_ratios(cli_result: tuple[dict, str]) -> None:
    """Every policy is measured with its views made in the loader and on the device, on the 2-step epochs
    asked for; the ratio is the one of the two rates (each a median, so only roughly their quotient)."""
    result, stdout = cli_result
    assert set(result["end_to_end_ratio"]) == set(E2E_POLICIES) == set(result["end_to_end_views_per_s"])
    for policy in E2E_POLICIES:
        assert set(result["end_to_end_ratio"][policy]) == set(AUGMENT_ON)
        for on in AUGMENT_ON:
            rates = result["end_to_end_views_per_s"][policy][on]
            assert positive_finite(rates["end_to_end"]) and positive_finite(rates["step_only"])
            assert positive_finite(result["end_to_end_ratio"][policy][on])
            assert f"| {policy} | {on} |" in stdout
    setup = result["end_to_end_setup"]
    assert (setup["steps"], setup["workers"], setup["batch"], setup["views"]) == (2, 0, 4, 2)
    assert "end_to_end_ratio" in stdout


def test_synthetic_fashion_mnist_reads_as_the_real_files(tmp_path) -> None:
    """Without Debian's files the end-to-end runs read random images of Fashion-MNIST's shape, through
    accord's own IDX reader."""
    from accord.data import build_splits

    splits = build_splits("fashion_mnist", synthetic_fashion_mnist(tmp_path, 12), val_fraction=0.0)
    image, label = splits.train[0]
    assert len(splits.train) == 12 and len(splits.test) == 10
    assert image.shape == (1, 28, 28) and image.dtype.is_floating_point is False and 0 <= label < 10


def test_cli_passes_compile_and_end_to_end_options(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """``--compile`` compiles the timed steps (model and loss together, as ``compile: true`` does in training);
    ``--e2e-steps`` and ``--workers`` set the end-to-end epochs."""
    import accord.bench as bench

    seen = {}
    monkeypatch.setattr(bench, "run_benchmark", lambda cfg, log: seen.setdefault("cfg", cfg) and {})
    monkeypatch.setattr(bench, "format_table", lambda result: "table")
    out = tmp_path / "b.json"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["bench", "--compile", "--e2e-steps", "7", "--workers", "1", "--out", str(out)]) == 0
    cfg = seen["cfg"]
    assert (cfg.compile, cfg.e2e_steps, cfg.e2e_workers) == (True, 7, 1)
