"""Print the agreement weight with the best mean validation top-1 over a results script's tuning grids.

``python scripts/choose_weight.py TUNE_DIR METHOD`` reads ``TUNE_DIR/METHOD-<weight>/*/seed*/summary.json``,
writes the mean per weight to ``TUNE_DIR/METHOD.json`` and prints the best weight. The test set is not read.
"""

import json
import statistics
import sys
from pathlib import Path

root, method = Path(sys.argv[1]), sys.argv[2]
scores = {}
for folder in sorted(root.glob(f"{method}-*")):
    values = [json.loads(p.read_text())["best_val_top1"] for p in folder.glob("*/seed*/summary.json")]
    scores[folder.name.split("-", 1)[1]] = statistics.mean(values)
(root / f"{method}.json").write_text(json.dumps(scores, indent=2) + "\n")
print(max(scores, key=scores.get))
