#!/usr/bin/env bash
# Training images/s on one process vs N processes (torchrun, gloo on CPU / NCCL on GPU), measured side by
# side: REPEATS rounds, each training one epoch of TRAIN_SUBSET Fashion-MNIST images per method in one
# process and then in N; prints the median images/s of each and their ratio.
# Usage: bash scripts/process_throughput.sh [N] [REPEATS]   (threads: N processes x 1 vs 1 process x N)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
repeats=${2:-3}
out=${OUT:-/tmp/accord-throughput}
methods=${METHODS:-"standard standard-agmax standard-tied"}
sets=(--set train_subset=${TRAIN_SUBSET:-10000} --set epochs=1 --set workers=0 --set sync_bn=true)
for rep in $(seq 1 "$repeats"); do
  for m in $methods; do
    OMP_NUM_THREADS=$n .venv/bin/accord train --config "FashionMNIST-ResNet8-$m" "${sets[@]}" \
      --out "$out/1/$m-$rep" --overwrite > /dev/null
    OMP_NUM_THREADS=1 .venv/bin/python -m torch.distributed.run --standalone --nproc_per_node "$n" \
      -m accord train --config "FashionMNIST-ResNet8-$m" "${sets[@]}" --out "$out/$n/$m-$rep" --overwrite > /dev/null
  done
done
.venv/bin/python - "$out" "$n" $methods <<'PY'
import json, statistics, sys
from pathlib import Path
out, n, methods = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
print(f"| config | 1 process img/s | {n} processes img/s | ratio |\n|---|---|---|---|")
for m in methods:
    speed = {k: statistics.median(json.loads((d / "metrics.jsonl").read_text().splitlines()[0])["images_per_s"]
                                  for d in (out / k).glob(f"{m}-[0-9]*")) for k in ("1", n)}
    print(f"| FashionMNIST-ResNet8-{m} | {speed['1']:.0f} | {speed[n]:.0f} | {speed[n] / speed['1']:.2f} |")
PY
