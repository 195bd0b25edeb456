"""Summarise the cached units (one per seed) of the nfa_protocol full run, whole or partial.

Usage (from the repository root, with sigprop installed):
    python docs/results/nfa-reference/summarise.py [UNITS_FOLDER]
UNITS_FOLDER defaults to docs/results/nfa-reference/units.  Prints, per layer and quantity, the mean over the seeds
present with its 95% Student-t interval (sigprop.validation.stats.mean_interval, as the experiment's combining step),
and per seed the best epoch, validation and test accuracy.
"""
from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from sigprop.validation.cache import decode_value
from sigprop.validation.stats import mean_interval

HERE = Path(__file__).parent
QUANTITIES = (("paper", "paper's: cos(W^T W, AGOP)"), ("reference_file", "reference file (verify_deep_NFA.py)"),
              ("sigprop_w0", "sigprop W0= : cos((W-W0)^T(W-W0), AGOP)"), ("pearson_sqrt", "Pearson(W^T W, AGOP^(1/2))"),
              ("paper_init", "paper's, at init"), ("pearson_sqrt_init", "Pearson(W^T W, AGOP^(1/2)), at init"))


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "units"
    runs = {}
    for f in sorted(glob.glob(str(folder / "nfa_protocol-*.json"))):
        d = json.load(open(f))
        runs[json.loads(d["unit"])] = (decode_value(d["value"]), float(d["elapsed"]))
    print("| seed | epochs | best epoch | best validation acc. | test acc. (best) | test acc. (last) | unit seconds |")
    print("|---|---|---|---|---|---|---|")
    for k, (v, el) in sorted(runs.items()):
        print(f"| {k} | {v['epochs']} | {v['best_epoch']} | {v['best_val_acc']:.4f} | {v['test_acc_best']:.4f} | "
              f"{v['test_acc_final']:.4f} | {el:.0f} |")
    print()
    layers = range(len(next(iter(runs.values()))[0]["layers"]))
    print("| quantity | " + " | ".join(f"layer_idx {i}" for i in layers) + " |")
    print("|---|" + "---|" * len(layers))
    for key, label in QUANTITIES:
        cells = []
        for i in layers:
            vals = [v["layers"][i][key] for v, _ in runs.values()]
            m, lo, hi = mean_interval(vals)
            cells.append(f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if len(vals) > 1 else f"{m:.3f}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\n{len(runs)} seed(s): {sorted(runs)}")


if __name__ == "__main__":
    main()
