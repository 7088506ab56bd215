"""The README's Python example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        if "local-dir:flowers-resnet18" in block:
            continue  # the own-data example needs its folder: tests/test_readme_own_data.py runs it
        exec(compile(block, str(README), "exec"), {})
