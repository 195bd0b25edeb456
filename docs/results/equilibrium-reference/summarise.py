"""Summarise the cached units of the reference-protocol equilibrium run, whole or partial.

Usage (from the repository root, in an environment where sigprop is installed):
    python docs/results/equilibrium-reference/summarise.py [UNITS_FOLDER] [FIGURE.png]
UNITS_FOLDER defaults to docs/results/equilibrium-reference/units.  Prints a markdown table per network (key
[L, seed]: steps, the epoch and SGD step each threshold was reached, l* by the reference alignment at init, 0.1 and
0.02, l* by sigprop's alignment at 0.02) and the log-log fits with 95% Student-t intervals over the networks present;
with FIGURE.png also draws l* against L.  It reads the units with the package's own decoder and fits with its own
fit_power_law, the same as the experiment's combining step does.
"""
from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

import numpy as np

from sigprop.theory.equilibrium import equilibrium_layers
from sigprop.validation.cache import decode_value
from sigprop.validation.stats import fit_power_law

HERE = Path(__file__).parent


def load(folder: Path) -> dict:
    runs = {}
    for f in sorted(glob.glob(str(folder / "equilibrium-*.json"))):
        d = json.load(open(f))
        L, k = json.loads(d["unit"])
        runs[(L, k)] = (decode_value(d["value"]), float(d["elapsed"]))
    return runs


def argmax1(values) -> int | None:
    return None if values is None else int(np.argmax(values)) + 1


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "units"
    runs = load(folder)
    print("| L | seed | lr | SGD steps | epoch (step) at 0.1 | epoch (step) at 0.02 | l* init | l* at 0.1 | l* at 0.02 "
          "| l* at 0.02, sigprop's alignment | final full-set loss | train acc. | unit seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    from sigprop.validation.experiments.equilibrium import learning_rate, settings

    s = settings("full")
    points: dict[str, list[tuple[int, int]]] = {"reference, loss 0.02": [], "reference, loss 0.1": [],
                                               "sigprop's, loss 0.02": [], "reference, init": []}
    for (L, k), (v, seconds) in sorted(runs.items()):
        ref, ours = v["align"]["reference"], v["align"]["sigprop"]

        def reached(t):
            return f"{v['epoch_at'][t]} ({v['step_at'][t]})" if t in v["epoch_at"] else "not reached"

        l02, l01, o02 = argmax1(ref["at"].get(0.02)), argmax1(ref["at"].get(0.1)), argmax1(ours["at"].get(0.02))
        print(f"| {L} | {k} | {learning_rate(s, L):g} | {v['steps']} | {reached(0.1)} | {reached(0.02)} | "
              f"{argmax1(ref['init'])} | {l01} | {l02} | {o02} | {v['loss'][-1]:.4f} | {v['acc']:.4f} | "
              f"{seconds:.0f} |")
        for name, l in (("reference, loss 0.02", l02), ("reference, loss 0.1", l01), ("sigprop's, loss 0.02", o02),
                        ("reference, init", argmax1(ref["init"]))):
            if l is not None:
                points[name].append((L, l))
    print()
    print("| l* of | exponent | 95% CI | networks | depths |")
    print("|---|---|---|---|---|")
    fits = {}
    for name, p in points.items():
        depths = sorted({L for L, _ in p})
        if len(depths) >= 3:
            f = fit_power_law([L for L, _ in p], [l for _, l in p])
            fits[name] = f
            print(f"| {name} | {f.exponent:.3f} | [{f.ci_low:.3f}, {f.ci_high:.3f}] | {len(p)} | {depths} |")
    depths = sorted({L for L, _ in points["reference, loss 0.02"]})
    if len(depths) >= 3:
        th = fit_power_law(depths, equilibrium_layers(depths, continuous=True) + 1.0)
        print(f"| theory l*(L)+1 (equilibrium definition) | {th.exponent:.3f} | | | {depths} |")
    if len(sys.argv) > 2 and fits:
        _figure(points, fits, Path(sys.argv[2]))


def _figure(points, fits, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    all_depths = sorted({L for p in points.values() for L, _ in p})
    grid = np.geomspace(min(all_depths), max(all_depths), 50)
    for (name, p), marker in zip(points.items(), "os^d"):
        if name not in fits or name.endswith("init"):  # l* at init sits at layer 1 or near the top: no law to draw
            continue
        f = fits[name]
        L, l = np.array(p, dtype=float).T
        line = ax.plot(L, l, marker, ms=5, alpha=0.8,
                       label=f"{name}: b = {f.exponent:.2f} [{f.ci_low:.2f}, {f.ci_high:.2f}]")[0]
        ax.plot(grid, f.prefactor * grid ** f.exponent, "-", lw=1, color=line.get_color())
    ints = sorted({int(round(g)) for g in grid})
    ax.plot(ints, equilibrium_layers(ints, continuous=True) + 1.0, "k--", lw=1,
            label="theory l*(L)+1 (equilibrium definition)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xticks([L for L in all_depths if L in (10, 20, 30, 40, 50, 70, 100)])
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("depth L (Linear layers)")
    ax.set_ylabel("Linear layer of maximal alignment")
    ax.set_title("Reference protocol on MNIST-5k: l* against L (each point one network;\n"
                 "sigprop's alignment mostly coincides with the reference one)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
