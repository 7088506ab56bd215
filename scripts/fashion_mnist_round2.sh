#!/usr/bin/env bash
# The second Fashion-MNIST results: Tied-Augment's own recipe (a weak view tied to a strong one) beside
# the controls, into docs/results/fashion-mnist/recipe. Same setup as the first grid (ResNet-8, a
# 10,000-image training subset drawn per seed, 5% validation split, 6 epochs, 5 seeds paired by seed),
# so its cells pair with docs/results/fashion-mnist/grid. Every step skips what is already done, so
# after an interruption the same command continues where it stopped.
#
# Rows (augmentations) and what each arm is:
#   randaug              (both views crop-flip-randaug_2_14-cutout):
#                        ce = the baseline with the strong policy (one view), ce2 = two strong views with
#                        CE only, tied = Tied-Augment with symmetric strong views, agmax, ce@2x
#   randaug-vs-standard  (view 1 strong, view 2 crop-flip, Tied-Augment's pair):
#                        ce = CE on both views of the pair (the two-view control of this row),
#                        tied = Tied-Augment's recipe, agmax = AgMax on the same pair
# In the second row the report's "baseline" column is that row's two-view CE, so its gains are what
# the agreement term adds on the same views.
#
# Usage: scripts/fashion_mnist_round2.sh [recipe|sizes|all]   (default all; sizes reads the weight the
# recipe's tuning chose, so it runs after recipe's step 1).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
case $stage in recipe|sizes|all) ;; *) echo "usage: $0 [recipe|sizes|all]" >&2; exit 2 ;; esac
accord=.venv/bin/accord
out=${OUT:-docs/results/fashion-mnist/recipe}

common=(--models FashionMNIST-ResNet8 --epochs 6 --train-subset 10000 --set val_fraction=0.05 --jobs 2)

# 1. Weights on the asymmetric pair, chosen by validation top-1 (seeds 0 and 1; the test set is not
#    looked at): Tied-Augment w in {1, 8, 64} (the paper sweeps 1-64), AgMax dl_weight in {1, 4, 16}.
for w in 1 8 64; do
  $accord grid "${common[@]}" --augs randaug-vs-standard --methods tied --seeds 2 \
    --set "tied:loss.weight=$w" --out "$out/tune/tied-$w"
done
for w in 1 4 16; do
  $accord grid "${common[@]}" --augs randaug-vs-standard --methods agmax --seeds 2 \
    --set "agmax:loss.dl_weight=$w" --out "$out/tune/agmax-$w"
done
choose() {  # the weight with the best mean validation top-1 over the tuning seeds
  .venv/bin/python scripts/choose_weight.py "$out/tune" "$1"
}
tied_w=$(choose tied)
agmax_w=$(choose agmax)
echo "chosen on validation: tied weight $tied_w, agmax dl_weight $agmax_w"

if [[ $stage == sizes ]]; then
  [[ -n $tied_w ]] || { echo "no tuned weight under $out/tune: run '$0 recipe' first" >&2; exit 1; }
else
# 2. The grid, paired by seed.
weights=(--set "tied:loss.weight=$tied_w" --set "agmax:loss.dl_weight=$agmax_w")
$accord grid "${common[@]}" --augs randaug --methods ce,ce2,tied,agmax,ce@2x --seeds 5 "${weights[@]}" --out "$out/grid"
$accord grid "${common[@]}" --augs randaug-vs-standard --methods ce,tied,agmax --seeds 5 "${weights[@]}" --out "$out/grid"

# 3. Tables and figures.
$accord report "$out/grid"
fi
[[ $stage == recipe ]] && exit 0

# 4. Data size: class-balanced training subsets of 100, 500 and 2,000 images per class (1,000 / 5,000 /
#    20,000 images), each drawn per seed from the training images outside the validation split (which
#    stays 5% of the full set, 3,000 images). Every size gets the same number of updates as the first
#    grid's 10,000 images x 6 epochs (epochs = 60 / 12 / 3), so a row differs in data, not in training
#    length; val and test are evaluated every 10,000 training images as there (eval_every = 10 / 2; the
#    20,000-image runs after each epoch), so evaluation does not outweigh training. Rows: the first
#    grid's methods on crop-flip (ce@2x is the equal-compute baseline), and Tied-Augment's recipe on its
#    asymmetric pair beside that pair's two-view CE.
#    SIZES="500:12 100:60" picks sizes and their order (per_class:epochs), default all three; SIZE_SEEDS=3
#    runs seeds 0-2 of every cell first (the same command with 5 then adds seeds 3-4).
for size in ${SIZES:-100:60 500:12 2000:3}; do
  per_class=${size%%:*}
  epochs=${size##*:}
  eval_every=$(( per_class >= 1000 ? 1 : 1000 / per_class ))
  sized=(--models FashionMNIST-ResNet8 --epochs "$epochs" --set val_fraction=0.05 --set "train_subset_per_class=$per_class"
    --set "eval_every=$eval_every"
    --jobs 2 --seeds "${SIZE_SEEDS:-5}" --out "$out/size-$per_class")
  $accord grid "${sized[@]}" --augs standard --methods ce,ce2,agmax,tied,ce@2x --set tied:loss.weight=1 --set agmax:loss.dl_weight=1
  $accord grid "${sized[@]}" --augs randaug-vs-standard --methods ce,tied --set "tied:loss.weight=$tied_w"
  $accord report "$out/size-$per_class"
done
.venv/bin/python scripts/plot_data_sizes.py "$out"
