#!/usr/bin/env bash
# Reproduce docs/results/fashion-mnist: tune the agreement weights on the validation split, run the
# grid (5 augmentations x 6 methods x 5 seeds), run two of its rows again at 3x the epochs, and write
# the reports. Every step skips what is already done, so after an interruption the same command
# continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
accord=.venv/bin/accord
out=${OUT:-docs/results/fashion-mnist}
setup=(--train-subset 10000 --set val_fraction=0.05 --jobs 2)
common=(--models FashionMNIST-ResNet8 --epochs 6 "${setup[@]}")

# 1. Agreement weights, chosen once by validation top-1 (standard policy, seeds 0 and 1); the test set
#    is not looked at. Tied-Augment: w in {1, 8, 64} (the paper sweeps 1-64); AgMax: dl_weight in {1, 4, 16}.
for w in 1 8 64; do
  $accord grid "${common[@]}" --augs standard --methods tied --seeds 2 --set "tied:loss.weight=$w" --out "$out/tune/tied-$w"
done
for w in 1 4 16; do
  $accord grid "${common[@]}" --augs standard --methods agmax --seeds 2 --set "agmax:loss.dl_weight=$w" --out "$out/tune/agmax-$w"
done
choose() {  # the weight with the best mean validation top-1 over the tuning seeds
  .venv/bin/python scripts/choose_weight.py "$out/tune" "$1"
}
tied_w=$(choose tied)
agmax_w=$(choose agmax)
echo "chosen on validation: tied weight $tied_w, agmax dl_weight $agmax_w"

# 2. The grid, paired by seed; ce2 = two views with CE only, ce@2x = baseline with twice the epochs.
$accord grid "${common[@]}" --augs standard,cutout,mixup,cutmix,auto_augment \
  --methods ce,ls,agmax,tied,ce2,ce@2x --seeds 5 \
  --set "tied:loss.weight=$tied_w" --set "agmax:loss.dl_weight=$agmax_w" --out "$out/grid"

# 3. Tables and figure.
$accord report "$out/grid"

# 4. A longer budget, 18 epochs (36 for ce@2x) and the same weights: the MixUp row, where Tied-Augment
#    gained most, and the standard row, where nothing gained.
longer=(--models FashionMNIST-ResNet8 --epochs 18 "${setup[@]}" --seeds 5
  --set "tied:loss.weight=$tied_w" --set "agmax:loss.dl_weight=$agmax_w" --out "$out/longer")
$accord grid "${longer[@]}" --augs mixup --methods ce,agmax,tied,ce2,ce@2x
$accord grid "${longer[@]}" --augs standard --methods ce,ls,agmax,tied,ce@2x
$accord report "$out/longer"
