"""Experiment 4: the simulation methods agree with each other.

1. ``gram`` vs ``explicit`` sampling, in distribution (the Gram-chain shortcut is exact for Gaussian weights, our
   derivation: docs/derivations.md, section 4): per layer, the means and variances over networks of the Gram
   entries, the mean of the post-activation Gram and of E z^4, from independent networks of each method;
   two-sample z = (explicit - gram) / sqrt(SE_e^2 + SE_g^2), judged by |z| <= zmax ('theory' = gram value).
2. ``explicit`` (compiled) vs ``numpy`` (dense reference with the same Philox numbers): equal to rounding,
   kind 'exact', max relative difference over every output array <= 1e-10.
3. ``cpu`` vs ``cuda`` with the same seed (when a GPU is present, else an info check): equal to rounding
   (tolerance 1e-9 relative: the GPU's libm may differ from the CPU's in the last bits).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding

NAME = "method_agreement"

EXACT_TOL = 1e-10

FINDING = Finding(
    claim="Gram chain = explicit Gaussian weights in law; compiled = NumPy reference to rounding",
    source="no paper: this engine's derivation (docs/derivations.md, section 4)", basis="checks")
CUDA_TOL = 1e-9


def settings(profile: str) -> dict[str, Any]:
    dist_configs = [
        {"activation": "relu", "residual": 0.0, "norm": None, "C_W": 2.0, "C_b": 0.0},
        {"activation": "tanh", "residual": 0.0, "norm": None, "C_W": 1.5, "C_b": 0.1},
        {"activation": "gelu", "residual": 0.5, "norm": None, "C_W": 1.5, "C_b": 0.0},
        {"activation": "tanh", "residual": 0.0, "norm": "ln_pre", "C_W": 1.0, "C_b": 0.0},
    ]
    exact_configs = [
        {"activation": "tanh", "residual": 0.0, "norm": None, "C_W": 1.0, "C_b": 0.0, "weights": "gaussian",
         "backward": True},
        {"activation": "relu", "residual": 0.3, "norm": "ln_post", "C_W": 2.0, "C_b": 0.1, "weights": "gaussian",
         "backward": False},
        {"activation": "gelu", "residual": 0.0, "norm": None, "C_W": 1.7, "C_b": 0.2, "weights": "uniform",
         "backward": True},
        {"activation": "selu", "residual": 0.0, "norm": "rms_pre", "C_W": 1.0, "C_b": 0.0, "weights": "rademacher",
         "backward": False},
    ]
    if profile == "smoke":
        return {"dist": dist_configs[:1], "width": 16, "depth": 2, "n_networks": 300, "judge_layers": [2],
                "exact": exact_configs[:1], "exact_width": 8, "exact_depth": 2, "exact_networks": 2,
                "cuda_width": 16, "cuda_depth": 2, "cuda_networks": 4}
    if profile == "quick":
        return {"dist": dist_configs, "width": 32, "depth": 3, "n_networks": 3000, "judge_layers": [1, 3],
                "exact": exact_configs, "exact_width": 24, "exact_depth": 3, "exact_networks": 4,
                "cuda_width": 64, "cuda_depth": 4, "cuda_networks": 64}
    if profile == "full":
        return {"dist": dist_configs, "width": 64, "depth": 6, "n_networks": 40000, "judge_layers": [1, 2, 4, 6],
                "exact": exact_configs, "exact_width": 48, "exact_depth": 4, "exact_networks": 8,
                "cuda_width": 256, "cuda_depth": 8, "cuda_networks": 256}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def _inputs(P: int) -> np.ndarray:
    """P inputs in dimension n_0 = 4 with different norms and correlations (fixed, not random)."""
    X = np.array([[1.0, 0.2, -0.5, 0.3], [0.4, 1.1, 0.2, -0.6], [-0.3, 0.5, 0.9, 0.8]])[:P]
    return X


def _label(cfg: dict[str, Any]) -> str:
    s = f"{cfg['activation']} C_W={cfg['C_W']:g}"
    if cfg.get("C_b"):
        s += f" C_b={cfg['C_b']:g}"
    if cfg.get("residual"):
        s += f" r={cfg['residual']:g}"
    if cfg.get("norm"):
        s += f" {cfg['norm']}"
    if cfg.get("weights", "gaussian") != "gaussian":
        s += f" {cfg['weights']} weights"
    return s


def _sim(cfg, X, width, depth, S, method, backend, seed, backward=False):
    from sigprop.kernels import simulate

    return simulate(X, depth=depth, width=width, activation=cfg["activation"], C_W=cfg["C_W"], C_b=cfg["C_b"],
                    n_networks=S, method=method, backend=backend, seed=seed, weights=cfg.get("weights", "gaussian"),
                    residual=cfg["residual"], norm=cfg["norm"], backward=backward)


def distribution_checks(cfg, a, b, layers, label: str, names=("explicit", "gram")) -> list[Check]:
    """Two-sample z checks between result ``a`` (e.g. explicit) and ``b`` (e.g. gram) at the given layers."""
    checks = []
    P = np.asarray(a.preact_gram).shape[-1]
    iu = [(i, j) for i in range(P) for j in range(i, P)]
    rule = f"two-sample z ({names[0]} - {names[1]}) / sqrt(SE_1^2 + SE_2^2), |z| <= zmax"
    for l in layers:
        quantities = []
        for i, j in iu:
            quantities.append((f"mean z_{i}.z_{j}/n", np.asarray(a.preact_gram)[:, l - 1, i, j],
                               np.asarray(b.preact_gram)[:, l - 1, i, j], stats.mean_se))
            quantities.append((f"var z_{i}.z_{j}/n", np.asarray(a.preact_gram)[:, l - 1, i, j],
                               np.asarray(b.preact_gram)[:, l - 1, i, j], stats.var_se))
            quantities.append((f"mean h_{i}.h_{j}/n", np.asarray(a.postact_gram)[:, l - 1, i, j],
                               np.asarray(b.postact_gram)[:, l - 1, i, j], stats.mean_se))
        for i in range(P):
            quantities.append((f"mean z_{i}^4", np.asarray(a.preact_m4)[:, l - 1, i],
                               np.asarray(b.preact_m4)[:, l - 1, i], stats.mean_se))
        for qname, xa, xb, est in quantities:
            ma, sa = est(xa)
            mb, sb = est(xb)
            diff, se = stats.two_sample_z(ma, sa, mb, sb)
            if not se > 0:  # a deterministic quantity (e.g. a normalised diagonal): must agree exactly
                checks.append(Check(NAME, f"{label} layer {l} {qname}", theory=mb, estimate=ma, stderr=0.0,
                                    rule="deterministic in both methods: |difference| <= 1e-12 (relative)",
                                    kind="exact", tol=1e-12 * max(1.0, abs(mb))))
                continue
            checks.append(Check(NAME, f"{label} layer {l} {qname}", theory=mb, estimate=ma, stderr=se, rule=rule,
                                details={"se_" + names[0]: sa, "se_" + names[1]: sb}))
    return checks


def max_relative_difference(a, b, keys) -> tuple[float, str]:
    """max over keys of max|a-b| / max|b| (the arrays' own scale), and the key where it is largest."""
    worst, where = 0.0, ""
    for k in keys:
        xa, xb = np.asarray(getattr(a, k)), np.asarray(getattr(b, k))
        if xa.shape != xb.shape:
            return float("inf"), f"{k} (shapes {xa.shape} vs {xb.shape})"
        scale = float(np.max(np.abs(xb))) or 1.0
        d = float(np.max(np.abs(xa - xb))) / scale if xa.size else 0.0
        if not np.isfinite(d) or d > worst:
            worst, where = d, k
    return worst, where


KEYS = ("preact_gram", "postact_gram", "preact_m2", "preact_m4")


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    checks: list[Check] = []
    figure_data = []
    X = _inputs(2)
    for cfg in ctx.track(s["dist"], desc=f"{NAME} gram vs explicit"):
        label = _label(cfg)
        ex = _sim(cfg, X, s["width"], s["depth"], s["n_networks"], "explicit", ctx.backend,
                  ctx.sub_seed(NAME, label, "explicit"))
        gr = _sim(cfg, X, s["width"], s["depth"], s["n_networks"], "gram", ctx.backend,
                  ctx.sub_seed(NAME, label, "gram"))
        c = distribution_checks(cfg, ex, gr, s["judge_layers"], f"gram~explicit {label}")
        checks += c
        figure_data.append((label, ex, gr, c))

    X3 = _inputs(3)
    for cfg in s["exact"]:
        label = _label(cfg)
        args = (cfg, X3, s["exact_width"], s["exact_depth"], s["exact_networks"])
        seed = ctx.sub_seed(NAME, label, "exact")
        ex = _sim(*args, "explicit", "cpu", seed, backward=cfg["backward"])
        ref = _sim(*args, "numpy", "cpu", seed, backward=cfg["backward"])
        keys = KEYS + (("backward_gram", "tangent_gram") if cfg["backward"] else ())
        d, where = max_relative_difference(ex, ref, keys)
        checks.append(Check(NAME, f"explicit == numpy {label}", theory=0.0, estimate=d, stderr=0.0, kind="exact",
                            tol=EXACT_TOL, rule=f"max relative difference over {', '.join(keys)} <= {EXACT_TOL:g}",
                            details={"worst_array": where}))

    from sigprop.kernels.backend import cuda_available

    if cuda_available():
        for method in ("gram", "explicit"):
            cfg = s["exact"][0]
            label = _label(cfg)
            seed = ctx.sub_seed(NAME, label, "cuda")
            args = (cfg, X3, s["cuda_width"], s["cuda_depth"], s["cuda_networks"], method)
            a = _sim(*args, "cpu", seed)
            b = _sim(*args, "cuda", seed)
            d, where = max_relative_difference(b, a, KEYS)
            checks.append(Check(NAME, f"cpu == cuda ({method}) {label}", theory=0.0, estimate=d, stderr=0.0,
                                kind="exact", tol=CUDA_TOL,
                                rule=f"same seed: max relative difference <= {CUDA_TOL:g}",
                                details={"worst_array": where}))
    else:
        checks.append(Check(NAME, "cpu == cuda", theory=0.0, estimate=float("nan"), stderr=0.0, kind="info",
                            rule="skipped: no CUDA GPU on this machine"))

    figures = [("Gram-method vs explicit-weight sampling: z-scores of every compared statistic "
                "(two-sample, explicit minus gram), and the distribution of one Gram entry from each method",
                _figure(ctx, figure_data, s))]
    notes = ("The Gram method samples each layer's pre-activations given the previous layer's empirical Gram "
             "matrix; the explicit method multiplies by weights regenerated from the counter-based generator. "
             "Agreement in distribution is what the Gram-chain derivation predicts; agreement of the compiled "
             "explicit engine with the NumPy reference (same random numbers) must hold to rounding.")
    checks.append(FINDING.as_check(NAME, "finding: the simulation methods agree (verdict from the judged checks)"))
    return ExperimentResult(checks=checks, figures=figures, notes=notes)


def _figure(ctx: Context, data, s) -> str:
    from ..plotting import save, subplots

    fig, axes = subplots(1, 2, panel=(4.6, 3.0))
    ax, ax_h = axes[0]
    for k, (label, ex, gr, checks) in enumerate(data):
        zs = [c.z for c in checks if c.kind == "z"]
        ax.plot(np.arange(len(zs)), zs, "o", ms=3, label=label)
    ax.axhline(0, color="k", lw=0.6)
    for sgn in (-1, 1):
        ax.axhline(sgn * 3, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("statistic index (layer, entry, moment)")
    ax.set_ylabel("z = (explicit - gram) / SE")
    ax.set_title("gram vs explicit: z-scores (dotted: |z| = 3)", fontsize=9)
    ax.legend(fontsize=6)
    label, ex, gr, _ = data[0]
    L = s["depth"]
    a = np.asarray(ex.preact_gram)[:, L - 1, 0, 1]
    b = np.asarray(gr.preact_gram)[:, L - 1, 0, 1]
    bins = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 40)
    ax_h.hist(b, bins=bins, density=True, histtype="stepfilled", alpha=0.4, label="gram method")
    ax_h.hist(a, bins=bins, density=True, histtype="step", lw=1.4, label="explicit weights")
    ax_h.set_xlabel(f"z_0.z_1 / n at layer {L}")
    ax_h.set_ylabel("density over networks")
    ax_h.set_title(f"{label}, n={s['width']}, {s['n_networks']} networks each", fontsize=9)
    ax_h.legend(fontsize=7)
    return save(fig, ctx.figure_path(NAME, "gram_vs_explicit"))


EXPERIMENT = Experiment(
    name=NAME,
    title="Simulation methods agree",
    description=("Gram-chain sampling vs explicit weights in distribution (means and variances of Gram entries, "
                 "E z^4; two-sample z), the compiled explicit engine vs the NumPy reference to rounding, and CPU vs "
                 "CUDA with the same seed when a GPU is present."),
    settings=settings,
    run=run,
    order=40,
)
