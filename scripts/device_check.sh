#!/usr/bin/env bash
# The GPU check of accord, prepared to run on a machine lent with a GPU and no network, in under 6 minutes:
#
#   scripts/device_check.sh --prepare              # here, with the network: wheels and Fashion-MNIST into device/
#   scripts/device_check.sh OUT_DIR                # there: every figure into OUT_DIR/device_check.json, a log beside
#   scripts/device_check.sh --dry-run OUT_DIR      # lists every step, runs nothing
#
# It installs accord into the machine's own Python and torch without replacing them (pip install --no-deps -e .;
# what else is missing comes from the wheels in device/wheels, and torch/torchvision must already be inside
# pyproject.toml's ranges, which this also tests), then runs the `cuda` tests, `accord bench --device cuda` at 32 px
# (ResNet-8, resnet18) and at 224 px (resnet50, batch 128, amp bf16, end to end over a generated folder of JPEGs,
# views made in the loader with a worker per core and on the device), and 2 epochs of real Fashion-MNIST per method.
# PYTHON picks the interpreter (default python3); DEVICE_DATA the folder of wheels and data (default device/, not
# committed: it travels to the GPU machine with the working tree). The wheels are for the Python that --prepare runs
# (binary ones: kornia_rs, PyYAML, safetensors, scipy), so prepare with the GPU machine's Python version.
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
data=${DEVICE_DATA:-device}
wheels=$data/wheels
fmnist=$data/fashion-mnist
methods=(standard standard-ls standard-agmax standard-agmax-mse standard-agmax-kl standard-agmax-ce standard-tied standard-jsd
  standard-ce2)

usage() { echo "usage: $0 [--dry-run] OUT_DIR | --prepare" >&2; exit 2; }

prepare() {  # run where the network is: the pure-Python dependencies as wheels, and Debian's Fashion-MNIST files
  mkdir -p "$wheels" "$fmnist"
  "$python" -m pip download -q --no-deps --only-binary=:all: -d "$wheels" \
    "setuptools>=68" "timm>=1.0.27" kornia kornia_rs safetensors PyYAML tqdm pytest pluggy iniconfig packaging scipy \
    huggingface_hub
  cp -n /usr/share/datasets/fashion-mnist/*-ubyte.gz "$fmnist"/ 2>/dev/null \
    || echo "prepare: no Fashion-MNIST in /usr/share/datasets/fashion-mnist; put its four idx files in $fmnist" >&2
  ls "$wheels" "$fmnist"
}

dry=0
case ${1:-} in
  --prepare) prepare; exit $? ;;
  --dry-run) dry=1; shift ;;
  ""|-*) usage ;;
esac
[[ $# -eq 1 ]] || usage
out=$1
cores=$(nproc 2>/dev/null || echo 4)

# every step: a name and its command line (run with bash -c, the log gets its output, the JSON its time and status)
steps=(
  "install|$python -m pip install -q --no-deps --no-index --find-links $wheels -r scripts/device_requirements.txt \
&& $python -m pip install -q --no-deps --no-build-isolation -e . && $python scripts/device_report.py versions $out"
  "cuda_tests|$python -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py --junitxml=$out/cuda-tests.xml"
  "bench_resnet8_32px|$python -m accord bench --device cuda --model ResNet8 --batch 128 --repeats 3 --e2e-steps 20 \
--workers $cores --out $out/bench-resnet8-32px.json"
  "bench_resnet18_32px|$python -m accord bench --device cuda --model resnet18 --batch 128 --repeats 3 --e2e-steps 20 \
--workers $cores --out $out/bench-resnet18-32px.json"
  "jpegs|$python scripts/device_report.py jpegs $out 1408"
  "bench_resnet50_224px|$python -m accord bench --device cuda --model resnet50 --image-size 224 --batch 128 \
--amp bf16 --repeats 3 --e2e-steps 10 --e2e-data $out/jpegs --workers $cores --out $out/bench-resnet50-224px.json"
)
for m in "${methods[@]}"; do
  steps+=("fmnist_$m|$python -m accord train --config FashionMNIST-ResNet8-$m --data-dir $fmnist --set epochs=2 \
--set augment_on=device --set workers=$cores --out $out/fmnist/$m --overwrite")
done

if ((dry)); then
  for step in "${steps[@]}"; do printf '%-28s %s\n' "${step%%|*}" "${step#*|}"; done
  printf '%-28s %s\n' collect "$python scripts/device_report.py collect $out  (every figure into $out/device_check.json)"
  exit 0
fi

mkdir -p "$out"
log=$out/device_check.log
: >"$log"
status=$out/steps.jsonl
: >"$status"
start=$SECONDS
for step in "${steps[@]}"; do
  name=${step%%|*} command=${step#*|} t0=$SECONDS
  echo "== $name: $command" | tee -a "$log"
  timeout 300 bash -c "$command" >>"$log" 2>&1
  rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$log"
  printf '{"step": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" "$((SECONDS - t0))" >>"$status"
  if [[ $name == install && $rc != 0 ]]; then echo "install failed: see $log" >&2; exit 1; fi
done
"$python" scripts/device_report.py collect "$out" 2>&1 | tee -a "$log"
echo "device check: $((SECONDS - start)) s; $out/device_check.json, $log" | tee -a "$log"
