"""The JSON of scripts/device_check.sh.

``versions OUT``: the machine's Python, torch, torchvision, timm and GPU into ``OUT/versions.json``, failing (exit 1)
when torch or torchvision is outside the range pyproject.toml declares (the check also tests that range).
``jpegs OUT N``: ``N`` generated JPEGs of 256-320 px in an image folder ``OUT/jpegs`` (train/ of 4 classes, val/)
for the 224 px end-to-end comparison.
``collect OUT``: every figure the check wrote under ``OUT`` (versions, step times and exit codes, the cuda tests'
counts, the bench JSONs, each Fashion-MNIST run's summary) into ``OUT/device_check.json``.
"""

from __future__ import annotations

import json
import sys
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def versions(out: Path) -> int:
    import torch

    declared = {Requirement(r).name: Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "project"]["dependencies"]}  # fmt: skip
    found = {name: version(name) for name in ("torch", "torchvision", "timm")}
    outside = [
        f"{n} {v} (declared {declared[n].specifier})" for n, v in found.items() if v not in declared[n].specifier
    ]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info = {"python": sys.version.split()[0], **found, "cuda": torch.version.cuda, "gpu": gpu, "outside_range": outside}
    out.mkdir(parents=True, exist_ok=True)
    (out / "versions.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    if outside or gpu is None:
        print(
            f"device check: {'no CUDA device' if gpu is None else 'outside the declared range: ' + ', '.join(outside)}"
        )
        return 1
    return 0


def _tests(path: Path) -> dict:
    if not path.is_file():
        return {}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    failed = [
        c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None or c.find("error") is not None
    ]
    keys = ("tests", "failures", "errors", "skipped", "time")
    return {**{k: float(suite.get(k, 0)) for k in keys}, "failed": failed}


def collect(out: Path) -> int:
    def read(path: Path) -> dict | None:
        return json.loads(path.read_text()) if path.is_file() else None

    steps = (
        [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
        if (out / "steps.jsonl").is_file()
        else []
    )
    result = {
        "versions": read(out / "versions.json"),
        "steps": steps,
        "total_seconds": sum(s["seconds"] for s in steps),
        "cuda_tests": _tests(out / "cuda-tests.xml"),
        "bench": {p.stem.removeprefix("bench-"): read(p) for p in sorted(out.glob("bench-*.json"))},
        "fashion_mnist": {p.parent.name: read(p) for p in sorted(out.glob("fmnist/*/summary.json"))},
    }
    (out / "device_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'device_check.json'}: {len(steps)} steps, {result['total_seconds']} s")
    return 0


def jpegs(out: Path, count: int) -> int:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", 8)):
        for i in range(n):
            folder = out / "jpegs" / split / f"class{i % 4}"
            folder.mkdir(parents=True, exist_ok=True)
            height, width = (int(v) for v in rng.integers(256, 321, 2))
            ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
            pixels = (ramp + rng.integers(0, 56, (height, width, 3))).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    print(f"wrote {count} + 8 JPEGs under {out / 'jpegs'}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "jpegs":
        sys.exit(jpegs(Path(sys.argv[2]), int(sys.argv[3])))
    if len(sys.argv) != 3 or sys.argv[1] not in ("versions", "collect"):
        sys.exit("usage: device_report.py versions|collect OUT_DIR, or jpegs OUT_DIR COUNT")
    sys.exit({"versions": versions, "collect": collect}[sys.argv[1]](Path(sys.argv[2])))
