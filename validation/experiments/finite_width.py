"""Experiment: finite-width correlators (docs/derivations.md, section 3) against simulated networks.

Checks (kind 'z'):
  * deep linear (C_W = 1, G0 = 1): exact ``G_4 = prod (1 + 2/n) G_2^2`` (cross-neuron estimator) and
    ``G_6 = prod (1 + 2/n)(1 + 4/n) G_2^3`` (Gram estimator ``mean(m2^3)/c_6(n)``) at fixed widths;
  * critical ReLU: exact ``E z^4 / (3 (E z^2)^2) - 1 = prod (1 + 5/n) - 1`` and ``E z^2 = K`` at fixed widths;
  * tanh (C_W = 1) and GELU at its double critical point: ``lim n (E z^4/(3 (E z^2)^2) - 1) = V/K^2`` of the
    leading-order recursion, against the WLS intercept in 1/n of ``n * ratio`` over several widths;
  * two-input ReLU: ``lim n kappa_(ab)(cd) = V_(ab)(cd)`` of the multi-input recursion (WLS intercept).
All estimates are means over independent networks with jackknife standard errors (validation/correlator_estimators.py).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigprop.kernels.learning.datasets import inputs_with_gram
from sigprop.theory.errors import InputError

from .. import stats
from ..correlator_estimators import gram_four_point, gram_moment, reliable_layers, single_input_estimates
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding

NAME = "finite_width"

FINDING = Finding(
    claim="exact deep-linear and ReLU moments at any width; leading-order 1/n vertex V/K^2",
    source="Roberts, Yaida & Hanin", basis="checks")


def settings(profile: str) -> dict[str, Any]:
    """``runs``: [width, depth, networks] for the exact families (layers judged only where the estimator's tails
    allow a trustworthy SE, see :func:`sigprop.validation.correlator_estimators.reliable_layers`); ``widths`` for 1/n
    fits."""
    G0 = [[1.0, 0.4], [0.4, 0.7]]
    if profile == "smoke":
        return {"linear": {"runs": [[4, 2, 20_000], [32, 4, 4_000]]},
                "relu": {"runs": [[4, 2, 20_000], [32, 4, 4_000]]},
                "tanh": {"depth": 3, "widths": [16, 32, 64], "networks": 4_000, "check_shift": True},
                "gelu": {"depth": 3, "widths": [32, 64, 128], "networks": 4_000},
                "multi": {"depth": 2, "widths": [16, 32], "networks": 4_000, "G0": G0}}
    if profile == "quick":
        return {"linear": {"runs": [[4, 2, 1_000_000], [8, 4, 200_000], [32, 8, 20_000]]},
                "relu": {"runs": [[4, 2, 1_000_000], [8, 4, 200_000], [32, 6, 50_000]]},
                "tanh": {"depth": 4, "widths": [8, 16, 32, 64], "networks": 40_000, "check_shift": True},
                "gelu": {"depth": 4, "widths": [32, 64, 128, 256], "networks": 20_000},
                "multi": {"depth": 3, "widths": [16, 32, 64], "networks": 30_000, "G0": G0}}
    if profile == "full":
        return {"linear": {"runs": [[4, 3, 4_000_000], [8, 5, 1_000_000], [16, 8, 400_000], [32, 12, 200_000],
                                    [64, 16, 100_000]]},
                "relu": {"runs": [[4, 2, 4_000_000], [8, 4, 1_000_000], [16, 6, 400_000], [32, 8, 200_000],
                                  [64, 12, 100_000]]},
                "tanh": {"depth": 8, "widths": [16, 32, 64, 128, 256], "networks": 100_000, "check_shift": True},
                "gelu": {"depth": 6, "widths": [64, 128, 256, 512], "networks": 50_000},
                "multi": {"depth": 5, "widths": [32, 64, 128, 256], "networks": 100_000, "G0": G0}}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def _simulate(ctx: Context, act, X, depth, n, S, C_W, C_b, key):
    from sigprop.kernels import simulate

    return simulate(X, depth=depth, width=n, activation=act, C_W=C_W, C_b=C_b, n_networks=S, method="gram",
                    backend=ctx.backend, seed=ctx.sub_seed(NAME, key, n))


def _x(G0: float, n0: int = 4) -> np.ndarray:
    return np.full((1, n0), math.sqrt(G0))


def _judged_layers(depth: int) -> list[int]:
    return sorted({max(2, depth // 2), depth})


def _m2_moment(family: str, k: int, n: int, depth: int, C_W: float) -> np.ndarray:
    """Exact ``E[m2^k]`` per layer, ``m2 = mean_i z_i^2``: ``c_2k(n) G_2k`` (conditionally Gaussian neurons)."""
    from sigprop.theory.correlators import deep_linear_moments, relu_moments

    G = (deep_linear_moments if family == "identity" else relu_moments)(k, [n] * depth, C_W)
    return math.prod(1.0 + 2.0 * j / n for j in range(k)) * G


def _exact_family(ctx, s, label, act, C_W, theory_ratio, checks, curves):
    """Deep linear / ReLU: fixed-width checks of exact results at the layers where the SE can be trusted."""
    from sigprop.theory.correlators import deep_linear_moments

    rule = "exact at width n, |z| <= zmax"
    for n, depth, S in ctx.track(s["runs"], desc=f"{NAME}: {label}"):
        r = _simulate(ctx, act, _x(1.0), depth, n, S, C_W, 0.0, label)
        m2, m4 = r.preact_m2[:, :, 0], r.preact_m4[:, :, 0]
        cross = single_input_estimates(m2, m4, n, "cross")
        single = single_input_estimates(m2, m4, n, "single")
        th = theory_ratio([n] * depth)
        ok4 = reliable_layers(_m2_moment(act, 4, n, depth, C_W), _m2_moment(act, 8, n, depth, C_W), S)
        ok6 = reliable_layers(_m2_moment(act, 6, n, depth, C_W), _m2_moment(act, 12, n, depth, C_W), S)
        curves[(label, n)] = {"ratio": cross.ratio, "theory": th, "reliable": ok4, "networks": S}
        good = [l for l in range(2, depth + 1) if ok4[l - 1]]
        for l in sorted({good[len(good) // 2], good[-1]}) if good else []:
            checks.append(Check(NAME, f"{label}: G4/G2^2 - 1, n={n}, layer {l} (cross-neuron)", float(th[l - 1]),
                                float(cross.ratio.value[l - 1]), float(cross.ratio.se[l - 1]), rule,
                                details={"estimator": "(n m2^2 - m4)/(n-1) over mean m2 squared, jackknife",
                                         "networks": S}))
        if good:
            l = good[-1]
            checks.append(Check(NAME, f"{label}: G4/G2^2 - 1, n={n}, layer {l} (single-neuron E z^4/3)",
                                float(th[l - 1]), float(single.ratio.value[l - 1]), float(single.ratio.se[l - 1]),
                                rule, details={"networks": S}))
            g2 = cross.G2
            K = C_W ** l if act == "identity" else C_W
            checks.append(Check(NAME, f"{label}: E z^2 = K, n={n}, layer {l}", float(K), float(g2.value[l - 1]),
                                float(g2.se[l - 1]), rule))
        good6 = [l for l in range(2, depth + 1) if ok6[l - 1]]
        if act == "identity" and good6:
            l = good6[-1]
            g6 = gram_moment(m2, 3, n)
            th6 = deep_linear_moments(3, [n] * depth, C_W, 1.0)
            checks.append(Check(NAME, f"{label}: G6, n={n}, layer {l}", float(th6[l - 1]), float(g6.value[l - 1]),
                                float(g6.se[l - 1]), rule, details={"estimator": "mean(m2^3)/c_6(n), jackknife",
                                                                    "networks": S}))


def _extrapolated(ctx, s, label, act, C_W, C_b, G0, checks, fits):
    from sigprop.theory.correlators import vertex_recursion

    depth = s["depth"]
    th = vertex_recursion(act, [100] * depth, C_W, C_b, G0)
    theory = th.V / th.K**2  # lim_n n (E z^4 / (3 (E z^2)^2) - 1), per layer
    shift = vertex_recursion(act, [1] * depth, C_W, C_b, G0).dK  # coefficient of 1/n in E z^2 - K (equal widths)
    ys, ses, g2, g2se = [], [], [], []
    for n in ctx.track(s["widths"], desc=f"{NAME}: {label}"):
        r = _simulate(ctx, act, _x(G0), depth, n, s["networks"], C_W, C_b, label)
        e = single_input_estimates(r.preact_m2[:, :, 0], r.preact_m4[:, :, 0], n, "cross")
        ys.append(n * np.asarray(e.ratio.value))
        ses.append(n * np.asarray(e.ratio.se))
        g2.append(n * (np.asarray(e.G2.value) - th.K))
        g2se.append(n * np.asarray(e.G2.se))
    ys, ses, g2, g2se = np.array(ys), np.array(ses), np.array(g2), np.array(g2se)
    for l in _judged_layers(depth):
        fit = stats.wls_extrapolate(s["widths"], ys[:, l - 1], ses[:, l - 1], order=1)
        fits[(label, l)] = {"fit": fit, "y": ys[:, l - 1], "se": ses[:, l - 1], "theory": float(theory[l - 1]),
                            "widths": s["widths"]}
        checks.append(Check(
            NAME, f"{label}: lim n (G4/G2^2 - 1) = V/K^2, layer {l}", float(theory[l - 1]), fit.intercept,
            fit.intercept_se, f"1/n WLS extrapolation over widths {s['widths']}, |z| <= zmax",
            details={"widths": s["widths"], "n_ratio": ys[:, l - 1].tolist(), "ses": ses[:, l - 1].tolist(),
                     "fit": fit.to_dict(), "C_W": C_W, "C_b": C_b, "G0": G0}))
    if not s.get("check_shift", False):
        return
    fit = stats.wls_extrapolate(s["widths"], g2[:, -1], g2se[:, -1], order=1)
    checks.append(Check(
        NAME, f"{label}: lim n (E z^2 - K) = n dK, layer {depth}", float(shift[-1]), fit.intercept, fit.intercept_se,
        f"1/n WLS extrapolation over widths {s['widths']}, |z| <= zmax",
        details={"n_shift": g2[:, -1].tolist(), "ses": g2se[:, -1].tolist(), "fit": fit.to_dict()}))


def _multi(ctx, s, checks):
    from sigprop.theory.correlators import multi_input_vertex_recursion

    G0 = np.asarray(s["G0"], dtype=float)
    depth = s["depth"]
    X = inputs_with_gram(G0)  # x_a . x_b / n_0 = G0 with n_0 = 2
    th = multi_input_vertex_recursion("relu", [100] * depth, 2.0, 0.0, G0)
    vals, ses = [], []
    for n in ctx.track(s["widths"], desc=f"{NAME}: two-input ReLU"):
        r = _simulate(ctx, "relu", X, depth, n, s["networks"], 2.0, 0.0, "multi")
        kappa, _ = gram_four_point(r.preact_gram[:, -1], n)
        vals.append(n * kappa.value)
        ses.append(n * kappa.se)
    vals, ses = np.array(vals), np.array(ses)
    names = [f"({a + 1}{b + 1})" for a, b in th.pairs]
    for p in range(len(names)):
        for q in range(p, len(names)):
            fit = stats.wls_extrapolate(s["widths"], vals[:, p, q], ses[:, p, q], order=1)
            checks.append(Check(
                NAME, f"two-input ReLU: V_{names[p]}{names[q]}, layer {depth}", float(th.V[-1][p, q]), fit.intercept,
                fit.intercept_se, f"1/n WLS extrapolation of n kappa over widths {s['widths']}, |z| <= zmax",
                details={"widths": s["widths"], "n_kappa": vals[:, p, q].tolist(), "fit": fit.to_dict()}))


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    from sigprop.theory.correlators import deep_linear_moments, double_critical_point, relu_kurtosis_ratio

    checks: list[Check] = []
    curves: dict = {}
    fits: dict = {}
    _exact_family(ctx, s["linear"], "deep linear", "identity", 1.0,
                  lambda w: deep_linear_moments(2, w) / deep_linear_moments(1, w) ** 2 - 1.0, checks, curves)
    _exact_family(ctx, s["relu"], "ReLU (C_W=2)", "relu", 2.0, lambda w: relu_kurtosis_ratio(w) - 1.0, checks, curves)
    _extrapolated(ctx, s["tanh"], "tanh (C_W=1, C_b=0)", "tanh", 1.0, 0.0, 1.0, checks, fits)
    C_W, C_b, K = double_critical_point("gelu")
    _extrapolated(ctx, s["gelu"], f"GELU (C_W={C_W:.4f}, C_b={C_b:.4f})", "gelu", C_W, C_b, (K - C_b) / C_W,
                  checks, fits)
    _multi(ctx, s["multi"], checks)
    figures = [_ratio_figure(ctx, s, curves), _extrapolation_figure(ctx, fits)]
    table = ["| check | theory | estimate | SE | z |", "|---|---|---|---|---|"]
    for c in checks:
        table.append(f"| {c.name} | {c.theory:.5g} | {c.estimate:.5g} | {c.stderr:.2g} | {c.z:+.2f} |")
    notes = ("G_2m = E[z^2m]/(2m-1)!!; ratio = G4/G2^2 - 1 = E z^4/(3 (E z^2)^2) - 1 with the finite-width E z^2 "
             "(so the O(1/n) shift of E z^2 from K does not enter at leading order). Cross-neuron estimator "
             "(n m2^2 - m4)/(n-1) per network; single-neuron m4/3; G6 from mean(m2^3)/c_6(n); two-input cumulants "
             "from per-network Grams (unbiased, docs/correlators.md). SE: jackknife over networks. GELU at its "
             f"double critical point chi_par = chi_perp = 1: C_W = {C_W:.6f}, C_b = {C_b:.6f}, K* = {K:.6f}.")
    checks.append(FINDING.as_check(NAME, "finding: finite-width correlators (verdict from the judged checks)"))
    return ExperimentResult(checks=checks, figures=figures, tables=["\n".join(table)], notes=notes)


def _extend(theory, L: int, label: str, n: int) -> np.ndarray:
    """Exact ratio curve to depth ``L`` (the simulated depth may be shorter than the figure's x range)."""
    from sigprop.theory.correlators import deep_linear_moments, relu_kurtosis_ratio

    if len(theory) >= L:
        return np.asarray(theory[:L])
    if label.startswith("deep linear"):
        return deep_linear_moments(2, [n] * L) / deep_linear_moments(1, [n] * L) ** 2 - 1.0
    return relu_kurtosis_ratio([n] * L) - 1.0


def _ratio_figure(ctx: Context, s, curves):
    from ..plotting import COLORS, errorbar, save, subplots

    fig, axes = subplots(1, 2, panel=(3.9, 3.0))
    for ax, (label, lead, title) in zip(axes[0], (("deep linear", 2.0, "deep linear, $C_W=1$; leading $2(l-1)/n$"),
                                                 ("ReLU (C_W=2)", 5.0, "ReLU, $C_W=2$; leading $5(l-1)/n$"))):
        widths = sorted(n for (lab, n) in curves if lab == label)
        shown = widths[-2:]
        Lmax = max(len(curves[(label, n)]["theory"]) for n in shown)
        for k, n in enumerate(shown):
            c = curves[(label, n)]
            col = COLORS[k]
            ls = np.arange(2, Lmax + 1)  # layer 1 is exactly Gaussian (ratio 0): not on a log axis
            ax.plot(ls, _extend(c["theory"], Lmax, label, n)[1:], color=col, lw=1.2, label=f"exact, n={n}")
            ax.plot(ls, lead * (ls - 1) / n, color=col, lw=0.9, ls="--", label=f"leading 1/n term, n={n}")
            keep = np.flatnonzero(np.asarray(c["reliable"]))
            keep = keep[keep >= 1]
            lk = keep + 1
            errorbar(ax, lk, np.asarray(c["ratio"].value)[keep], np.asarray(c["ratio"].se)[keep], color=col,
                     label=f"simulation, n={n}")
        ax.set_yscale("log")
        ax.set_xlabel("layer l")
        ax.set_ylabel(r"$G_4/G_2^2 - 1\;=\;E z^4 / 3(E z^2)^2 - 1$", fontsize=8)
        ax.set_title(title, fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7)
    path = save(fig, ctx.figure_path(NAME, "four-point"))
    return ("Normalised connected four-point function G4/G2^2 - 1 per layer: exact finite-width theory (solid), its "
            "leading 1/n term (dashed), and simulation (points, +-1 SE bars, mostly smaller than the markers; "
            "cross-neuron estimator; only layers where the estimator's tails allow a trustworthy SE are shown)", path)


def _extrapolation_figure(ctx: Context, fits):
    from ..plotting import COLORS, errorbar, save, subplots

    labels = list(dict.fromkeys(lab for lab, _ in fits))
    fig, axes = subplots(1, len(labels), panel=(3.7, 3.0))
    for ax, label in zip(axes[0], labels):
        layers = sorted(l for lab, l in fits if lab == label)
        for k, l in enumerate(layers):
            f = fits[(label, l)]
            col = COLORS[k]
            x = 1.0 / np.asarray(f["widths"], dtype=float)
            errorbar(ax, x, f["y"], f["se"], color=col, label=f"simulation, layer {l}")
            xs = np.linspace(0.0, x.max() * 1.05, 50)
            ax.plot(xs, f["fit"].beta[0] + f["fit"].beta[1] * xs, color=col, lw=0.8, ls=":")
            dx = 0.03 * x.max()  # intercept drawn just left of 1/n = 0 so the theory star does not hide it
            errorbar(ax, [-dx], [f["fit"].intercept], [f["fit"].intercept_se], color=col, marker="s", mfc="none",
                     label="WLS intercept (n -> inf)" if k == 0 else None)
            ax.plot([0.0], [f["theory"]], marker="*", ms=9, color="k", ls="none",
                    label=r"theory $V/K^2$ (leading order)" if k == 0 else None)
        ax.set_xlabel("1/n")
        ax.set_ylabel(r"$n\,(G_4/G_2^2 - 1)$")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6)
    path = save(fig, ctx.figure_path(NAME, "extrapolation"))
    return ("n (G4/G2^2 - 1) against 1/n (points +-1 SE), WLS line (dotted) and its intercept (open square, +-1 SE) "
            "against the leading-order vertex recursion V/K^2 (star)", path)


EXPERIMENT = Experiment(
    name=NAME,
    title="Finite-width correlators: exact deep-linear and ReLU moments, 1/n vertex recursion",
    description=("Four- and six-point functions of simulated networks (gram method) against exact finite-width "
                 "results (deep linear G4, G6; critical ReLU prod(1+5/n)) at fixed widths, and against the "
                 "leading-order 1/n recursion for kappa_4 = V/n (tanh, critical GELU, two-input ReLU) through WLS "
                 "extrapolation in 1/n."),
    settings=settings,
    run=run,
    order=30,
)
