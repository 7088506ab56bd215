#!/usr/bin/env bash
# The tests that compare floats or pixels across code paths (marked `numerics`), again on torch's other CPU
# vector paths: the scalar default path always, and AVX2 where the processor has more (AVX-512). The main
# run uses the processor's best path; a test that holds only on one path fails here, not on a user's machine.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(default)
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  paths+=(avx2)
fi
for path in "${paths[@]}"; do
  used=$(ATEN_CPU_CAPABILITY=$path .venv/bin/python -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
  echo "tests marked numerics, ATEN_CPU_CAPABILITY=$path (torch runs $used):"
  ATEN_CPU_CAPABILITY=$path .venv/bin/python -m pytest -q -p no:cacheprovider -m numerics
done
