"""Experiment 2: per-layer Gram matrices of finite-width networks against the mean-field kernel recursion.

P = 3 inputs with different norms and correlations (G0 below).  For each activation and (C_W, C_b) --
on the critical line (``critical_point``) and away from it -- networks of several widths are simulated;
the mean over networks of each entry of ``preact_gram[l]`` (an unbiased estimate of ``E z_a.z_b / n``)
is extrapolated to ``n -> inf`` by WLS in 1/n and compared with ``K^(l)`` of ``kernel_recursion``,
``|intercept - K_ab| / SE <= zmax``, at a few layers.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding
from ..sweeps import width_sweep

NAME = "meanfield_kernels"

FINDING = Finding(
    claim="E[z_a.z_b/n] -> K^(l) of the mean-field recursion as n -> inf, at criticality and off it",
    source="Roberts, Yaida & Hanin", basis="checks")

G0 = np.array([[1.0, 0.6, -0.2],
               [0.6, 1.5, 0.3],
               [-0.2, 0.3, 0.7]])

# C_W = "critical" means critical_point(activation, C_b).C_W (chi_perp = 1 on an attracting variance fixed point);
# "double_critical" means (C_W, C_b) of correlators.double_critical_point (chi_par = chi_perp = 1): GELU has no
# critical point of the first kind (its attracting variance fixed point disappears before chi_perp reaches 1).
CONFIGS: list[dict[str, Any]] = [
    {"activation": "relu", "C_W": "critical", "C_b": 0.0},
    {"activation": "relu", "C_W": 1.5, "C_b": 0.2},
    {"activation": "tanh", "C_W": "critical", "C_b": 0.05},
    {"activation": "tanh", "C_W": 2.0, "C_b": 0.1},
    {"activation": "gelu", "C_W": "double_critical", "C_b": None},
    {"activation": "gelu", "C_W": 1.2, "C_b": 0.1},
    {"activation": "erf", "C_W": "critical", "C_b": 0.05},
    {"activation": "erf", "C_W": 0.7, "C_b": 0.0},
]


def settings(profile: str) -> dict[str, Any]:
    if profile == "smoke":
        return {"configs": [CONFIGS[0], CONFIGS[3]], "widths": [32, 64, 128], "budget": 32 * 150, "depth": 4,
                "judge_layers": [1, 4], "order": 1, "G0": G0.tolist()}
    if profile == "quick":
        return {"configs": CONFIGS, "widths": [32, 64, 128, 256], "budget": 64 * 2000, "depth": 10,
                "judge_layers": [1, 4, 10], "order": 1, "G0": G0.tolist()}
    if profile == "full":
        return {"configs": CONFIGS, "widths": [64, 128, 256, 512, 1024], "budget": 128 * 30000, "depth": 30,
                "judge_layers": [1, 2, 5, 10, 20, 30], "order": 1, "G0": G0.tolist()}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def resolve(cfg: dict[str, Any]) -> tuple[float, float, str]:
    """(C_W, C_b, label) of a configuration, solving for the critical C_W when asked."""
    from sigprop.theory.meanfield import critical_point

    if cfg["C_W"] == "double_critical":
        from sigprop.theory.correlators import double_critical_point

        C_W, C_b, K_star = double_critical_point(cfg["activation"])
        return float(C_W), float(C_b), f"{cfg['activation']} double-critical C_W={C_W:.4g} C_b={C_b:.3g}"
    C_b = float(cfg["C_b"])
    if cfg["C_W"] == "critical":
        cp = critical_point(cfg["activation"], C_b=C_b)
        return float(cp.C_W), C_b, f"{cfg['activation']} critical C_W={cp.C_W:.4g} C_b={C_b:g}"
    return float(cfg["C_W"]), C_b, f"{cfg['activation']} C_W={float(cfg['C_W']):g} C_b={C_b:g}"


def simulate_grams(act, C_W: float, C_b: float, G0: np.ndarray, widths, depth: int, budget: int, seed_of,
                   backend: str = "cpu", track=lambda it, **kw: it) -> dict[int, dict[str, Any]]:
    """Per width: mean and SE over networks of ``preact_gram`` (L, P, P); ``S = max(50, budget // n)``."""
    return width_sweep(act, G0=G0, widths=widths, depth=depth, budget=budget, seed_of=seed_of,
                       statistic=lambda res: np.asarray(res.preact_gram), track=track, desc=f"{act} widths",
                       C_W=C_W, C_b=C_b, method="gram", backend=backend)


def kernel_checks(label: str, sims, K: np.ndarray, layers, order: int = 1, experiment: str = NAME):
    widths = sorted(sims)
    P = K.shape[-1]
    checks, fits = [], {}
    for l in layers:
        for a in range(P):
            for b in range(a, P):
                y = [sims[n]["mean"][l - 1, a, b] for n in widths]
                se = [sims[n]["se"][l - 1, a, b] for n in widths]
                fit = stats.wls_extrapolate(widths, y, se, order=order)
                fits[(l, a, b)] = fit
                checks.append(Check(
                    experiment=experiment, name=f"{label} layer {l} K_{a}{b}", theory=float(K[l - 1, a, b]),
                    estimate=fit.intercept, stderr=fit.intercept_se,
                    rule=f"1/n WLS extrapolation over widths {widths}, |z| <= zmax",
                    details={"widths": widths, "means": y, "ses": se, "fit": fit.to_dict()}))
    return checks, fits


def units(s: dict[str, Any]) -> list[int]:
    """The units of work: the simulations of configuration ``i`` (one per configuration whose critical point the
    theory places)."""
    keys = []
    for i, cfg in enumerate(s["configs"]):
        try:
            resolve(cfg)
        except ValueError:  # reported as a failed check by run
            continue
        keys.append(i)
    return keys


def run_unit(ctx: Context, s: dict[str, Any], i: int) -> dict[int, dict[str, Any]]:
    """Per width, the simulated mean and SE of the Grams of configuration ``i`` (:func:`simulate_grams`)."""
    cfg = s["configs"][int(i)]
    C_W, C_b, label = resolve(cfg)
    return simulate_grams(cfg["activation"], C_W, C_b, np.asarray(s["G0"], dtype=float), s["widths"], s["depth"],
                          s["budget"], lambda n: ctx.sub_seed(NAME, label, n), ctx.backend)


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    from sigprop.theory.meanfield import kernel_recursion

    G = np.asarray(s["G0"], dtype=float)
    checks: list[Check] = []
    rows = []
    keys = units(s)
    simulated = dict(zip(keys, ctx.run_units(run_unit, keys, s, desc=NAME)))
    for i, cfg in enumerate(s["configs"]):
        try:
            C_W, C_b, label = resolve(cfg)
        except ValueError as exc:  # the theory could not place the critical point: a failure, reported
            checks.append(Check(NAME, f"{cfg['activation']} critical point (C_b={cfg['C_b']})", theory=0.0,
                                estimate=float("nan"), stderr=0.0, kind="exact", tol=0.0,
                                rule="critical_point must solve chi_perp(K*) = 1", details={"error": str(exc)}))
            continue
        K = kernel_recursion(cfg["activation"], G, s["depth"], C_W, C_b)
        sims = simulated[i]
        layers = [l for l in s["judge_layers"] if l <= s["depth"]]
        c, fits = kernel_checks(label, sims, K, layers, s["order"])
        checks += c
        dropped = sum(v["n_dropped"] for v in sims.values())
        if dropped:
            checks.append(Check(NAME, f"{label} non-finite networks dropped", 0.0, float(dropped), 0.0,
                                "reported", kind="info"))
        rows.append({"cfg": cfg, "label": label, "K": K, "sims": sims, "fits": fits, "layers": layers, "checks": c})
    figures = [_figure(ctx, rows, s)] if rows else []
    table = ["| configuration | networks per width (n: S) |", "|---|---|"]
    for r in rows:
        table.append(f"| {r['label']} | " + ", ".join(f"{n}: {v['n_networks']}" for n, v in sorted(r["sims"].items()))
                     + " |")
    notes = ("G0 = X X^T / n_0 = " + np.array2string(G, precision=2).replace("\n", "") + ". The estimate of K^(l)_ab "
             "at width n is the mean over networks of z_a.z_b/n at layer l; its 1/n bias (zero at layer 1, and on the "
             "diagonal for ReLU at criticality) is removed by the WLS extrapolation.")
    checks.append(FINDING.as_check(NAME, "finding: K^(l) of the mean-field recursion (verdict from the judged checks)"))
    return ExperimentResult(checks=checks, figures=figures, tables=["\n".join(table)], notes=notes)


def _figure(ctx: Context, rows, s):
    from ..plotting import COLORS, errorbar, save, subplots

    acts = list(dict.fromkeys(r["cfg"]["activation"] for r in rows))
    fig, axes = subplots(len(acts), 3, panel=(3.5, 2.6))
    P = rows[0]["K"].shape[-1]
    pairs = [(a, b) for a in range(P) for b in range(a, P)]
    for i, act in enumerate(acts):
        mine = [r for r in rows if r["cfg"]["activation"] == act]
        for j, r in enumerate(mine[:2]):
            ax = axes[i][j]
            L = r["K"].shape[0]
            ls = np.arange(1, L + 1)
            widest = max(r["sims"])
            for k, (a, b) in enumerate(pairs):
                col = COLORS[k % len(COLORS)]
                ax.plot(ls, r["K"][:, a, b], color=col, lw=1, label=f"K_{a}{b}")
                ax.plot(ls, r["sims"][widest]["mean"][:, a, b], ".", color=col, ms=3, alpha=0.6)
                fits = [r["fits"][(l, a, b)] for l in r["layers"]]
                errorbar(ax, r["layers"], [f.intercept for f in fits], [f.intercept_se for f in fits], color=col,
                         marker="s", ms=4, mfc="none")
            ax.set_title(r["label"], fontsize=8)
            ax.set_xlabel("layer l")
            ax.set_ylabel(r"$K^{(l)}_{ab}$")
            if i == 0 and j == 0:
                ax.legend(fontsize=6, ncol=2)
        ax = axes[i][2]
        for j, r in enumerate(mine):
            zs = np.array([c.z for c in r["checks"]])
            lay = np.repeat(r["layers"], len(pairs))
            ax.plot(lay + (j - 0.5) * 0.25, zs, "o", ms=3, label=r["label"])
        ax.axhline(0, color="k", lw=0.6)
        for sgn in (-1, 1):
            ax.axhline(sgn * 3, color="0.6", ls=":", lw=0.8)
        ax.set_xlabel("layer l")
        ax.set_ylabel("z = (extrapolated - theory) / SE")
        ax.set_title(f"{act}: z-scores (dotted: |z| = 3)", fontsize=8)
        ax.legend(fontsize=5)
    fig.suptitle("Mean-field kernels: lines = kernel_recursion, dots = widest-width mean, squares = 1/n extrapolation",
                 fontsize=9)
    path = save(fig, ctx.figure_path(NAME, "kernels"))
    return ("Per-layer kernel entries K_ab: theory (lines), mean over networks at the widest width (dots), WLS "
            "extrapolation to n -> inf with +-1 SE (squares), on and off the critical line; right: z-scores of all "
            "checks", path)


EXPERIMENT = Experiment(
    name=NAME,
    title="Mean-field kernel recursion vs finite-width networks",
    description=("P = 3 inputs; for ReLU, tanh, GELU and erf at and away from criticality, the per-layer Gram "
                 "matrix of simulated networks, extrapolated to infinite width by WLS in 1/n over several widths, "
                 "is compared entry by entry with the kernel recursion K^(l+1) = C_b + C_W <phi phi>_{K^(l)}."),
    settings=settings,
    run=run,
    order=20,
    units=units,
    run_unit=run_unit,
)
