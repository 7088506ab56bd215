"""scripts/device_check.sh, checked as far as a machine without a GPU allows: its dry run lists every step and runs
nothing, and scripts/device_report.py gathers a check's files into one JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device_check.sh"


def test_dry_run_lists_every_step_and_runs_nothing(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names[:6] == ["install", "cuda_tests", "bench_resnet8_32px", "bench_resnet18_32px", "jpegs",
                         "bench_resnet50_224px"]  # fmt: skip
    assert "--amp bf16" in done.stdout and f"--e2e-data {out}/jpegs" in done.stdout
    assert names[-1] == "collect"
    for method in ("", "-ls", "-agmax", "-agmax-mse", "-agmax-kl", "-agmax-ce", "-tied", "-jsd", "-ce2"):
        assert f"fmnist_standard{method}" in names  # 2 epochs of real Fashion-MNIST per method
    assert "--no-deps" in done.stdout and "-m cuda" in done.stdout and "--device cuda" in done.stdout
    assert not out.exists()  # a dry run writes nothing


def test_bad_arguments_are_one_usage_line():
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith("usage:")


def test_report_writes_a_folder_of_jpegs(tmp_path):
    script = ROOT / "scripts" / "device_report.py"
    done = subprocess.run([sys.executable, str(script), "jpegs", str(tmp_path), "6"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "jpegs" / "train").glob("*/*.jpg"))) == 6
    assert len(list((tmp_path / "jpegs" / "val").glob("*/*.jpg"))) == 8


def test_report_gathers_the_checks_files_into_one_json(tmp_path):
    (tmp_path / "steps.jsonl").write_text(
        '{"step": "install", "rc": 0, "seconds": 3}\n{"step": "x", "rc": 1, "seconds": 4}\n'
    )
    (tmp_path / "bench-resnet8-32px.json").write_text(json.dumps({"peak_memory_mb": {"ce_2v": 12.0}}))
    (tmp_path / "fmnist" / "standard").mkdir(parents=True)
    (tmp_path / "fmnist" / "standard" / "summary.json").write_text(json.dumps({"test_top1": 88.0}))
    (tmp_path / "cuda-tests.xml").write_text(
        '<testsuites><testsuite tests="2" failures="1" errors="0" skipped="0" time="1.5">'
        '<testcase name="a"/><testcase name="b"><failure/></testcase></testsuite></testsuites>'
    )
    script = ROOT / "scripts" / "device_report.py"
    done = subprocess.run([sys.executable, str(script), "collect", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "device_check.json").read_text())
    assert result["total_seconds"] == 7 and result["steps"][1]["rc"] == 1
    assert result["bench"]["resnet8-32px"]["peak_memory_mb"]["ce_2v"] == 12.0
    assert result["fashion_mnist"]["standard"]["test_top1"] == 88.0
    assert result["cuda_tests"]["failed"] == ["b"] and result["cuda_tests"]["tests"] == 2
