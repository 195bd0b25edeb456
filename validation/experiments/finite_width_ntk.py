"""Experiment: the neural tangent kernel at finite width (docs/correlators.md, section 9) against simulated networks.

The theory is :func:`sigprop.theory.correlators.finite_width_ntk` (mean NTK with its 1/n shift, ``D``, ``F``,
``A``, ``B`` for any number of inputs); the simulations are the explicit engine with its backward pass
(``simulate(..., method='explicit', backward=True)``) on P inputs with a given Gram
(:func:`sigprop.kernels.learning.datasets.inputs_with_gram`).  What is observed, per network:

* smooth activations (tanh, GELU, erf): ``L`` hidden layers of width ``n`` and one neuron on top (a layer ``L + 1``
  of width 1).  Every term of the backward pass carries the same factor ``v^2 phi'(z_a) phi'(z_b)`` of that neuron,
  ``backward_gram[:, L]``, so the NTK of the neuron ``z = z^(L+1)`` (``lambda = C`` per layer) is
  ``H = sum_l tangent_gram[:, l] / backward_gram[:, L]`` and ``z_a z_b = preact_gram[:, L]``;
* ReLU (``phi' = 0`` on half the line, so the quotient above is not defined): the network's scalar output
  ``f = v . phi(z^(L)) / sqrt(n)``, a layer ``L + 1`` of width 1 with ``C_W = 1``, ``C_b = 0``, whose NTK with the
  readout's own term is ``H = sum_l tangent_gram[:, l] + postact_gram[:, L - 1]``; ``f`` itself is not an output of
  the engine, so the NTK-preactivation statistic is ``Cov(H, postact_gram[:, L - 1])``, which is ``D`` of the
  output layer (its ``F`` part needs ``f``).

Judged checks (kind 'z', WLS intercept in 1/n over the widths, |z| <= zmax), at the observed layer ``L + 1``:

* mean: ``n (E[H_ab] - Theta_ab) -> Theta1_ab`` (plain SE);
* variance: ``n Cov(H_ab, H_cd) -> A_(ab)(cd) + B_acbd + B_adbc`` (jackknife SE over networks);
* NTK-preactivation covariance: ``n Cov(H_ab, z_c z_d) -> D_abcd + F_acbd + F_adbc`` (ReLU: ``D_abcd``; jackknife);
* ReLU: ``E[H_aa] = Theta_aa`` exactly at a small fixed width (docs/correlators.md, section 9; plain SE);
* GELU's double-critical point from :func:`sigprop.theory.correlators.double_critical_point` equals the published
  (1.98305826, 0.17292239) to every printed digit (kind 'exact').
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..correlator_estimators import jackknife_pseudovalues, pair_index
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding
from ..sweeps import networks_per_width

NAME = "finite_width_ntk"

FINDING = Finding(
    claim=("the 1/n coefficients of the NTK's mean, variance (A + 2B) and NTK-preactivation covariance (D + 2F) "
           "follow the finite-width recursions for P inputs; the ReLU NTK diagonal's mean has no finite-width "
           "correction"),
    source="Roberts, Yaida & Hanin (structure); sigprop (multi-input recursions, ReLU diagonal)", basis="checks")

#: The published GELU double-critical point, as printed (8 decimals).
GELU_POINT = (1.98305826, 0.17292239)

#: The input Gram of P inputs is the leading P x P block (positive definite, eigenvalues 0.47 .. 1.72).
GRAM = [[1.0, 0.3, 0.1, 0.2],
        [0.3, 1.2, 0.4, 0.0],
        [0.1, 0.4, 0.9, 0.3],
        [0.2, 0.0, 0.3, 1.1]]

#: Any width: the theory's 1/n coefficients (Theta1, A, B, D, F) do not depend on it for equal widths.
_REF_WIDTH = 100


def _cfg(activation: str, P: int, depth: int) -> dict[str, Any]:
    """One configuration: (C_W, C_b) per activation; ReLU is observed through the readout, the others through a
    neuron on top (module docstring)."""
    C_W, C_b = {"relu": (2.0, 0.0), "tanh": (1.5, 0.1), "gelu": GELU_POINT, "erf": (1.5, 0.1)}[activation]
    return {"activation": activation, "C_W": C_W, "C_b": C_b, "P": P, "depth": depth,
            "probe": "readout" if activation == "relu" else "neuron"}


def settings(profile: str) -> dict[str, Any]:
    """``configs`` (activation, P, depth), ``widths`` with a ``budget`` of networks x width per width (at least
    ``min_networks``), the WLS ``order``, and the fixed-width ReLU run (``relu_exact``).

    The SE of ``n Cov(H, z z)`` and of the mean's ``n (E H - Theta)`` grows as ``sqrt(n / S)`` (one neuron's
    ``z z`` fluctuates at O(1)), so the quick profile spends its networks at small widths (16, 32, 64, equal
    networks x width); the full profile adds widths to 512 and a quadratic term in 1/n for the skew of the
    narrowest networks."""
    if profile == "smoke":
        return {"configs": [_cfg("tanh", 2, 2), _cfg("relu", 1, 2)], "widths": [16, 32], "budget": 16 * 16_000,
                "min_networks": 1500, "order": 1, "relu_exact": {"width": 4, "depth": 2, "networks": 8000, "P": 2}}
    if profile == "quick":
        return {"configs": [_cfg("relu", 2, 3), _cfg("tanh", 3, 3), _cfg("gelu", 2, 3), _cfg("erf", 1, 4)],
                "widths": [16, 32, 64], "budget": 16 * 24_000, "min_networks": 2000, "order": 1,
                "relu_exact": {"width": 4, "depth": 3, "networks": 40_000, "P": 2}}
    if profile == "full":
        return {"configs": [_cfg("relu", 4, 6), _cfg("relu", 2, 10), _cfg("tanh", 3, 10), _cfg("gelu", 4, 4),
                            _cfg("gelu", 2, 10), _cfg("erf", 1, 10), _cfg("erf", 4, 3)],
                "widths": [16, 32, 64, 128, 256, 512], "budget": 16 * 100_000, "min_networks": 5000, "order": 2,
                "relu_exact": {"width": 4, "depth": 3, "networks": 400_000, "P": 4}}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def gram(P: int) -> np.ndarray:
    """The input Gram of ``P`` inputs (leading block of :data:`GRAM`)."""
    return np.asarray(GRAM, dtype=float)[:P, :P]


def label(cfg: dict[str, Any]) -> str:
    return (f"{cfg['activation']} (C_W={cfg['C_W']:g}, C_b={cfg['C_b']:g}), P={cfg['P']}, L={cfg['depth']}"
            + (", readout" if cfg["probe"] == "readout" else ""))


# --------------------------------------------------------------------------------------------
# theory
# --------------------------------------------------------------------------------------------
def theory(cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """The observed layer's infinite-width NTK ``Theta``, its 1/n coefficient ``Theta1``, ``cov`` = A + B + B and
    ``cross`` = D + F + F (neuron) or D (readout), all (P, P[, P, P]); widths equal."""
    from sigprop.theory.correlators import finite_width_ntk

    L, G0, C, Cb = cfg["depth"], gram(cfg["P"]), cfg["C_W"], cfg["C_b"]
    w = [_REF_WIDTH] * L + [1]
    if cfg["probe"] == "neuron":
        r = finite_width_ntk(cfg["activation"], w, C, Cb, G0=G0)
        cross = r.one_neuron_ntk_preactivation()[L]
    else:  # the readout: C_W = 1, C_b = 0, lambda_W = 1 (its own term), lambda_b = 0
        r = finite_width_ntk(cfg["activation"], w, [C] * L + [1.0], [Cb] * L + [0.0], [Cb] * L + [0.0],
                             [C] * L + [1.0], G0)
        cross = r.D[L]
    return {"Theta": np.array(r.Theta[L]), "Theta1": np.array(r.Theta1[L]),
            "cov": np.array(r.one_neuron_ntk_covariance()[L]), "cross": np.array(cross)}


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------
def observed(res, probe: str) -> tuple[np.ndarray, np.ndarray]:
    """Per network ``(H, Z)``, each (S, P, P): the observed NTK and the kernel it is correlated with
    (module docstring)."""
    if probe == "neuron":
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero phi' gives NaN: the network is dropped
            H = res.tangent_gram.sum(axis=1) / res.backward_gram[:, -1]
        return H, np.asarray(res.preact_gram[:, -1])
    if probe == "readout":
        return res.tangent_gram.sum(axis=1) + res.postact_gram[:, -1], np.asarray(res.postact_gram[:, -1])
    raise InputError(f"{NAME}: probe must be 'neuron' or 'readout', got {probe!r}")


def _covariance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Jackknife pseudo-values of ``Cov(x_p, y_q)`` (S, p, q) from per-network vectors x (S, p), y (S, q)."""
    xy = x[:, :, None] * y[:, None, :]
    return jackknife_pseudovalues([x, y, xy], lambda a, b, ab: ab - a[..., :, None] * b[..., None, :])


def statistics(H: np.ndarray, Z: np.ndarray) -> dict[str, Any]:
    """Mean and SE over networks of the pair entries of ``H`` (``mean``), of ``Cov(H, H)`` (``cov``) and of
    ``Cov(H, Z)`` (``cross``), pair-indexed by :func:`sigprop.validation.correlator_estimators.pair_index`;
    networks with a non-finite entry are dropped (counted)."""
    pairs = pair_index(H.shape[-1])
    ok = np.all(np.isfinite(H), axis=(1, 2)) & np.all(np.isfinite(Z), axis=(1, 2))
    h = np.stack([H[ok, a, b] for a, b in pairs], axis=1)
    z = np.stack([Z[ok, a, b] for a, b in pairs], axis=1)
    out: dict[str, Any] = {"n_networks": int(ok.size), "n_dropped": int((~ok).sum())}
    for key, values in (("mean", h), ("cov", _covariance(h, h)), ("cross", _covariance(h, z))):
        m, se = stats.mean_se(values)
        out[key] = {"mean": np.asarray(m), "se": np.asarray(se)}
    return out


def _simulate(ctx: Context, cfg: dict[str, Any], n: int, S: int, seed: int):
    from sigprop.kernels import simulate
    from sigprop.kernels.learning.datasets import inputs_with_gram

    widths = [int(n)] * cfg["depth"] + ([1] if cfg["probe"] == "neuron" else [])
    return simulate(inputs_with_gram(gram(cfg["P"])), depth=len(widths), width=widths, activation=cfg["activation"],
                    C_W=cfg["C_W"], C_b=cfg["C_b"], n_networks=S, seed=seed, method="explicit", backward=True,
                    backend=ctx.backend)


def sweep(ctx: Context, s: dict[str, Any], i: int) -> list[dict[str, Any]]:
    """Per width of ``s['widths']``: :func:`statistics` of configuration ``i`` and the width."""
    cfg = s["configs"][i]
    rows = []
    for n in s["widths"]:
        S = networks_per_width(s["budget"], n, s["min_networks"])
        res = _simulate(ctx, cfg, n, S, ctx.sub_seed(NAME, label(cfg), n))
        rows.append({"width": int(n), **statistics(*observed(res, cfg["probe"]))})
    return rows


def relu_exact(ctx: Context, s: dict[str, Any]) -> dict[str, Any]:
    """``E[H_aa]`` of the ReLU network's output at one small width: per input, mean and SE over networks."""
    e = s["relu_exact"]
    cfg = {**_cfg("relu", e["P"], e["depth"]), "C_b": 0.1}
    res = _simulate(ctx, cfg, e["width"], e["networks"], ctx.sub_seed(NAME, "relu exact", e["width"]))
    H, _ = observed(res, "readout")
    diag = np.stack([H[:, a, a] for a in range(e["P"])], axis=1)
    m, se = stats.mean_se(diag)
    return {"mean": np.asarray(m), "se": np.asarray(se), "cfg": cfg}


def units(s: dict[str, Any]) -> list[Any]:
    """One simulation and one theory per configuration, and the fixed-width ReLU run."""
    return ([[i, "simulation"] for i in range(len(s["configs"]))] + [[i, "theory"] for i in range(len(s["configs"]))]
            + [["relu exact"]])


def run_unit(ctx: Context, s: dict[str, Any], key) -> Any:
    if key[0] == "relu exact":
        return relu_exact(ctx, s)
    i, what = int(key[0]), key[1]
    return sweep(ctx, s, i) if what == "simulation" else theory(s["configs"][i])


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------
FAMILIES = {
    "mean": ("mean NTK shift n (E H - Theta)", "Theta1"),
    "cov": ("NTK variance n Cov(H, H)", "A+2B"),
    "cross": ("NTK-preactivation covariance n Cov(H, zz)", "D+2F"),
}


def judged_entries(P: int) -> dict[str, list[tuple]]:
    """The entries judged per family: ``(a, b)`` for the mean, ``((a, b), (c, d))`` for the two covariances;
    the first input, the last, and the pair of the two (with P = 4: 2 + 3 + 4 checks)."""
    d, o, e = (0, 0), (0, P - 1), (P - 1, P - 1)
    if P == 1:
        return {"mean": [d], "cov": [(d, d)], "cross": [(d, d)]}
    return {"mean": [d, o], "cov": [(d, d), (o, o), (d, e)], "cross": [(d, d), (o, o), (d, e), (e, d)]}


def _name(family: str, entry: tuple) -> str:
    if family == "mean":
        return f"{entry[0]}{entry[1]}"
    (a, b), (c, d) = entry
    return f"({a}{b})({c}{d})"


def _theory_value(th: dict[str, np.ndarray], family: str, entry: tuple) -> float:
    if family == "mean":
        return float(th["Theta1"][entry])
    (a, b), (c, d) = entry
    return float(th[family][a, b, c, d])


def _series(rows: list[dict[str, Any]], th, family: str, entry: tuple, P: int) -> tuple[list, list, list]:
    """Per width: ``n x (MC - infinite width)`` of one entry and its SE."""
    where = {p: k for k, p in enumerate(pair_index(P))}
    widths, ys, ses = [], [], []
    for r in rows:
        n, st = r["width"], r[family]
        if family == "mean":
            k = where[entry]
            y, se = st["mean"][k] - th["Theta"][entry], st["se"][k]
        else:
            k, q = where[entry[0]], where[entry[1]]
            y, se = st["mean"][k, q], st["se"][k, q]
        widths.append(n)
        ys.append(float(n * y))
        ses.append(float(n * se))
    return widths, ys, ses


def extrapolation_checks(cfg, rows, th, order: int) -> tuple[list[Check], list[dict[str, Any]]]:
    """The judged 1/n checks of one configuration and, per check, what its figure needs."""
    checks, fits = [], []
    for family, entries in judged_entries(cfg["P"]).items():
        what, sym = FAMILIES[family]
        if family == "cross" and cfg["probe"] == "readout":
            what, sym = "NTK-output-kernel covariance n Cov(H, G^(L))", "D"
        for entry in entries:
            widths, ys, ses = _series(rows, th, family, entry, cfg["P"])
            fit = stats.wls_extrapolate(widths, ys, ses, order=order)
            T = _theory_value(th, family, entry)
            checks.append(Check(
                NAME, f"{label(cfg)}: {what} -> {sym}_{_name(family, entry)}", T, fit.intercept, fit.intercept_se,
                f"1/n WLS extrapolation (order {order}) over widths {widths}, |z| <= zmax",
                details={"widths": widths, "n_stat": ys, "ses": ses, "fit": fit.to_dict(),
                         "networks": [r["n_networks"] for r in rows], "dropped": [r["n_dropped"] for r in rows]}))
            fits.append({"family": family, "entry": _name(family, entry), "widths": widths, "y": ys, "se": ses,
                         "fit": fit, "theory": T, "sym": sym})
    return checks, fits


def relu_exact_checks(s, value: dict[str, Any]) -> list[Check]:
    """``E[H_aa] = Theta_aa`` at the fixed width, each input."""
    e, cfg = s["relu_exact"], value["cfg"]
    th = theory(cfg)
    return [Check(NAME, f"relu (C_b={cfg['C_b']:g}) output NTK diagonal mean, n={e['width']}, L={e['depth']}, "
                        f"input {a}: exact at every width", float(th["Theta"][a, a]), float(value["mean"][a]),
                  float(value["se"][a]), f"exact at width n={e['width']} ({e['networks']} networks), |z| <= zmax",
                  details={"networks": e["networks"], "Theta1_aa": float(th["Theta1"][a, a])})
            for a in range(e["P"])]


def gelu_point_checks() -> list[Check]:
    """``double_critical_point('gelu')`` equals the printed digits (to half a unit of the last one)."""
    from sigprop.theory.correlators import double_critical_point

    C_W, C_b, _ = double_critical_point("gelu")
    return [Check(NAME, f"GELU double-critical {name} = {printed:.8f} to every printed digit", printed, float(got),
                  0.0, "exact: |computed - printed| <= 5e-9", kind="exact", tol=5e-9)
            for name, printed, got in (("C_W", GELU_POINT[0], C_W), ("C_b", GELU_POINT[1], C_b))]


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    keys = units(s)
    values = dict(zip((tuple(k) for k in keys), ctx.run_units(run_unit, keys, s, desc=NAME)))
    checks: list[Check] = gelu_point_checks()
    panels = []
    table = ["| configuration | widths (networks) | dropped |", "|---|---|---|"]
    for i, cfg in enumerate(s["configs"]):
        rows, th = values[(i, "simulation")], values[(i, "theory")]
        c, fits = extrapolation_checks(cfg, rows, th, s["order"])
        checks += c
        panels.append({"label": label(cfg), "fits": fits})
        table.append(f"| {label(cfg)} | " + ", ".join(f"{r['width']} ({r['n_networks']})" for r in rows)
                     + f" | {sum(r['n_dropped'] for r in rows)} |")
    checks += relu_exact_checks(s, values[("relu exact",)])
    figures = [figure(ctx, panels, family) for family in FAMILIES]
    checks.append(FINDING.as_check(NAME, "finding: finite-width NTK statistics (verdict from the judged checks)"))
    notes = ("Observed layer L+1: a neuron on top of L hidden layers of width n (tanh, GELU, erf; NTK = sum of the "
             "tangent Grams over the backward Gram of that neuron, lambda = C per layer) or the scalar readout (ReLU, "
             "C_W = 1, lambda_W = 1). Statistics n x (MC - infinite width): the mean's SE is the spread over "
             "networks, the covariances' the jackknife over networks; WLS in 1/n (Birge-scaled). Input Gram: the "
             f"leading P x P block of {GRAM}.")
    return ExperimentResult(checks=checks, figures=figures, tables=["\n".join(table)], notes=notes)


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
_YLABEL = {"mean": r"$n\,(E[H_{ab}] - \Theta_{ab})$", "cov": r"$n\,\mathrm{Cov}(H_{ab}, H_{cd})$",
           "cross": r"$n\,\mathrm{Cov}(H_{ab}, z_c z_d)$"}
_YLABEL_READOUT = r"$n\,\mathrm{Cov}(H_{ab}, G^{(L)}_{cd})$"
_THEORY = {"mean": r"$\Theta^{\{1\}}_{ab}$", "cov": r"$A + 2B$", "cross": r"$D + 2F$ (ReLU readout: $D$)"}
_FILE = {"mean": "mean", "cov": "variance", "cross": "ntk-preactivation"}


def _width_ticks(ax, widths, xmax: float) -> None:
    """x ticks at 1/n labelled ``1/n`` (widths too close to 0 to read are left unlabelled), and 0."""
    shown = [n for n in sorted(set(widths)) if 1.0 / n >= 0.2 * xmax]
    ax.set_xticks([0.0] + [1.0 / n for n in shown], ["0"] + [f"1/{n}" for n in shown])


def figure(ctx: Context, panels: list[dict[str, Any]], family: str) -> tuple[str, str]:
    """One panel per configuration: ``n x statistic`` against 1/n (points +-1 SE), its WLS line (dotted) and
    intercept (open square), the theory's 1/n coefficient (solid line; its value at 1/n = 0 is the claim)."""
    from ..plotting import COLORS, errorbar, save, subplots

    ncol = 2 if len(panels) <= 4 else 3
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = subplots(nrow, ncol, panel=(4.3, 3.3))
    for k, panel in enumerate(panels):
        ax = axes[k // ncol][k % ncol]
        mine = [f for f in panel["fits"] if f["family"] == family]
        xmax = 1.0 / min(mine[0]["widths"])
        for j, f in enumerate(mine):
            col = COLORS[j % len(COLORS)]
            x = 1.0 / np.asarray(f["widths"], dtype=float)
            sym = r"$\Theta^{\{1\}}$" if f["sym"] == "Theta1" else f["sym"]
            errorbar(ax, x, f["y"], f["se"], color=col, label=f"{sym}$_{{{f['entry']}}}$")
            xs = np.linspace(1e-9, 1.05 * xmax, 50)
            ax.plot(xs, f["fit"].predict(1.0 / xs), color=col, lw=0.8, ls=":")
            errorbar(ax, [-0.035 * xmax * (j + 1)], [f["fit"].intercept], [f["fit"].intercept_se], color=col,
                     marker="s", mfc="none")
            ax.plot([-0.035 * xmax * (len(mine) + 1), 1.05 * xmax], [f["theory"]] * 2, color=col, lw=1.3, alpha=0.8)
        ax.axvline(0.0, color="0.7", lw=0.6)
        _width_ticks(ax, mine[0]["widths"], xmax)
        ax.set_xlabel("1/n  (n: width of the hidden layers)")
        readout = family == "cross" and mine[0]["sym"] == "D"
        ax.set_ylabel(_YLABEL_READOUT if readout else _YLABEL[family])
        ax.set_title(panel["label"], fontsize=8)
        ax.legend(fontsize=6.5, title="entry (theory: solid line)", title_fontsize=6.5, loc="best")
    for k in range(len(panels), nrow * ncol):
        axes[k // ncol][k % ncol].set_visible(False)
    fig.suptitle(f"{FAMILIES[family][0]} against 1/n: points = simulation (+-1 SE), dotted = WLS fit,\n"
                 f"open squares (left of 0) = its n -> inf intercept (+-1 SE), solid = theory {_THEORY[family]}",
                 fontsize=8.5)
    path = save(fig, ctx.figure_path(NAME, _FILE[family]))
    return (f"{FAMILIES[family][0]} against 1/n: simulation points (+-1 SE), their WLS fit (dotted) and its "
            f"n -> inf intercept (open squares, +-1 SE, drawn left of 1/n = 0), and the recursion's 1/n "
            f"coefficient (solid horizontal line), per configuration", path)


EXPERIMENT = Experiment(
    name=NAME,
    title="Finite-width NTK: mean shift, variance (A + 2B) and NTK-preactivation covariance (D + 2F)",
    description=("The 1/n coefficients of the neural tangent kernel's mean, variance and covariance with the "
                 "preactivations, extrapolated from explicit-engine simulations with the backward pass (relu, tanh, "
                 "GELU at its double-critical point, erf; P = 1..4 inputs), against finite_width_ntk's recursions; "
                 "the ReLU NTK diagonal's mean, exact at every width, at a small fixed width."),
    settings=settings,
    run=run,
    order=35,
    units=units,
    run_unit=run_unit,
)
