#!/usr/bin/env bash
# Set up accord on a fresh machine: a virtual environment in .venv with accord and its test tools, at the exact
# torch, torchvision and timm of scripts/constraints.txt (pyproject.toml declares ranges; the constraints pin the
# tested versions), and Debian's Fashion-MNIST package (the built-in real data set) when its files are missing.
# Safe to run again: it only installs what is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c "import accord, pytest, ruff, mypy, hypothesis, datasets, wandb, matplotlib, scipy" 2>/dev/null; then
  .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[test,report]" 2>&1 | grep -v "is neither a file nor a directory" || true
  .venv/bin/python -c "import accord, pytest" || { echo "setup: installing accord failed" >&2; exit 1; }
fi

fmnist=/usr/share/datasets/fashion-mnist
if [[ ! -f $fmnist/train-images-idx3-ubyte.gz ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
      || echo "setup: could not install dataset-fashion-mnist; see README (Data) for --data-dir" >&2
  else
    echo "setup: Fashion-MNIST is not in $fmnist. Install it with 'sudo apt-get install dataset-fashion-mnist'," \
      "or pass --data-dir to a folder with the four idx files (see README, Data)." >&2
  fi
fi
