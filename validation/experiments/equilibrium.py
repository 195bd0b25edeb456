"""Experiment: the equilibrium hypothesis (Lou, Mingard & Hayou, arXiv 2110.11749) and the L^(3/5) law.

Three measurements of the layer of maximal tangent-kernel/label alignment, on sklearn's digits:
  (1) theory: the equilibrium layer l*(L) of sigprop.theory.equilibrium (THEORY.md sec. 5 reconstruction) and the
      argmax over layers of the CKA of the infinite-width tangent kernels (x I_o) with the labels at initialisation;
  (2) finite-width ReLU MLPs (Kaiming init, width n; bias-free in smoke/quick, trainable zero-initialised biases in
      full) at initialisation;
  (3) the same networks trained by SGD with momentum (cross-entropy; weight decay 5e-4 in full), alignment recorded
      when the training loss first falls below each threshold; l* is read at the stage threshold (1.0 in quick,
      0.02 in full, the published protocol's last), and the exponent is fitted at every threshold and at the end.
Each trained network (depth, seed) is one unit of work (``Experiment.units``), spread over Dask workers by
``sigprop validate --jobs N`` / ``--scheduler`` and cached one by one.
Layers are reported 1-based (hidden layer l+1 <-> tangent index l <-> theory kernel index l), and the log-log fits
use these layer numbers for every curve alike.  Comparisons of exponents are scientific findings (kind 'info');
kind 'z' is used only where theory must hold: explicit-weight simulated forward, backward and tangent Grams
extrapolated in 1/n against the infinite-width recursion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding

NAME = "equilibrium"


def settings(profile: str) -> dict[str, Any]:
    # lr = lr_base * (lr_ref_depth / L)^lr_depth_power, gradient norm clipped at clip_norm: deep (L >= 70, width 256)
    # bias-free ReLU nets take rare huge gradient spikes that momentum carries into a collapse (loss back to log 10);
    # with lr ~ 1/L they still spike and, the step being tiny, never leave the plateau (docs/equilibrium.md sec. 5)
    common = {"loss": "cross_entropy", "momentum": 0.9, "batch_size": 32, "thresholds": [1.5, 1.0, 0.3, 0.1],
              "stage_threshold": 1.0, "lr_base": 0.004, "lr_ref_depth": 10, "lr_depth_power": 0.0,
              "clip_norm": 2.0, "sim_P": 4, "bias": False, "weight_decay": 0.0}
    if profile == "smoke":
        return {**common, "depths": [4, 8, 12], "seeds": 1, "width": 64, "n_train": 100, "epochs": 6,
                "stage_threshold": 1.5, "lr_base": 0.01,
                "align_n": 12, "sim_depth": 3, "sim_widths": [32, 64], "sim_networks": 24}
    if profile == "quick":
        return {**common, "depths": [10, 20, 30, 40, 50, 60], "seeds": 2, "width": 256, "n_train": 300,
                "epochs": 40, "stop_at_stage": True, "align_n": 30, "sim_depth": 6, "sim_widths": [64, 128, 256],
                "sim_networks": 48}
    if profile == "full":  # the published protocol: trainable zero-initialised biases, weight decay, loss < 0.02
        return {**common, "depths": list(range(10, 101, 10)), "seeds": 3, "width": 256, "n_train": 1000,
                "epochs": 300, "stop_at_stage": True, "align_n": 200, "sim_depth": 12, "bias": True,
                "weight_decay": 5e-4, "thresholds": [1.0, 0.1, 0.02], "stage_threshold": 0.02,
                "sim_widths": [64, 128, 256, 512], "sim_networks": 96}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def learning_rate(s: dict[str, Any], depth: int) -> float:
    """lr = lr_base * (lr_ref_depth / depth)^lr_depth_power (power 1: the ~1/L step of an NTK growing ~ L;
    power 0, the default: one lr for all depths, made stable by gradient-norm clipping)."""
    return s["lr_base"] * (s["lr_ref_depth"] / depth) ** s.get("lr_depth_power", 1.0)


# --------------------------------------------------------------------------------------------
# (z) simulated-at-init backward/tangent Grams against the infinite-width recursion
# --------------------------------------------------------------------------------------------
def _simulation_checks(ctx: Context, s: dict[str, Any], X: np.ndarray) -> tuple[list[Check], dict]:
    from sigprop.kernels.simulate import simulate
    from sigprop.theory.tangent import tangent_kernels

    P, n0 = X.shape
    depth = s["sim_depth"]
    th = tangent_kernels("relu", X @ X.T / n0, depth, 2.0, 0.0)
    sims = {}
    for n in ctx.track(s["sim_widths"], desc=f"{NAME}: simulate"):
        r = simulate(X, depth=depth, width=n, activation="relu", C_W=2.0, C_b=0.0, n_networks=s["sim_networks"],
                     method="explicit", backend=ctx.backend, seed=ctx.sub_seed(NAME, "simulate", n), backward=True)
        sims[n] = {k: (g.mean(axis=0), g.std(axis=0, ddof=1) / math.sqrt(g.shape[0]))
                   for k, g in (("postact", r.postact_gram), ("backward", r.backward_gram),
                                          ("tangent", r.tangent_gram))}
    layers = sorted({1, max(1, depth // 2), depth})
    checks = []
    widths = list(sims)
    for kind in ("postact", "backward", "tangent"):
        theory = getattr(th, kind)
        for l in layers:
            for a, b in ((0, 0), (0, 1), (1, 2)):
                y = [sims[n][kind][0][l - 1, a, b] for n in widths]
                se = [sims[n][kind][1][l - 1, a, b] for n in widths]
                fit = stats.wls_extrapolate(widths, y, se, order=1)
                checks.append(Check(
                    NAME, f"simulated {'forward (postact)' if kind == 'postact' else kind} Gram, "
                    f"layer {l}, entry ({a},{b})", float(theory[l - 1, a, b]),
                    fit.intercept, fit.intercept_se, f"1/n WLS extrapolation over widths {widths}, |z| <= zmax",
                    details={"widths": widths, "means": [float(v) for v in y], "ses": [float(v) for v in se],
                             "fit": fit.to_dict()}))
    return checks, {"theory": th, "sims": sims}


# --------------------------------------------------------------------------------------------
# Alignment hierarchies
# --------------------------------------------------------------------------------------------
def _infinite_width_alignment(Xa: np.ndarray, ya: np.ndarray, depth: int, o: int) -> np.ndarray:
    """CKA of Theta_l (x) I_o (infinite width, o independent readouts, output-major) with vec(Y) vec(Y)^T."""
    from sigprop.kernels.training import one_hot
    from sigprop.theory.tangent import centered_kernel_alignment_rank_one, tangent_kernels

    th = tangent_kernels("relu", Xa @ Xa.T / Xa.shape[1], depth, 2.0, 0.0)
    y = one_hot(ya, o).T.reshape(-1)
    return np.array([centered_kernel_alignment_rank_one(np.kron(np.eye(o), t), y) for t in th.tangent])


def training_units(s: dict[str, Any]) -> list[list[int]]:
    """The units of work: one trained network per ``[depth, seed index]``."""
    return [[L, k] for L in s["depths"] for k in range(s["seeds"])]


def train_network(ctx: Context, s: dict[str, Any], key) -> dict[str, Any]:
    """Train network ``key = [depth, seed index]`` and record its alignment hierarchy: a plain function of the
    settings, the key and ``ctx.seed`` (data, init and SGD seeds are derived from them), so it gives the same
    numbers in any process."""
    from sigprop.kernels.training import TangentAlignment, init_mlp, load_digits_data, train

    L, k = (int(v) for v in key)
    X, y = load_digits_data(s["n_train"], seed=ctx.sub_seed(NAME, "data"))
    align = TangentAlignment(X[: s["align_n"]], y[: s["align_n"]])  # run at init, at each threshold and at the end
    mlp = init_mlp(X.shape[1], 10, depth=L, width=s["width"], bias=bool(s.get("bias", False)),
                   seed=ctx.sub_seed(NAME, "init", L, k))
    stop = bool(s.get("stop_at_stage", False))  # stop once the stage threshold is reached (saves time)
    thresholds = [t for t in s["thresholds"] if not stop or t >= s["stage_threshold"]]
    # train() runs BLAS on one thread (batch-sized products)
    r = train(mlp, X, y, loss=s["loss"], lr=learning_rate(s, L), momentum=s["momentum"],
              batch_size=s["batch_size"], epochs=s["epochs"], thresholds=tuple(thresholds),
              weight_decay=float(s.get("weight_decay", 0.0)), measures=[align], seed=ctx.sub_seed(NAME, "sgd", L, k),
              stop_at_last_threshold=stop, clip_norm=s.get("clip_norm"))
    return {"init": r.initial(align.name), "at": {t: r.at_threshold(align.name, t) for t in r.epoch_at},
            "epoch_at": dict(r.epoch_at), "final": r.final(align.name), "diverged": bool(r.diverged),
            "loss": [float(v) for v in r.loss_history], "acc": float(r.accuracy_history[-1]),
            "seconds": float(r.seconds), "clipped": int(r.clipped_steps)}


def _train_all(ctx: Context, s: dict[str, Any]) -> dict:
    keys = training_units(s)
    values = ctx.run_units(train_network, keys, s, desc=f"{NAME}: train")
    return {(L, k): v for (L, k), v in zip(keys, values)}


def _fit(depths, layers, label: str):
    from sigprop.validation.stats import fit_power_law

    try:
        return fit_power_law(depths, layers)
    except ValueError as exc:  # too few distinct depths
        return f"{label}: no fit ({exc})"


def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    from sigprop.kernels.training import load_digits_data

    depths = list(s["depths"])
    X, y = load_digits_data(s["n_train"], seed=ctx.sub_seed(NAME, "data"))
    Xa, ya = X[: s["align_n"]], y[: s["align_n"]]
    # (z) theory must hold: simulated kernels at init vs infinite width
    checks, _ = _simulation_checks(ctx, s, X[: s["sim_P"]])
    theory_checks, theory = _theory_layers(depths)
    checks += theory_checks
    inf_al = {L: _infinite_width_alignment(Xa, ya, L, 10) for L in depths}  # infinite-width alignment at init
    l_inf = np.array([int(np.argmax(inf_al[L])) + 1 for L in depths])
    runs = _train_all(ctx, s)  # finite-width networks: init and trained (units of work)
    layers = _argmax_layers(s, depths, runs)
    fits = {"theory l*(L) (equilibrium definition)": theory["fit"], "infinite-width init argmax CKA":
            _fit(depths, l_inf, ""), "finite-width init argmax CKA": _fit_points(depths, layers["init"]),
            f"trained argmax CKA ({layers['stage']})": _fit_points(depths, layers["trained"])}
    checks += _exponent_checks(depths, theory, fits, layers, l_inf)
    figures = [_heatmap(ctx, s, depths, runs, inf_al, theory["l"], layers["stage"]),
               _loglog(ctx, depths, theory["l_cont"], l_inf, layers["init"], layers["trained"], fits)]
    tables = [_depth_table(s, depths, runs, theory["l"], l_inf, layers),
              _fit_table(depths, fits, layers["stage_fits"])]
    return ExperimentResult(checks=checks, figures=figures, tables=tables, notes=_notes(s, runs, layers))


def _theory_layers(depths: list[int]) -> tuple[list[Check], dict[str, Any]]:
    """The equilibrium layer of the definition over the window of depths, its exponent there and at L = 1e5..1e6."""
    from sigprop.theory.equilibrium import equilibrium_layers
    from sigprop.validation.stats import fit_power_law, theory_exponent

    l_theory = equilibrium_layers(depths) + 1                       # 1-based layer numbers
    l_theory_cont = equilibrium_layers(depths, continuous=True) + 1.0
    fit_theory = fit_power_law(depths, l_theory_cont)
    late = theory_exponent(10 ** 5, 10 ** 6)
    checks = [Check(NAME, "theory exponent over L = 1e5..1e6 vs asymptotic 3/5", 0.6, late.exponent, 0.0,
                    "|b - 3/5| <= 0.01 (the definition reproduces the theorem's exponent asymptotically)",
                    kind="exact", tol=0.01, details={"ci": [late.ci_low, late.ci_high]}),
              Check(NAME, f"theory (equilibrium definition) exponent over L = {depths[0]}..{depths[-1]} vs 3/5",
                    0.6, fit_theory.exponent, fit_theory.stderr,
                    "info: finite-L exponent the definition predicts over the experiment's window", kind="info",
                    details={"ci": [fit_theory.ci_low, fit_theory.ci_high]})]
    return checks, {"l": l_theory, "l_cont": l_theory_cont, "fit": fit_theory}


def _argmax_layers(s: dict[str, Any], depths: list[int], runs: dict) -> dict[str, Any]:
    """The 1-based layer of maximal alignment per (depth, seed): at init, at the trained stage (the first time the
    training loss fell below stage_threshold, as in the published protocol; NaN for networks that never got there,
    which are left out of the trained fit and listed in the table), at every threshold and at the end."""
    seeds = range(s["seeds"])
    t_stage = float(s["stage_threshold"])
    for r in runs.values():
        r["trained"] = r["at"].get(t_stage)

    def argmax_or_nan(stats) -> float:
        return np.argmax(stats) + 1 if stats is not None else np.nan

    def per_net(get) -> np.ndarray:
        return np.array([[argmax_or_nan(get(runs[(L, k)])) for k in seeds] for L in depths], dtype=float)

    stage_fits = {}
    for t in [t for t in s["thresholds"] if not s.get("stop_at_stage") or t >= t_stage]:
        stage_fits[f"loss<{t:g}"] = per_net(lambda r, t=t: r["at"].get(t))
    end_key = "end of training" + (" (or at the stage: stop_at_stage)" if s.get("stop_at_stage") else "")
    stage_fits[end_key] = per_net(lambda r: r["final"])
    return {"stage": f"loss<{t_stage:g}", "t_stage": t_stage, "init": per_net(lambda r: r["init"]),
            "trained": per_net(lambda r: r["trained"]), "stage_fits": stage_fits}


def _fit_points(depths: list[int], mat: np.ndarray):
    """Power-law fit of the finite entries of a (depth, seed) matrix of layers, or the reason there is none."""
    dd = np.repeat(depths, mat.shape[1]).astype(float)
    v = mat.ravel()
    ok = np.isfinite(v)
    if len(np.unique(dd[ok])) < 3:
        return f"no fit: fewer than 3 depths reached this stage ({int(ok.sum())} of {v.size} networks)"
    return _fit(dd[ok], v[ok], "")


def _exponent_check(name: str, fit, ref: float, ref_label: str, finding: Finding | None = None) -> Check:
    extra = {} if finding is None else {"finding": finding.to_dict()}
    if isinstance(fit, str):
        return Check(NAME, name, ref, math.nan, math.nan, fit, kind="info", details=extra)
    agree = fit.ci_low <= ref <= fit.ci_high
    return Check(NAME, name, ref, fit.exponent, fit.stderr,
                 f"info: {int(100 * fit.confidence)}% CI [{fit.ci_low:.3f}, {fit.ci_high:.3f}] "
                 f"{'contains' if agree else 'excludes'} {ref_label} = {ref:.3f}", kind="info",
                 details={"ci": [fit.ci_low, fit.ci_high], "contains_reference": agree, **extra})


def _exponent_checks(depths, theory, fits, layers, l_inf) -> list[Check]:
    """The informational exponent comparisons (the first carries the headline Finding) and the per-depth l*."""
    fit_theory, fit_inf = theory["fit"], fits["infinite-width init argmax CKA"]
    fit_init, fit_trained = fits["finite-width init argmax CKA"], fits[f"trained argmax CKA ({layers['stage']})"]
    # the headline the report lists under its verdict: the paper's law for trained networks
    measured = f"trained exponent (L = {depths[0]}..{depths[-1]}, at {layers['stage']})"
    headline = Finding(
        claim="trained networks' layer of maximal alignment l*(L) ~ L^(3/5)",
        source="Lou, Mingard & Hayou", basis="interval", paper_value=0.6, paper_text="3/5", rivals=(0.0, 1.0),
        measured=measured if not isinstance(fit_trained, str) else f"{measured}: {fit_trained}",
        value=math.nan if isinstance(fit_trained, str) else fit_trained.exponent,
        interval=None if isinstance(fit_trained, str) else (fit_trained.ci_low, fit_trained.ci_high),
        confidence=0.95 if isinstance(fit_trained, str) else fit_trained.confidence)
    checks = [
        _exponent_check("trained exponent vs asymptotic 3/5", fit_trained, 0.6, "3/5", finding=headline),
        _exponent_check("trained exponent vs theory's finite-L exponent", fit_trained, fit_theory.exponent, "theory"),
        _exponent_check("trained exponent vs finite-width init exponent", fit_trained,
                        fit_init.exponent if not isinstance(fit_init, str) else math.nan, "init"),
        _exponent_check("finite-width init exponent vs theory's finite-L exponent", fit_init, fit_theory.exponent,
                        "theory"),
        _exponent_check("infinite-width init exponent vs theory's finite-L exponent", fit_inf, fit_theory.exponent,
                        "theory")]
    for i, L in enumerate(depths):
        row = layers["trained"][i]
        v = row[np.isfinite(row)]
        checks.append(Check(NAME, f"trained l* at L={L} vs theory l*(L)", float(theory["l"][i]),
                            float(v.mean()) if v.size else math.nan,
                            float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan,
                            "info: mean over seeds of the 1-based argmax layer", kind="info",
                            details={"per_seed": row.tolist(), "init_per_seed": layers["init"][i].tolist(),
                                     "infinite_width_init": int(l_inf[i]),
                                     "stage": layers["stage"]}))
    return checks


def _depth_table(s, depths, runs, l_theory, l_inf, layers) -> str:
    stage, t_stage, seeds = layers["stage"], layers["t_stage"], range(s["seeds"])
    table = ["| L | theory l*(L)+1 | inf.-width init argmax | init argmax (mean ± sd) | trained argmax (mean ± sd) "
             f"| epoch reaching {stage} | final train loss | final train acc |", "|---|---|---|---|---|---|---|---|"]
    for i, L in enumerate(depths):
        ep = [runs[(L, k)]["epoch_at"].get(t_stage, "–") for k in seeds]
        loss = np.mean([runs[(L, k)]["loss"][-1] for k in seeds])
        accs = np.mean([runs[(L, k)]["acc"] for k in seeds])
        table.append(f"| {L} | {l_theory[i]} | {l_inf[i]} | {_ms(layers['init'][i])} | "
                     f"{_ms(layers['trained'][i])} | {', '.join(str(e) for e in ep)} | {loss:.3f} | {accs:.2f} |")
    return "\n".join(table)


def _fit_table(depths, fits, stage_fits) -> str:
    from sigprop.theory.equilibrium import asymptotic_equilibrium_layer

    ftab = ["| curve | exponent | 95% CI | prefactor | points |", "|---|---|---|---|---|"]
    for k, f in fits.items():
        ftab.append(f"| {k} | {f.exponent:.3f} | [{f.ci_low:.3f}, {f.ci_high:.3f}] | {f.prefactor:.3g} | {f.n} |"
                    if not isinstance(f, str) else f"| {k} | {f} | | | |")
    for k, m in stage_fits.items():
        f = _fit_points(depths, m)
        ftab.append(f"| trained, at {k} | {f.exponent:.3f} | [{f.ci_low:.3f}, {f.ci_high:.3f}] | {f.prefactor:.3g} | "
                    f"{f.n} |" if not isinstance(f, str)
                    else f"| trained, at {k} | {f} | | | {int(np.isfinite(m).sum())} |")
    ftab.append(f"| asymptote (9 pi^2/2)^(1/5) L^(3/5) | 0.600 | | {asymptotic_equilibrium_layer(1.0):.3g} | |")
    return "\n".join(ftab)


def _notes(s, runs, layers) -> str:
    l_trained = layers["trained"]
    return (f"Digits: {s['n_train']} training samples, alignment on {s['align_n']} (oN x oN tangent kernels, o = 10, "
            f"target vec(Y) vec(Y)^T). ReLU MLPs of width {s['width']}, "
            f"{'trainable biases initialised at zero' if s.get('bias') else 'bias-free'}, Kaiming-normal, SGD "
            f"momentum {s['momentum']}, weight decay {s.get('weight_decay', 0.0):g}, batch {s['batch_size']}, "
            f"lr = {s['lr_base']} x ({s['lr_ref_depth']}/L)^"
            f"{s.get('lr_depth_power', 1.0):g}, gradient norm clipped at {s.get('clip_norm')} "
            f"({sum(r['clipped'] for r in runs.values())} clipped steps in all), "
            f"up to {s['epochs']} epochs{' (stopping at the stage threshold)' if s.get('stop_at_stage') else ''}, "
            f"{s['seeds']} seed(s) per depth, thresholds {s['thresholds']} on the training "
            f"{s['loss']} loss; the trained hierarchy is read when the loss first fell below {layers['t_stage']:g} "
            f"({int(np.isfinite(l_trained).sum())} of {l_trained.size} networks got there; the others are left out "
            "of the trained fit). Layer numbers are 1-based. Exponent CIs are Student-t intervals of the log-log "
            "least-squares slope (for the theory curve they measure curvature, not noise). "
            f"Training took {sum(r['seconds'] for r in runs.values()):.0f} s in total.")


def _ms(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if not v.size:
        return "n/a"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if v.size > 1 else f"{v[0]:.0f}"


def _normalised_map(depths, per_depth) -> np.ndarray:
    Lmax = max(depths)
    img = np.full((Lmax, len(depths)), np.nan)
    for j, L in enumerate(depths):
        a = per_depth[L]
        img[:L, j] = a / np.max(a)
    return img


def _heatmap(ctx: Context, s, depths, runs, inf_al, l_theory, stage):
    from ..plotting import save, subplots

    seeds = range(s["seeds"])
    panels = [("infinite width, init", {L: inf_al[L] for L in depths}),
              (f"width {s['width']}, init (mean over seeds)",
               {L: np.mean([runs[(L, k)]["init"] for k in seeds], axis=0) for L in depths})]
    trained = {}
    for L in depths:
        al = [runs[(L, k)]["trained"] / np.max(runs[(L, k)]["trained"]) for k in seeds
              if runs[(L, k)]["trained"] is not None]
        trained[L] = np.mean(al, axis=0) if al else np.full(L, np.nan)
    panels.append((f"width {s['width']}, trained, at {stage} (blank: not reached)", trained))
    fig, axes = subplots(1, 3, panel=(3.6, 3.4))
    step = depths[1] - depths[0] if len(depths) > 1 else 1
    for ax, (title, per) in zip(axes[0], panels):
        img = _normalised_map(depths, {L: np.nan_to_num(per[L], nan=0.0) if np.any(np.isfinite(per[L])) else per[L]
                                       for L in depths})
        lo = float(np.nanmin(img)) if np.any(np.isfinite(img)) else 0.0
        im = ax.imshow(img, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                       vmin=min(lo, 0.99), vmax=1.0,
                       extent=(depths[0] - step / 2, depths[-1] + step / 2, 0.5, max(depths) + 0.5))
        fig.colorbar(im, ax=ax, shrink=0.8, label="alignment / max over layers")
        amax = [int(np.nanargmax(per[L])) + 1 if np.any(np.isfinite(per[L])) else np.nan for L in depths]
        ax.plot(depths, amax, "x", color="cyan", ms=7, mew=2, label="argmax")
        ax.plot(depths, l_theory, "-", color="lime", lw=1.2, label="theory l*(L)+1")
        ax.set_xlabel("depth L")
        ax.set_ylabel("layer (1 = first hidden)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Alignment hierarchy on digits: CKA(layer tangent kernel, labels) / max over layers", fontsize=10)
    path = save(fig, ctx.figure_path(NAME, "hierarchy"))
    return ("Alignment hierarchy (brightness = alignment / its maximum over layers, per depth; x = layer of maximal "
            "alignment; green line = theory equilibrium layer l*(L)+1): infinite-width kernels, finite-width nets at "
            "initialisation, trained nets", path)


def plt_null_formatter():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _loglog(ctx: Context, depths, l_theory_cont, l_inf, l_init, l_trained, fits):
    from sigprop.theory.equilibrium import asymptotic_equilibrium_layer

    from ..plotting import COLORS, save, subplots

    fig, axes = subplots(1, 1, panel=(5.2, 4.0))
    ax = axes[0][0]
    d = np.asarray(depths, dtype=float)
    grid = np.geomspace(d.min(), d.max(), 50)

    def line(fit, color):
        if not isinstance(fit, str):
            ax.plot(grid, fit.prefactor * grid ** fit.exponent, "-", color=color, lw=1)

    def lab(name, fit):
        return name if isinstance(fit, str) else f"{name}: b = {fit.exponent:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"

    keys = list(fits)
    ax.plot(d, l_theory_cont, "s", color=COLORS[0], ms=5, mfc="none", label=lab("theory l*+1", fits[keys[0]]))
    line(fits[keys[0]], COLORS[0])
    ax.plot(d, l_inf, "d", color=COLORS[1], ms=5, label=lab("inf. width, init", fits[keys[1]]))
    line(fits[keys[1]], COLORS[1])
    import warnings

    warnings.filterwarnings("ignore", message="(Mean of empty slice|All-NaN slice)", category=RuntimeWarning)
    for mat, key, col, mk, off in ((l_init, keys[2], COLORS[2], "^", 0.97), (l_trained, keys[3], COLORS[3], "o", 1.03)):
        mean = np.nanmean(mat, axis=1)
        lo, hi = np.nanmin(mat, axis=1), np.nanmax(mat, axis=1)
        ax.errorbar(d * off, mean, yerr=[mean - lo, hi - mean], fmt=mk, color=col, ms=5, capsize=2,
                    label=lab(key.replace(" argmax CKA", ""), fits[key]))
        line(fits[key], col)
    ax.plot(grid, asymptotic_equilibrium_layer(1.0) * grid ** 0.6, "k--", lw=1,
            label="asymptote 2.14 L^(3/5) (0-based l*)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(plt_null_formatter())
    ax.xaxis.set_minor_formatter(plt_null_formatter())
    ax.set_xticks(d)
    ax.set_xticklabels([f"{int(v)}" for v in d])
    ax.set_xlabel("depth L")
    ax.set_ylabel("layer of maximal alignment (1-based)")
    ax.set_title("Equilibrium layer vs depth (bars: min-max over seeds)", fontsize=9)
    ax.legend(fontsize=7)
    path = save(fig, ctx.figure_path(NAME, "loglog"))
    return ("Layer of maximal alignment against depth, log-log, with least-squares power-law fits (exponent b, 95% CI)",
            path)


EXPERIMENT = Experiment(
    name=NAME,
    title="Equilibrium hypothesis: layer of maximal alignment vs depth (L^(3/5))",
    description=("Layerwise tangent-kernel/label alignment of ReLU MLPs on digits at initialisation (infinite and "
                 "finite width) and after SGD training, for depths 10..100; log-log fit of the layer of maximal "
                 "alignment against depth, compared with the asymptotic 3/5, the finite-L exponent of the equilibrium "
                 "definition, and the initialisation; simulated backward and tangent Grams checked against the "
                 "infinite-width recursion."),
    settings=settings,
    run=run,
    order=60,
    units=training_units,
    run_unit=train_network,
)
