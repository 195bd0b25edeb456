"""Experiment 1: kernel sequences of real finite-width networks against the kernel map (Joudaki & Hofmann).

Setting (the paper's normalised network, in the conventions' parametrisation): activation phi with
``C = sqrt(E phi(X)^2)``, ``C_W = 1/C^2``, ``C_b = 0``, P = 3 inputs whose Gram is ``G0 = C^2 R`` with
``R`` a correlation matrix (pairs at rho_0 = 0.9, 0.1, -0.25), so that the first pre-activations have
unit variance, exactly as in ``h^l = (phi/C)(W h^{l-1}/sqrt d)`` with unit-norm inputs.  Post-norm
variants (``rms_post``/``ln_post``) use ``C_W = 1`` and ``G0 = R`` instead (the norm fixes |h|^2/n = 1).

Measured sequence: ``rho_l`` = correlation of the post-activation Gram of layer l,
``H_ab / sqrt(H_aa H_bb)`` with ``H = postact_gram[:, l-1]`` (the paper's ``<h^l(x), h^l(y)>/d``),
per network, averaged over independent networks (mean +- SE).  Theory: ``rho_l = kappa^l(rho_0)``.
Finite width biases ``rho_l`` at O(1/n), so at a few layers per activation the estimate is the
intercept of a WLS fit in 1/n over several widths (independent networks per width), judged by
``|intercept - kappa^l(rho_0)| / SE <= zmax``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding
from ..sweeps import width_sweep

NAME = "kernel_sequences"

RHO0 = (0.9, 0.1, -0.25)  # pair correlations (0,1), (0,2), (1,2) of the 3 inputs
PAIRS = ((0, 1), (0, 2), (1, 2))
RESOLUTION = 1e-9  # layers with 1 - |rho_l| below this are not judged (float64 rounding of a correlation)

# the headline the report lists under its verdict: the judged checks are the test of the paper's claim
FINDING = Finding(
    claim="rho_l -> kappa^l(rho_0) as n -> inf, for all activations and the residual and LayerNorm variants",
    source="Joudaki & Hofmann", basis="checks")

ALL_ACTIVATIONS: list[tuple[str, dict[str, float]]] = [
    ("relu", {}), ("exp", {}), ("gelu", {}), ("tanh", {}),            # Figure S.1
    ("elu", {}), ("celu", {}), ("sigmoid", {}), ("selu", {}),         # Figure S.2
    ("leaky_relu", {"slope": 0.1}), ("leaky_relu", {"slope": 0.2}), ("leaky_relu", {"slope": 0.5}),  # S.3
]
FIGURE_GROUPS = {
    "S1": ["relu", "exp", "gelu", "tanh"],
    "S2": ["elu(alpha=1)", "celu(alpha=1)", "sigmoid", "selu"],
    "S3": ["leaky_relu(slope=0.1)", "leaky_relu(slope=0.2)", "leaky_relu(slope=0.5)"],
}
VARIANTS: list[dict[str, Any]] = [
    {"activation": "relu", "params": {}, "residual": 0.5, "norm": None},
    {"activation": "tanh", "params": {}, "residual": 0.5, "norm": None},
    {"activation": "relu", "params": {}, "residual": 0.0, "norm": "ln_post"},
    {"activation": "tanh", "params": {}, "residual": 0.0, "norm": "ln_post"},
]


def settings(profile: str) -> dict[str, Any]:
    """Widths, depths, sample sizes and judged layers per profile ('smoke', 'quick', 'full')."""
    if profile == "smoke":
        return {"activations": [["tanh", {}], ["relu", {}]], "variants": VARIANTS[:1] + VARIANTS[3:4],
                "widths": [32, 64, 128], "budget": 32 * 150, "depth": 6,
                "exp": {"depth": 3, "widths": [256, 512, 1024]},
                "judge_layers": [1, 3, 6], "rho0": list(RHO0), "method": "gram", "order": 1}
    if profile == "quick":
        return {"activations": [[a, p] for a, p in ALL_ACTIVATIONS], "variants": VARIANTS,
                "widths": [128, 256, 512, 1024], "budget": 64 * 3000, "depth": 16,
                "exp": {"depth": 3, "widths": [512, 1024, 2048, 4096]}, "gelu": {"depth": 12},
                "judge_layers": [1, 2, 4, 8, 16], "rho0": list(RHO0), "method": "gram", "order": 1}
    if profile == "full":
        return {"activations": [[a, p] for a, p in ALL_ACTIVATIONS], "variants": VARIANTS,
                "widths": [256, 512, 1024, 2048, 4096], "budget": 128 * 20000, "depth": 40,
                "exp": {"depth": 3, "widths": [1024, 2048, 4096, 8192, 16384]}, "gelu": {"depth": 10},
                "judge_layers": [1, 2, 4, 8, 16, 24, 32, 40], "rho0": list(RHO0), "method": "gram", "order": 1}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


# ---------------------------------------------------------------------------------------------------
# Building blocks (also used by the tests: a wrong theory must fail)
# ---------------------------------------------------------------------------------------------------
def correlation_matrix(rho0) -> np.ndarray:
    r01, r02, r12 = rho0
    R = np.array([[1.0, r01, r02], [r01, 1.0, r12], [r02, r12, 1.0]])
    if np.linalg.eigvalsh(R).min() <= 0:
        raise InputError(f"rho0={rho0!r} is not a valid set of pair correlations (matrix not positive definite)")
    return R


def network_setup(C: float, norm: str | None) -> tuple[float, float]:
    """(C_W, input scale^2) of the normalised network: post-norms fix |h|^2/n = 1, otherwise E phi^2 = C^2."""
    if norm in ("rms_post", "ln_post"):
        return 1.0, 1.0
    return 1.0 / C**2, C**2


def theory_sequence(kmap, rho0: float, depth: int) -> np.ndarray:
    """``[rho_0, kappa(rho_0), ..., kappa^depth(rho_0)]`` by iterating the map."""
    seq = np.empty(depth + 1)
    seq[0] = rho0
    for l in range(1, depth + 1):
        seq[l] = float(kmap(seq[l - 1]))
    return seq


def simulate_correlations(act, *, C_W: float, G0: np.ndarray, widths, depth: int, budget: int, seed_of,
                          residual: float = 0.0, norm: str | None = None, method: str = "gram",
                          backend: str = "cpu", track=lambda it, **kw: it) -> dict[int, dict[str, np.ndarray]]:
    """Per width: per-network post-activation correlations ``corr`` (S, L, pairs), their mean and SE (L, pairs).

    ``S = max(50, budget // n)`` networks at width n (equal cost per width); ``seed_of(n)`` gives an
    independent seed per width.  Networks whose Gram became non-finite are dropped and counted.
    """
    def correlations(res) -> np.ndarray:
        H = np.asarray(res.postact_gram)
        return np.stack([stats.correlation(H, a, b) for a, b in PAIRS], axis=-1)  # (S, L, pairs)

    return width_sweep(act, G0=G0, widths=widths, depth=depth, budget=budget, seed_of=seed_of,
                       statistic=correlations, track=track, C_W=C_W, C_b=0.0, method=method, backend=backend,
                       residual=residual, norm=norm)


def extrapolation_checks(label: str, sims: dict[int, dict[str, np.ndarray]], theory: np.ndarray,
                         layers, rho0, order: int = 1, experiment: str = NAME) -> tuple[list[Check], dict]:
    """One check per (pair, layer): WLS intercept in 1/n of the mean correlation vs ``theory[pair][layer]``."""
    widths = sorted(sims)
    checks, fits = [], {}
    for p, r0 in enumerate(rho0):
        for l in layers:
            y = [sims[n]["mean"][l - 1, p] for n in widths]
            se = [sims[n]["se"][l - 1, p] for n in widths]
            th = float(theory[p][l])
            name = f"{label} rho0={r0:+.2f} layer {l}"
            if 1.0 - abs(th) < RESOLUTION or min(se) <= 0.0:
                checks.append(Check(experiment, name, theory=th, estimate=float(y[-1]), stderr=0.0, kind="info",
                                    rule=f"not judged: 1 - |rho_l| < {RESOLUTION:g}, below float64 resolution of a "
                                         "correlation", details={"widths": widths, "means": y, "ses": se}))
                continue
            fit = stats.wls_extrapolate(widths, y, se, order=order)
            fits[(p, l)] = fit
            checks.append(Check(
                experiment=experiment, name=name, theory=th, estimate=fit.intercept, stderr=fit.intercept_se,
                rule=f"1/n{'+1/n^2' if order == 2 else ''} WLS extrapolation over widths {widths}, |z| <= zmax",
                details={"widths": widths, "means": y, "ses": se, "fit": fit.to_dict(), "layer": l, "rho0": r0}))
    return checks, fits


def _convergence(kmap):
    conv_fn = getattr(kmap, "convergence", None)
    return conv_fn() if callable(conv_fn) else None


def _bound(conv, depth: int, rho0: float) -> np.ndarray | None:
    if conv is None or not hasattr(conv, "bound"):
        return None
    b = np.asarray(conv.bound(np.arange(depth + 1), rho0), dtype=float)
    return b if b.shape == (depth + 1,) else None


# ---------------------------------------------------------------------------------------------------
# One row of the figures: activation (or variant) with theory, simulation and extrapolation
# ---------------------------------------------------------------------------------------------------
def _simulate_row(ctx: Context, s: dict[str, Any], act, label: str, residual: float, norm: str | None, depth: int,
                  widths, C: float) -> dict[int, dict[str, np.ndarray]]:
    C_W, scale2 = network_setup(C, norm)
    G0 = scale2 * correlation_matrix(s["rho0"])
    return simulate_correlations(act, C_W=C_W, G0=G0, widths=widths, depth=depth, budget=s["budget"],
                                 seed_of=lambda n: ctx.sub_seed(NAME, label, n), residual=residual, norm=norm,
                                 method=s["method"], backend=ctx.backend)


def _run_row(s: dict[str, Any], sims, kmap, label: str, depth: int, act,
             C: float) -> tuple[list[Check], dict[str, Any]]:
    rho0 = s["rho0"]
    theory = [theory_sequence(kmap, r0, depth) for r0 in rho0]
    layers = [l for l in s["judge_layers"] if l <= depth]
    if depth not in layers:
        layers.append(depth)
    checks, fits = extrapolation_checks(label, sims, theory, layers, rho0, order=s["order"])
    conv = _convergence(kmap)
    rho_star = float(conv.rho_star) if conv is not None else float("nan")
    case = getattr(conv, "case", None)
    dropped = sum(v["n_dropped"] for v in sims.values())
    total = sum(v["n_networks"] for v in sims.values())
    checks.append(Check(NAME, f"{label} fixed point rho* (case {case})", theory=rho_star,
                        estimate=float(theory[0][-1]), stderr=0.0, kind="info",
                        rule=f"reported: rho* of the map and kappa^{depth}(rho0={rho0[0]:+.2f})",
                        details={"case": case, "rate": float(getattr(conv, "rate", float("nan")))}))
    if dropped:
        checks.append(Check(NAME, f"{label} non-finite networks dropped", theory=0.0, estimate=float(dropped),
                            stderr=0.0, kind="info", rule=f"reported: {dropped} of {total} networks overflowed"))
    row = {"label": label, "act": act, "kmap": kmap, "C": C, "depth": depth, "theory": theory, "sims": sims,
           "fits": fits, "layers": layers, "rho_star": rho_star, "case": case,
           "bounds": [_bound(conv, depth, r0) for r0 in rho0], "rho0": rho0}
    return checks, row


def _panel_activation(ax, row: dict[str, Any]) -> None:
    """phi(x)/C on [-3, 3]."""
    x = np.linspace(-3, 3, 401)
    ax.plot(x, row["act"].fn(x) / row["C"], color="k", lw=1.2)
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set_title(row["label"], fontsize=9)
    ax.set_xlabel("x")
    ax.set_ylabel(r"$\phi(x)/C$")


def _panel_kernel_map(ax, row: dict[str, Any]) -> None:
    """kappa(rho) against the diagonal, the cobweb from the rho0 farthest from rho*, and rho*."""
    from ..plotting import cobweb

    grid = np.linspace(-1, 1, 201)
    k = np.array([float(row["kmap"](r)) for r in grid])
    ax.plot(grid, k, color="k", lw=1.2, label=r"$\kappa(\rho)$")
    ax.plot(grid, grid, color="0.6", lw=0.8, ls="--", label=r"$\rho$")
    start = max(row["rho0"], key=lambda r: abs(r - row["rho_star"]) if math.isfinite(row["rho_star"]) else 0.0)
    cobweb(ax, row["kmap"], start, min(row["depth"], 12), color="C3")
    if math.isfinite(row["rho_star"]):
        ax.plot([row["rho_star"]], [row["rho_star"]], "o", color="C3", ms=4, label=r"$\rho^*$")
    ax.set_xlabel(r"$\rho$")
    ax.set_ylabel(r"$\kappa(\rho)$")
    ax.set_title(f"kernel map (case {row['case']})", fontsize=9)
    ax.legend(fontsize=6, loc="upper left")


def _panels_sequence(ax_seq, ax_d, row: dict[str, Any], legend: bool) -> None:
    """rho_l against the layer (theory, widest-width means, extrapolations, bound) and |rho_l - rho*| (log)."""
    from ..plotting import COLORS, errorbar, log_safe

    widest = max(row["sims"])
    ls = np.arange(row["depth"] + 1)
    sim = row["sims"][widest]
    rs = row["rho_star"]
    for p, r0 in enumerate(row["rho0"]):
        col = COLORS[p % len(COLORS)]
        th = row["theory"][p]
        ax_seq.plot(ls, th, color=col, lw=1, label=rf"$\rho_0$={r0:+.2f} theory")
        errorbar(ax_seq, ls[1:], sim["mean"][:, p], sim["se"][:, p], color=col, ms=2.5, alpha=0.6)
        lay = [l for l in row["layers"] if (p, l) in row["fits"]]
        ext = [row["fits"][(p, l)] for l in lay]
        if lay:
            errorbar(ax_seq, lay, [f.intercept for f in ext], [f.intercept_se for f in ext], color=col,
                     marker="s", ms=4, mfc="none")
        b = row["bounds"][p]
        ax_d.semilogy(ls, log_safe(np.abs(th - rs)), color=col, lw=1)
        ax_d.semilogy(ls[1:], log_safe(np.abs(sim["mean"][:, p] - rs)), ".", color=col, ms=4)
        if lay:
            ax_d.semilogy(lay, log_safe([abs(f.intercept - rs) for f in ext]), "s", color=col, ms=4, mfc="none")
        if b is not None:
            ax_d.semilogy(ls, log_safe(b), color=col, lw=0.8, ls=":")
            if p == 0:
                ax_seq.plot(ls, np.clip(rs + b, -1, 1), color=col, ls=":", lw=0.8,
                            label=rf"$\rho^* \pm$ bound ($\rho_0$={r0:+.2f})")
                ax_seq.plot(ls, np.clip(rs - b, -1, 1), color=col, ls=":", lw=0.8)
    ax_seq.set_xlabel("layer l")
    ax_seq.set_ylabel(r"$\rho_l$")
    ax_seq.set_ylim(-1.05, 1.05)
    ax_seq.set_title(f"lines: kappa map; dots: n={widest}; squares: n->inf", fontsize=7)
    if legend:
        ax_seq.legend(fontsize=6, loc="lower right")
    ax_d.set_xlabel("layer l")
    ax_d.set_ylabel(r"$|\rho_l - \rho^*|$")
    ax_d.set_title("|rho_l - rho*|: lines theory, dotted bound", fontsize=8)


def _figure(rows: list[dict[str, Any]], path, title: str) -> str:
    """One row of four panels per activation (or variant): phi/C, the kernel map, rho_l, |rho_l - rho*|."""
    from ..plotting import save, subplots

    fig, axes = subplots(len(rows), 4, panel=(3.3, 2.5))
    for i, row in enumerate(rows):
        ax_phi, ax_k, ax_seq, ax_d = axes[i]
        _panel_activation(ax_phi, row)
        _panel_kernel_map(ax_k, row)
        _panels_sequence(ax_seq, ax_d, row, legend=i == 0)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def _row_specs(s: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The rows of one kind ('activation': the plain activations, with per-activation depth/widths where the
    settings say; 'variant': the residual and LayerNorm variants, C from the plain activation)."""
    from sigprop.theory import KernelMap, kernel_map
    from sigprop.theory.activations import activation

    specs = []
    if kind == "activation":
        for name, params in s["activations"]:
            act = activation(name, **params)
            km = KernelMap(act)
            special = s.get(name, {})
            specs.append({"act": act, "kmap": km, "label": act.label, "residual": 0.0, "norm": None,
                          "depth": special.get("depth", s["depth"]), "widths": special.get("widths", s["widths"]),
                          "C": float(km.C)})
        return specs
    for v in s["variants"]:
        act = activation(v["activation"], **v["params"])
        label = act.label + (f" residual r={v['residual']:g}" if v["residual"] else "") + (
            f" {v['norm']}" if v["norm"] else "")
        specs.append({"act": act, "kmap": kernel_map(act, residual=v["residual"], norm=v["norm"]), "label": label,
                      "residual": v["residual"], "norm": v["norm"], "depth": s["depth"], "widths": s["widths"],
                      "C": float(KernelMap(act).C)})
    return specs


def units(s: dict[str, Any]) -> list[list[Any]]:
    """The units of work: the simulations of one row, ``["activation", i]`` or ``["variant", i]``."""
    return ([["activation", i] for i in range(len(s["activations"]))]
            + [["variant", i] for i in range(len(s["variants"]))])


def run_unit(ctx: Context, s: dict[str, Any], key) -> dict[int, dict[str, np.ndarray]]:
    """Per width, the simulated correlations of row ``key`` (:func:`simulate_correlations`)."""
    r = _row_specs(s, key[0])[int(key[1])]
    return _simulate_row(ctx, s, r["act"], r["label"], r["residual"], r["norm"], r["depth"], r["widths"], r["C"])


def _rows(ctx: Context, s: dict[str, Any], kind: str) -> tuple[list[Check], list[dict[str, Any]]]:
    """The checks and figure rows of one kind of row, from the units' simulations."""
    specs = _row_specs(s, kind)
    keys = [[kind, i] for i in range(len(specs))]
    checks: list[Check] = []
    rows = []
    for r, sims in zip(specs, ctx.run_units(run_unit, keys, s, desc=f"{NAME}: {kind} rows")):
        c, row = _run_row(s, sims, r["kmap"], r["label"], r["depth"], r["act"], r["C"])
        checks += c
        rows.append(row)
    return checks, rows


def _figures(ctx: Context, rows: dict[str, dict[str, Any]], var_rows: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The paper's Figures S.1-S.3 with simulations, the other activations, and the variants: (caption, path)."""
    figures = []
    captions = {
        "S1": "Figure S.1 with simulated networks", "S2": "Figure S.2 with simulated networks",
        "S3": "Figure S.3 (leaky ReLU) with simulated networks",
    }
    for key, labels in FIGURE_GROUPS.items():
        group = [rows[l] for l in labels if l in rows]
        if group:
            path = _figure(group, ctx.figure_path(NAME, key), captions[key])
            figures.append((f"{captions[key]}: activation phi/C; kappa with the cobweb from the rho0 farthest "
                            f"from rho*; rho_l vs layer (lines theory, dots widest-width mean +- SE, squares "
                            f"1/n-extrapolation, dotted theorem bound around rho*); distance to rho* on a log scale",
                            path))
    other = [r for l, r in rows.items() if not any(l in g for g in FIGURE_GROUPS.values())]
    if other:
        figures.append(("Other activations", _figure(other, ctx.figure_path(NAME, "other"), "Other activations")))
    if var_rows:
        path = _figure(var_rows, ctx.figure_path(NAME, "variants"), "Residual and LayerNorm variants")
        figures.append(("Residual (kappa_res = (1-r^2) kappa + r^2 rho) and LayerNorm-after-phi "
                        "(kappa_ln = (kappa - kappa(0))/(1 - kappa(0))) variants, same panels", path))
    return figures


def _table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per row the fixed-point case, rho*, C_W, depth and networks per width."""
    table = ["| activation | case | rho* | C_W | depth | networks per width (n: S) |", "|---|---|---:|---:|---:|---|"]
    for row in rows:
        sims = row["sims"]
        C_W, _ = network_setup(row["C"], None if "ln_post" not in row["label"] else "ln_post")
        table.append(f"| {row['label']} | {row['case']} | {row['rho_star']:.6g} | {C_W:.5g} | {row['depth']} | "
                     + ", ".join(f"{n}: {v['n_networks']}" for n, v in sorted(sims.items())) + " |")
    return "\n".join(table)


def _notes(s: dict[str, Any]) -> str:
    return (
        "rho_l is the correlation of the post-activation Gram of layer l, per network, averaged over networks; "
        "the squares in the figures are the n -> inf extrapolations that the checks judge. Case-3 activations "
        "(ReLU, leaky ReLU, exp: kappa'(1) = E phi'^2 = 1 exactly) converge polynomially, so rho_l is still far "
        "from rho* = 1 at the depths shown; their 'distance' panels are straight lines on log-log, not log-linear. "
        "The normalisation C_W = 1/E[phi^2] puts the variance fixed point at K = 1 but does not make it stable: "
        "its slope is chi_par = C_W d<phi^2>/dK = 2 for exp and 1.144 for GELU (1 for the ReLU family, below 1 for "
        "the others). Where chi_par > 1, finite-width fluctuations of |h|^2 grow geometrically with depth and the "
        "networks leave the regime in which kappa describes them after a few layers (~log n / log chi_par), so "
        f"exp is run to depth {s.get('exp', {}).get('depth', s['depth'])} only (widths "
        f"{s.get('exp', {}).get('widths', s['widths'])}) and GELU to depth "
        f"{s.get('gelu', {}).get('depth', s['depth'])}. Measured: at depth 4 even n = 4096 exp networks sit several "
        "SE below kappa^4(rho0) and some overflow (dropped networks are counted in an info check); GELU at depth 24-40 "
        "misses kappa^l(rho0) by 3-17 SE with widths up to 2048. Layers where 1 - |kappa^l(rho0)| < 1e-9 are not "
        "judged (reported as info): "
        "there the per-network correlation is limited by float64 rounding (~1e-15), not by the map "
        "(the paper notes the same for sigmoid)."
    )


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    checks, act_rows = _rows(ctx, s, "activation")
    var_checks, var_rows = _rows(ctx, s, "variant")
    checks += var_checks
    rows = {row["label"]: row for row in act_rows}
    figures = _figures(ctx, rows, var_rows)
    table = _table(act_rows + var_rows)
    notes = _notes(s)
    checks.append(FINDING.as_check(NAME, "finding: rho_l = kappa^l(rho_0) (verdict from the judged checks)"))
    return ExperimentResult(checks=checks, figures=figures, tables=[table], notes=notes)


EXPERIMENT = Experiment(
    name=NAME,
    title="Kernel sequences of finite-width networks vs the kernel map",
    description=("For each activation (normalised: C_W = 1/E[phi^2], C_b = 0), three input pairs at rho_0 = "
                 f"{', '.join(f'{r:g}' for r in RHO0)} propagate through simulated networks of several widths; "
                 "the per-layer correlation, extrapolated to n -> inf by WLS in 1/n, is compared with "
                 "kappa^l(rho_0) at a few layers. Includes residual and LayerNorm variants."),
    settings=settings,
    run=run,
    order=10,
    units=units,
    run_unit=run_unit,
)
