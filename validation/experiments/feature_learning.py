"""Experiment: feature learning in trained MLPs -- the Deep Neural Feature Ansatz (NFA), its tight-frame form, RFM.

Radhakrishnan, Beaglehole, Pandit & Belkin (arXiv 2212.13881; the mathematics in docs/derivations.md, section 6); the
measures, the four choices and the proposition are in docs/feature_learning.md.  For every network (depth 2-5, widths
64-512 with an expanding first layer and a compressing layer, relu/tanh/gelu, MSE and cross-entropy) on sklearn digits
and on two multi-index teacher tasks with known relevant subspace span(U), at initialisation and at several epochs of
training (the measures are trainer callbacks, :class:`FeatureMeasure`), every layer i gets

* judged, kind ``exact`` (rounding budgets, not statistics):
  - the chain rule ``AGOP_i = W_i^T G_{i+1} W_i`` (uncentred and centred gradients), relative Frobenius error
    <= ``CHAIN_TOL``; the Jacobians it is built from are first checked against an independent forward-mode
    (Jacobian-vector product) pass, relative error <= ``JVP_TOL``;
  - the proposition: the measured NFA cosine (alpha 1, W, cosine) lies in the interval that the isotropy of the
    pre-activation frame on range(W) implies (:func:`~sigprop.validation.measures.nfa_isotropy_relation`), for the
    uncentred frame G and the centred frame G_c; estimate = largest violation, theory 0, tolerance ``BOUND_TOL``;
* reported, kind ``info``, with 95% Student-t intervals across seeds: the NFA correlation in six variants (the
  baseline and each of the four choices flipped, plus the 'later work' Pearson/alpha 1/2 pair), the full and the
  compressed frame isotropy, at every measured epoch.

On the teacher tasks it compares the trained first layer ``W_1^T W_1``, the network's input AGOP and the Recursive
Feature Machine's ``M`` (fitted on the same data) with span(U): the fraction ``tr(P_U A) / tr(A)`` (chance ``k/d``
for an isotropic A) and the correlation of RFM's M with ``W_1^T W_1``.  The falsifiable expectations are judged
checks: the one-sided 95% lower confidence bound across seeds (Student t) of each fraction after training must
reach a stated multiple of ``k/d`` (``expect_rfm`` for RFM, ``expect_w1`` for the trained first layer); the
estimate is the shortfall ``max(0, c k/d - LCB)``, theory 0, tolerance 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigprop.theory.errors import InputError

from ..experiment import Check, Context, Experiment, ExperimentResult, Finding
from ..measures import (
    agop,
    chain_rule_agop,
    frame_isotropy,
    matrix_correlation,
    nfa_correlation,
    nfa_isotropy_relation,
    subspace_fraction,
)
from ..stats import lower_confidence_bound, mean_interval

NAME = "feature_learning"

EXPECT_W1 = 2.0  # multiple of chance k/d the trained first layer's teacher-subspace fraction must reach (lower bound)
EXPECT_RFM = 5.0  # the same for RFM's M

# the headline finding, judged by the checks (the teacher-subspace expectations and the proposition's relation)
FINDING = Finding(
    claim=(f"trained first layers and RFM concentrate their features in the teacher subspace span(U) (lower 95% "
           f"bounds >= {EXPECT_W1:g} k/d and {EXPECT_RFM:g} k/d), and AGOP_i = W_i^T G W_i with the "
           "NFA cosine inside the proposition's isotropy interval on every layer"),
    source="Radhakrishnan et al. (arXiv 2212.13881); the proposition: this package", basis="checks")
CHAIN_TOL = 1e-10   # relative Frobenius error of AGOP_i = W_i^T G W_i (rounding of two products)
JVP_TOL = 1e-10     # relative max error of the reverse-mode Jacobians against forward mode
BOUND_TOL = 1e-9    # absolute slack of the proposition's interval (the cosines are rounded to ~1e-15)
LEVEL = 0.95        # confidence level of every interval across seeds

# (key, label, nfa_correlation keyword arguments, centred gradients)
VARIANTS = (
    ("baseline", "W, alpha 1, uncentred, cosine", {}, False),
    ("w_minus_w0", "W - W0", {"W0": True}, False),
    ("alpha_half", "alpha 1/2", {"alpha": 0.5}, False),
    ("centred", "centred gradients", {}, True),
    ("pearson", "Pearson", {"measure": "pearson"}, False),
    ("later", "Pearson, alpha 1/2 (later work)", {"measure": "pearson", "alpha": 0.5}, False),
)
VARIANT_LABEL = {k: lab for k, lab, _, _ in VARIANTS}


# --------------------------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------------------------
def _net(name: str, data: str, hidden: list[int], activation: str, loss: str, lr: float, weight_decay: float,
         epochs: int, measure_epochs: list[int]) -> dict[str, Any]:
    return {"name": name, "data": data, "hidden": hidden, "activation": activation, "loss": loss, "lr": lr,
            "weight_decay": weight_decay, "epochs": epochs, "measure_epochs": measure_epochs}


def settings(profile: str) -> dict[str, Any]:
    """Networks, data and training of each profile (a JSON dict: it keys the cache).

    ``teacher``: input dimension ``dim`` and the k of each task (product: k = 2; relu_sum: ``relu_k``); ``n_measure``
    samples (the first of the training set) feed every measure; ``rfm``: its settings (reference code: bandwidth 10,
    reg 1e-3).  ``expect_w1``/``expect_rfm``: the stated multiples of k/d that the lower confidence bounds must reach.
    """
    common = {"momentum": 0.9, "batch_size": 32, "bias": True, "C_b": 0.0, "jvp_directions": 2,
              "expect_w1": EXPECT_W1, "expect_rfm": EXPECT_RFM,
              "rfm": {"bandwidth": 10.0, "reg": 1e-3, "iters": 5, "power": 1.0}}
    if profile == "smoke":
        nets = [_net("digits relu CE", "digits", [48, 16], "relu", "cross_entropy", 0.05, 0.0, 3, [1]),
                _net("product gelu MSE", "product", [64, 32], "gelu", "mse", 0.02, 3e-2, 40, [5])]
        return {**common, "seeds": 2, "networks": nets, "digits_n": 120, "teacher": {"dim": 16, "n": 200,
                "relu_k": 3}, "n_measure": 60, "rfm": {**common["rfm"], "iters": 3}}
    if profile == "quick":
        nets = [_net("digits relu CE", "digits", [512, 128], "relu", "cross_entropy", 0.05, 1e-3, 30, [2, 5, 10, 20]),
                _net("digits tanh MSE", "digits", [256, 256, 256], "tanh", "mse", 0.1, 1e-3, 30, [2, 5, 10, 20]),
                _net("digits gelu CE deep", "digits", [128, 128, 128, 128, 64], "gelu", "cross_entropy", 0.05, 1e-3,
                     30, [2, 5, 10, 20]),
                _net("product relu MSE", "product", [256, 256], "relu", "mse", 0.02, 1e-2, 60, [5, 10, 20, 40]),
                _net("relu-sum gelu MSE", "relu_sum", [512, 256], "gelu", "mse", 0.02, 1e-2, 60, [5, 10, 20, 40])]
        return {**common, "seeds": 3, "networks": nets, "digits_n": 600,
                "teacher": {"dim": 20, "n": 800, "relu_k": 3}, "n_measure": 300}
    if profile == "full":
        eps_d, eps_t = [2, 5, 10, 20, 40], [5, 10, 20, 50, 100]
        nets = [_net("digits relu CE", "digits", [512, 128], "relu", "cross_entropy", 0.05, 1e-3, 60, eps_d),
                _net("digits relu MSE", "digits", [512, 128], "relu", "mse", 0.1, 1e-3, 60, eps_d),
                _net("digits tanh MSE", "digits", [256, 256, 256], "tanh", "mse", 0.1, 1e-3, 60, eps_d),
                _net("digits tanh CE", "digits", [256, 256, 256], "tanh", "cross_entropy", 0.05, 1e-3, 60, eps_d),
                _net("digits gelu CE deep", "digits", [256, 256, 256, 256, 64], "gelu", "cross_entropy", 0.05,
                     1e-3, 60, eps_d),
                _net("digits relu CE wide deep", "digits", [512, 512, 512, 256, 128], "relu", "cross_entropy", 0.02,
                     1e-3, 60, eps_d),
                _net("product relu MSE", "product", [256, 256], "relu", "mse", 0.02, 1e-2, 120, eps_t),
                _net("product tanh MSE", "product", [512, 256, 128], "tanh", "mse", 0.02, 1e-2, 120, eps_t),
                _net("relu-sum gelu MSE", "relu_sum", [512, 256], "gelu", "mse", 0.02, 1e-2, 120, eps_t),
                _net("relu-sum relu MSE deep", "relu_sum", [512, 256, 256, 128], "relu", "mse", 0.01, 1e-2, 120,
                     eps_t)]
        return {**common, "seeds": 6, "networks": nets, "digits_n": 1500,
                "teacher": {"dim": 30, "n": 2000, "relu_k": 3}, "n_measure": 600}
    raise InputError(f"{NAME}: unknown profile {profile!r}; use 'smoke', 'quick' or 'full'")


# --------------------------------------------------------------------------------------------------------------
# pure helpers (tested in tests/test_feature_learning.py)
# --------------------------------------------------------------------------------------------------------------
def bound_violation(cosine: float, lower: float, upper: float) -> float:
    """How far ``cosine`` lies outside ``[lower, upper]`` (0 inside).

    Examples
    --------
    >>> bound_violation(0.5, 0.4, 0.9), bound_violation(0.95, 0.4, 0.9) > 0.0499
    (0.0, True)
    """
    return max(0.0, lower - cosine, cosine - upper)


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b||_F / ||b||_F`` (0 when both are zero).

    Examples
    --------
    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    """
    nb = float(np.linalg.norm(b))
    d = float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
    return 0.0 if d == 0.0 else d / nb if nb > 0 else math.inf


def forward_jvp(net, feats, layer: int, V: np.ndarray) -> np.ndarray:
    """Jacobian-vector products ``(df/dh_{layer-1}) v`` by forward-mode propagation from layer ``layer`` upwards.

    Independent of the reverse-mode recursion of ``network_features`` (it only reuses its pre-activations):
    ``dz_j = dh_{j-1} (s_j W_j)^T``, ``dh_j = phi'(z_j) dz_j``, up to the readout.

    Parameters
    ----------
    net : MLP
    feats : list of LayerFeatures
        ``network_features(net, X)``.
    layer : int
        1-based layer whose input the directions perturb.
    V : numpy.ndarray, shape (n_{layer-1}, m)
        Directions.

    Returns
    -------
    numpy.ndarray, shape (N, o, m)
    """
    N = feats[0].inputs.shape[0]
    dh = np.broadcast_to(V.T[None], (N,) + V.T.shape)       # (N, m, n_in)
    for j in range(layer - 1, len(feats)):
        dz = dh @ feats[j].weight.T                            # (N, m, n_j)
        dh = dz if j == len(feats) - 1 else dz * net.activation.deriv(feats[j].preact)[:, None, :]
    return np.ascontiguousarray(dh.transpose(0, 2, 1))          # (N, o, m)


def layer_measures(W: np.ndarray, W0: np.ndarray | None, Jz: np.ndarray, Jh: np.ndarray,
                   readout: bool) -> dict[str, float]:
    """Every per-layer number of the experiment from the layer's weights and Jacobian stacks.

    Parameters
    ----------
    W, W0 : numpy.ndarray, shape (n_out, n_in)
        Effective weights now and at initialisation (``W0=None``, or equal to ``W``: the ``W - W0`` variant is NaN).
    Jz, Jh : numpy.ndarray
        Jacobians of the outputs w.r.t. the layer's pre-activations (N x o x n_out) and input (N x o x n_in).
    readout : bool
        The last layer: its pre-activation Jacobian is the identity on every sample, so the centred frame is zero
        and every centred number is NaN (undefined, not computed).

    Returns
    -------
    dict
        ``chain``/``chain_c`` (relative errors of ``AGOP = W^T G W``), ``viol``/``viol_c`` (largest distance of the
        measured cosine outside the proposition's interval), the variants of :data:`VARIANTS`, ``iso_full``,
        ``iso_comp`` (on range(W)) and their centred twins ``iso_full_c``, ``iso_comp_c``, ``rank``, ``cond``.
    """
    nan = math.nan
    G, M = agop(Jz), agop(Jh)
    rel = nfa_isotropy_relation(W, G)
    cos = nfa_correlation(W, M)
    out = {"chain": relative_error(chain_rule_agop(W, G), M), "viol": bound_violation(cos, rel.cosine_lower,
                                                                                         rel.cosine_upper),
           "iso_full": frame_isotropy(G), "iso_comp": rel.isotropy, "rank": rel.rank, "cond": rel.condition,
           "chain_c": nan, "viol_c": nan, "iso_full_c": nan, "iso_comp_c": nan}
    Mc = None
    if not readout:
        Gc, Mc = agop(Jz, centered=True), agop(Jh, centered=True)
        relc = nfa_isotropy_relation(W, Gc)
        out.update(chain_c=relative_error(chain_rule_agop(W, Gc), Mc), iso_full_c=frame_isotropy(Gc),
                   iso_comp_c=relc.isotropy,
                   viol_c=bound_violation(nfa_correlation(W, Mc), relc.cosine_lower, relc.cosine_upper))
    moved = W0 is not None and np.any(W != W0)
    for key, _, kw, centred in VARIANTS:
        if (centred and Mc is None) or ("W0" in kw and not moved):
            out[key] = nan
            continue
        args = {k: v for k, v in kw.items() if k != "W0"}
        if "W0" in kw:
            args["W0"] = W0
        out[key] = nfa_correlation(W, Mc if centred else M, **args)
    return out


@dataclass(frozen=True)
class FeatureMeasure:
    """Trainer callback: :func:`layer_measures` on every layer, the JVP check, and layer 1's ``W^T W`` and AGOP.

    ``X``: the measured inputs; ``W0``: the effective weights at initialisation (tuple, one per layer);
    ``directions``: per layer an ``n_in x m`` matrix of random directions for :func:`forward_jvp`.
    """

    X: np.ndarray
    W0: tuple
    directions: tuple
    name: str = "features"

    def __call__(self, net) -> dict[str, Any]:
        from sigprop.kernels.learning.training import network_features

        feats = network_features(net, self.X)
        layers, jvp = [], 0.0
        for i, f in enumerate(feats):
            V = self.directions[i]
            jvp = max(jvp, relative_error(forward_jvp(net, feats, f.layer, V), f.jac_input @ V))
            layers.append(layer_measures(f.weight, self.W0[i], f.jac_preact, f.jac_input, i == len(feats) - 1))
        first = feats[0]
        return {"layers": layers, "jvp": jvp, "wtw1": first.weight.T @ first.weight, "agop1": agop(first.jac_input)}


# --------------------------------------------------------------------------------------------------------------
# running the networks
# --------------------------------------------------------------------------------------------------------------
def _data(ctx: Context, s: dict[str, Any], kind: str, seed: int):
    """``(X, y, U)``: digits (U None) or a teacher task, reproducible from the run's seed."""
    from sigprop.kernels.learning.datasets import load_digits_data, product_task, relu_sum_task

    key = ctx.sub_seed(NAME, "data", kind, seed)
    if kind == "digits":
        X, y = load_digits_data(s["digits_n"], seed=key)
        return X, y, None
    t = s["teacher"]
    if kind == "product":
        return tuple(product_task(t["n"], dim=t["dim"], seed=key))
    if kind == "relu_sum":
        return tuple(relu_sum_task(t["n"], dim=t["dim"], k=t["relu_k"], seed=key))
    raise InputError(f"{NAME}: unknown data set {kind!r}")


def _train_one(ctx: Context, s: dict[str, Any], spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """Initialise, measure and train one network; returns its records and what the teacher analysis needs."""
    from sigprop.kernels.learning.training import init_network, train

    X, y, U = _data(ctx, s, spec["data"], seed)
    outputs = 10 if spec["data"] == "digits" else 1
    widths = [X.shape[1], *spec["hidden"], outputs]
    net = init_network(widths, activation=spec["activation"], bias=s["bias"], C_b=s["C_b"],
                       seed=ctx.sub_seed(NAME, "init", spec["name"], seed))
    rng = np.random.default_rng(ctx.sub_seed(NAME, "jvp", spec["name"], seed))
    dirs = tuple(rng.standard_normal((n, s["jvp_directions"])) for n in widths[:-1])
    measure = FeatureMeasure(X[: s["n_measure"]], tuple(net.weight(i).copy() for i in range(len(widths) - 1)), dirs)
    r = train(net, X, y, loss=spec["loss"], lr=spec["lr"], momentum=s["momentum"], batch_size=s["batch_size"],
              epochs=spec["epochs"], weight_decay=spec["weight_decay"], measures=[measure],
              measure_epochs=spec["measure_epochs"], seed=ctx.sub_seed(NAME, "sgd", spec["name"], seed))
    recs = [(rec.epoch, rec.value) for rec in r.records if rec.name == measure.name]
    return {"records": recs, "loss": r.loss_history, "acc": r.accuracy_history[-1], "diverged": r.diverged,
            "seconds": r.seconds, "measure_seconds": r.measure_seconds, "X": X, "y": y, "U": U}


def units(s: dict[str, Any]) -> list[list[Any]]:
    """The units of work: one trained network per ``[network name, seed index]``."""
    return [[spec["name"], k] for spec in s["networks"] for k in range(s["seeds"])]


def run_unit(ctx: Context, s: dict[str, Any], key) -> dict[str, Any]:
    """Train network ``key = [name, seed index]`` (:func:`_train_one`)."""
    spec = next(spec for spec in s["networks"] if spec["name"] == key[0])
    return _train_one(ctx, s, spec, int(key[1]))


def _fit_rfm(s: dict[str, Any], run: dict[str, Any]):
    from sigprop.kernels.learning.rfm import rfm

    R = s["rfm"]
    return rfm(run["X"], run["y"], bandwidth=R["bandwidth"], reg=R["reg"], iters=R["iters"], power=R["power"])


def _teacher_numbers(run: dict[str, Any], rf) -> dict[str, float]:
    """Subspace fractions (init and trained ``W_1^T W_1``, the trained network's input AGOP, RFM's M) and the
    correlations of RFM's M with the trained ``W_1^T W_1`` and input AGOP."""
    U = run["U"]
    init, final = run["records"][0][1], run["records"][-1][1]
    return {"w1_init": subspace_fraction(init["wtw1"], U), "w1": subspace_fraction(final["wtw1"], U),
            "agop": subspace_fraction(final["agop1"], U), "rfm": subspace_fraction(rf.M, U),
            "rfm_w1_cos": matrix_correlation(final["wtw1"], rf.M),
            "rfm_w1_pearson": matrix_correlation(final["wtw1"], rf.M, measure="pearson"),
            "rfm_agop_cos": matrix_correlation(final["agop1"], rf.M)}


# --------------------------------------------------------------------------------------------------------------
# tabulation
# --------------------------------------------------------------------------------------------------------------
def _series(runs: list[dict[str, Any]], key: str, layer: int) -> tuple[list[int], np.ndarray]:
    """Epochs and an (epochs x seeds) array of one per-layer number."""
    epochs = [e for e, _ in runs[0]["records"]]
    vals = np.array([[rec[1]["layers"][layer][key] for rec in r["records"]] for r in runs], dtype=float).T
    return epochs, vals


def _fmt(m: float, lo: float, hi: float) -> str:
    if not math.isfinite(m):
        return "n/a"
    return f"{m:.3f}" if not math.isfinite(lo) else f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def _layer_table(results: dict[str, list[dict[str, Any]]], specs: list[dict[str, Any]]) -> str:
    """Per (network, hidden layer): isotropy at init and trained, and every NFA variant trained (mean [95% CI])."""
    cols = [("iso_full", 0, "isotropy of G, init"), ("iso_full", -1, "isotropy of G, trained"),
            ("iso_comp", -1, "isotropy on range(W), trained")]
    cols += [(k, -1, f"NFA {lab}, trained") for k, lab, *_ in VARIANTS]
    head = ["network", "layer (n_in -> n_out)"] + [c[2] for c in cols]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        runs = results[spec["name"]]
        widths = [runs[0]["X"].shape[1], *spec["hidden"]]
        for li in range(len(spec["hidden"])):
            cells = [spec["name"], f"{li + 1} ({widths[li]} -> {widths[li + 1]})"]
            for key, when, _ in cols:
                cells.append(_fmt(*mean_interval(_series(runs, key, li)[1][when])))
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _teacher_table(teach: dict[str, list[dict[str, float]]], specs: list[dict[str, Any]], s: dict[str, Any]) -> str:
    """Per teacher network: k/d and every subspace fraction and correlation (mean [95% CI] across seeds)."""
    cols = [("w1_init", "W1^T W1 at init"), ("w1", "W1^T W1 trained"), ("agop", "input AGOP trained"),
            ("rfm", "RFM M"), ("rfm_w1_cos", "cos(RFM M, W1^T W1)"), ("rfm_w1_pearson", "Pearson(RFM M, W1^T W1)"),
            ("rfm_agop_cos", "cos(RFM M, input AGOP)")]
    head = ["network", "k/d (chance)"] + [c[1] for c in cols]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        nums = teach[spec["name"]]
        cells = [spec["name"], f"{_chance(s, spec['data']):.3f}"]
        cells += [_fmt(*mean_interval([n[key] for n in nums])) for key, _ in cols]
        rows.append("| " + " | ".join(cells) + " |")
    return ("Fraction of the trace in the teacher subspace span(U), and correlations with RFM's M:\n\n"
            + "\n".join(rows))


def _chance(s: dict[str, Any], data: str) -> float:
    """``k / d``, the fraction of an isotropic matrix's trace in span(U)."""
    k = 2 if data == "product" else s["teacher"]["relu_k"]
    return k / s["teacher"]["dim"]


def _training_table(results: dict[str, list[dict[str, Any]]], specs: list[dict[str, Any]]) -> str:
    head = "| network | widths | activation | loss | lr | weight decay | epochs | final train loss (per seed) | " \
           "final train acc. (digits) | train s | measure s |"
    rows = [head, "|" + "---|" * 11]
    for spec in specs:
        runs = results[spec["name"]]
        widths = [runs[0]["X"].shape[1], *spec["hidden"], 10 if spec["data"] == "digits" else 1]
        acc = ", ".join(f"{r['acc']:.2f}" for r in runs) if spec["data"] == "digits" else "-"
        losses = ", ".join(f"{r['loss'][-1]:.3g}" for r in runs)
        rows.append(f"| {spec['name']} | {widths} | {spec['activation']} | {spec['loss']} | {spec['lr']:g} | "
                    f"{spec['weight_decay']:g} | {spec['epochs']} | "
                    f"{losses} | {acc} | "
                    f"{sum(r['seconds'] for r in runs):.1f} | {sum(r['measure_seconds'] for r in runs):.1f} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------------------------
def _max_over(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> tuple[float, int]:
    """Largest value of the per-layer ``keys`` over seeds, measured epochs and layers (NaNs skipped), and how many
    (seed, epoch, layer) triples were checked."""
    vals = [lay[k] for r in runs for _, rec in r["records"] for lay in rec["layers"] for k in keys]
    vals = [v for v in vals if math.isfinite(v)]
    n = sum(len(rec["layers"]) for r in runs for _, rec in r["records"])
    return (max(vals) if vals else math.nan), n


def _exact_checks(spec: dict[str, Any], runs: list[dict[str, Any]]) -> list[Check]:
    """The three judged identities of one network: chain rule, reverse vs forward Jacobians, the proposition."""
    name = spec["name"]
    chain, n = _max_over(runs, ("chain", "chain_c"))
    viol, _ = _max_over(runs, ("viol", "viol_c"))
    jvp = max(r_rec[1]["jvp"] for r in runs for r_rec in r["records"])
    where = f"every layer (incl. the readout), {len(runs)} seeds, every measured epoch: {n} layer states"
    return [
        Check(NAME, f"{name}: chain rule AGOP_i = W_i^T G_(i+1) W_i", 0.0, chain, 0.0,
              f"max relative Frobenius error (uncentred and centred gradients) <= {CHAIN_TOL:g}; {where}",
              kind="exact", tol=CHAIN_TOL, details={"layer_states": n}),
        Check(NAME, f"{name}: reverse-mode Jacobians vs forward-mode JVP", 0.0, jvp, 0.0,
              f"max relative error of (df/dh_(i-1)) v, random v, <= {JVP_TOL:g}; {where}",
              kind="exact", tol=JVP_TOL, details={"layer_states": n}),
        Check(NAME, f"{name}: proposition, NFA cosine inside the isotropy interval", 0.0, viol, 0.0,
              f"largest distance of the measured cosine outside [cos_lower, cos_upper] of nfa_isotropy_relation "
              f"(frames G and G_c) <= {BOUND_TOL:g}; {where}", kind="exact", tol=BOUND_TOL,
              details={"layer_states": n})]


def _per_seed_average(results, specs, key: str, when: int) -> list[float]:
    """One replicate per seed: the mean of a per-layer number over every hidden layer of every network."""
    seeds = len(results[specs[0]["name"]])
    out = []
    for k in range(seeds):
        vals = [results[sp["name"]][k]["records"][when][1]["layers"][li][key]
                for sp in specs for li in range(len(sp["hidden"]))]
        out.append(float(np.nanmean(vals)) if np.any(np.isfinite(vals)) else math.nan)
    return out


def _info(name: str, values: list[float], what: str) -> Check:
    m, lo, hi = mean_interval(values)
    se = float(np.nanstd(values, ddof=1) / math.sqrt(np.isfinite(values).sum())) if np.isfinite(values).sum() > 1 \
        else math.nan
    return Check(NAME, name, math.nan, m, se, f"info: {what}; {int(100 * LEVEL)}% t-interval across seeds "
                 f"[{lo:.4f}, {hi:.4f}]", kind="info", details={"per_seed": list(values), "ci": [lo, hi]})


def _summary_checks(results, specs) -> list[Check]:
    checks = []
    what = "mean over all hidden layers of all networks, one replicate per seed"
    for when, stage in ((0, "init"), (-1, "trained")):
        for key, label, *_ in VARIANTS:
            if key == "w_minus_w0" and when == 0:
                continue  # W - W0 = 0 at initialisation: undefined
            checks.append(_info(f"NFA correlation, {label}, {stage}", _per_seed_average(results, specs, key, when),
                                what))
        for key, label in (("iso_full", "full isotropy of G"), ("iso_comp", "isotropy of G on range(W)"),
                           ("iso_full_c", "full isotropy of centred G_c"),
                           ("iso_comp_c", "isotropy of G_c on range(W)")):
            checks.append(_info(f"{label}, {stage}", _per_seed_average(results, specs, key, when), what))
    return checks


def _teacher_checks(s, teach, specs) -> list[Check]:
    """Info checks of every teacher number, and the judged expectations (one-sided LCB >= c k/d)."""
    checks, rfm_done = [], set()
    for spec in specs:
        nums, chance = teach[spec["name"]], _chance(s, spec["data"])
        for key, label in (("w1_init", "fraction of tr(W1^T W1) in span(U), init"),
                           ("agop", "fraction of tr(input AGOP) in span(U), trained"),
                           ("rfm_w1_cos", "cosine(RFM M, trained W1^T W1)"),
                           ("rfm_w1_pearson", "Pearson(RFM M, trained W1^T W1)")):
            checks.append(_info(f"{spec['name']}: {label}", [n[key] for n in nums], f"chance k/d = {chance:.3f}"))
        targets = [("w1", "fraction of tr(W1^T W1) in span(U), trained", s["expect_w1"], spec["name"])]
        if spec["data"] not in rfm_done:
            rfm_done.add(spec["data"])
            targets.append(("rfm", "fraction of tr(M) in span(U), RFM", s["expect_rfm"], f"{spec['data']} task"))
        for key, label, c, who in targets:
            vals = [n[key] for n in nums]
            lcb = lower_confidence_bound(vals)
            short = max(0.0, c * chance - lcb) if math.isfinite(lcb) else math.nan
            checks.append(Check(
                NAME, f"{who}: {label} >= {c:g} k/d", 0.0, short, 0.0,
                f"expectation: one-sided {int(100 * LEVEL)}% t lower bound across {len(vals)} seeds "
                f"({lcb:.3f}; mean {_fmt(*mean_interval(vals))}) >= {c:g} x chance k/d = {c * chance:.3f}; "
                "estimate = shortfall", kind="exact", tol=0.0,
                details={"per_seed": vals, "lcb": lcb, "chance": chance, "multiple": c,
                         "mean": float(np.mean(vals))}))
    return checks


def _findings(results, specs) -> list[Check]:
    """The headline findings: the judged expectations (basis 'checks') and the trained NFA correlation (reported)."""
    checks = [FINDING.as_check(NAME, "finding: teacher subspace and the proposition (judged checks)")]
    vals = _per_seed_average(results, specs, "later", -1)
    m, lo, hi = mean_interval(vals)
    nfa = Finding(claim="trained networks satisfy the NFA: W^T W correlates with AGOP^(1/2) (Pearson)",
                  source="later NFA work (docs/derivations.md, section 6)", basis="informational",
                  measured="trained Pearson(W^T W, AGOP^(1/2)), mean over hidden layers", value=m, interval=(lo, hi),
                  paper_value=0.92, paper_text="> 0.92")
    checks.append(nfa.as_check(NAME, "finding: NFA correlation of trained networks (reported)"))
    return checks


# --------------------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------------------
def _fig_nfa_vs_isotropy(ctx: Context, results, specs) -> tuple[str, str]:
    """NFA correlation against the isotropy of the frame on range(W): one point per (network, hidden layer, variant),
    mean over seeds; init and trained side by side."""
    from ..plotting import COLORS, save, subplots

    fig, axes = subplots(1, 2, panel=(4.6, 4.0), sharey=True)
    markers = ("o", "s", "^", "D", "+", "x")
    for ax, (when, stage) in zip(axes[0], ((0, "initialisation"), (-1, "trained"))):
        for vi, (key, label, _, centred) in enumerate(VARIANTS):
            xs, ys = [], []
            for spec in specs:
                for li in range(len(spec["hidden"])):
                    y = _series(results[spec["name"]], key, li)[1][when]
                    if np.any(np.isfinite(y)):
                        iso = "iso_comp_c" if centred else "iso_comp"
                        xs.append(np.nanmean(_series(results[spec["name"]], iso, li)[1][when]))
                        ys.append(np.nanmean(y))
            filled = markers[vi] not in ("+", "x")
            ax.scatter(xs, ys, marker=markers[vi], s=34 if vi == 0 else 24, color=COLORS[vi % len(COLORS)],
                       alpha=0.9, linewidths=1.2, edgecolors="none" if filled else None,
                       label=label if when == -1 or key != "w_minus_w0" else None, zorder=2 if filled else 4)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="y = x" if when == 0 else None)
        ax.set_xlabel("isotropy of the frame on range(W)\n(of G; of the centred G_c for the centred variant)")
        ax.set_title(stage, fontsize=10)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("NFA correlation corr(W^T W, AGOP^alpha)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h), labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("NFA correlation vs frame isotropy: one point per (network, hidden layer) and variant, mean over "
                 "seeds", fontsize=10)
    path = save(fig, ctx.figure_path(NAME, "nfa-vs-isotropy"))
    return ("NFA correlation against the isotropy of the pre-activation gradient frame on range(W), one point per "
            "(network, hidden layer) and variant (colour and marker), mean over seeds; left at initialisation (W - W0 "
            "is undefined there), right after training. The baseline (blue circles) lies in the proposition's "
            "interval around the diagonal and equals the isotropy when W's singular values are equal; Pearson "
            "(+) sits on the cosine", path)


def _fig_training(ctx: Context, results, specs) -> tuple[str, str]:
    """Per network: the baseline NFA cosine (solid) and the isotropy on range(W) (dashed) of each hidden layer
    against the epoch, mean and 95% interval across seeds."""
    from ..plotting import COLORS, save, subplots

    ncol = min(3, len(specs))
    nrow = math.ceil(len(specs) / ncol)
    fig, axes = subplots(nrow, ncol, panel=(3.6, 2.9))
    for ax, spec in zip(axes.ravel(), specs):
        runs = results[spec["name"]]
        for li in range(len(spec["hidden"])):
            col = COLORS[li % len(COLORS)]
            for key, ls in (("baseline", "-"), ("iso_comp", "--")):
                ep, v = _series(runs, key, li)
                stats = np.array([mean_interval(row) for row in v])
                ax.plot(ep, stats[:, 0], ls, color=col, marker="o", ms=3, lw=1.2)
                if np.all(np.isfinite(stats[:, 1])):
                    ax.fill_between(ep, stats[:, 1], stats[:, 2], color=col, alpha=0.15, lw=0)
        ax.set_title(spec["name"], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("NFA cosine / isotropy")
    for ax in axes.ravel()[len(specs):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    depth = max(len(sp["hidden"]) for sp in specs)
    handles = [Line2D([], [], color="k", ls="-", label="NFA cosine (W, alpha 1, cosine)"),
               Line2D([], [], color="k", ls="--", label="isotropy of G on range(W)")]
    handles += [Line2D([], [], color=COLORS[li % len(COLORS)], lw=3, label=f"hidden layer {li + 1}")
                for li in range(depth)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize=8)
    fig.suptitle("NFA cosine (W, alpha 1, cosine) and frame isotropy during training (bands: 95% CI across seeds)",
                 fontsize=10)
    path = save(fig, ctx.figure_path(NAME, "training"))
    return ("The baseline NFA cosine (solid) and the isotropy of the pre-activation frame on range(W) (dashed) of "
            "every hidden layer against the training epoch (0 = initialisation), mean over seeds with 95% bands", path)


def _teacher_basis(U: np.ndarray) -> np.ndarray:
    """An orthonormal basis of R^d whose first k vectors span U (QR of [U, I])."""
    Q, _ = np.linalg.qr(np.hstack([U, np.eye(U.shape[0])]))
    return Q[:, : U.shape[0]]


def _fig_heatmaps(ctx: Context, spec, run, rf, chance: float) -> tuple[str, str]:
    """W_1^T W_1 (init and trained), the input AGOP and RFM's M on a teacher task, in the basis (U, U_perp)."""
    from matplotlib.patches import Rectangle

    from ..plotting import save, subplots

    U = run["U"]
    B = _teacher_basis(U)
    k = U.shape[1]
    init, final = run["records"][0][1], run["records"][-1][1]
    mats = [("W1^T W1 at initialisation", init["wtw1"]), ("W1^T W1 trained", final["wtw1"]),
            ("input AGOP of the trained net", final["agop1"]), ("RFM feature matrix M", rf.M)]
    fig, axes = subplots(1, 4, panel=(3.1, 3.6))
    for ax, (title, A) in zip(axes[0], mats):
        R = B.T @ A @ B
        R = R / np.max(np.abs(R))
        im = ax.imshow(R, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.add_patch(Rectangle((-0.5, -0.5), k, k, fill=False, ec="k", lw=1.5))
        ax.set_title(f"{title}\n{subspace_fraction(A, U):.2f} of trace in span(U)", fontsize=8)
        ax.set_xlabel(f"basis vector (1-{k}: U, then U_perp)", fontsize=8)
        ax.set_xticks([0, U.shape[0] - 1], ["1", str(U.shape[0])])
        ax.set_yticks([0, U.shape[0] - 1], ["1", str(U.shape[0])])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="entry / max |entry|")
    fig.suptitle(f"{spec['name']}, one seed: feature matrices in the basis (U, U_perp), teacher block framed; "
                 f"chance fraction k/d = {chance:.2f}", fontsize=10)
    path = save(fig, ctx.figure_path(NAME, "teacher-heatmaps"))
    return (f"{spec['name']}: W_1^T W_1 at initialisation and after training, the trained network's input AGOP and "
            "RFM's M, each rotated into the basis (U, U_perp) so that the teacher subspace is the top-left k x k block "
            "(framed), scaled by its largest entry", path)


# --------------------------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------------------------
def run(ctx: Context, s: dict[str, Any]) -> ExperimentResult:
    """Train every network of the profile for every seed, fit RFM on the teacher tasks, judge and report."""
    import time

    from threadpoolctl import threadpool_limits

    t0, c0 = time.perf_counter(), time.process_time()
    specs = s["networks"]
    keys = units(s)
    results: dict[str, list[dict[str, Any]]] = {spec["name"]: [] for spec in specs}
    for (name, _), r in zip(keys, ctx.run_units(run_unit, keys, s, desc=f"{NAME}: train")):
        results[name].append(r)
    teacher = [spec for spec in specs if spec["data"] != "digits"]
    rfms: dict[tuple[str, int], Any] = {}
    teach: dict[str, list[dict[str, float]]] = {}
    # one BLAS thread, as the trainer: the same sums (so the same numbers) in any process, with --jobs or without
    with threadpool_limits(1, user_api="blas"):
        for spec in teacher:
            for k, r in enumerate(results[spec["name"]]):
                if (spec["data"], k) not in rfms:
                    rfms[(spec["data"], k)] = _fit_rfm(s, r)
                teach.setdefault(spec["name"], []).append(_teacher_numbers(r, rfms[(spec["data"], k)]))

    checks: list[Check] = _findings(results, specs)
    for spec in specs:
        checks += _exact_checks(spec, results[spec["name"]])
    checks += _teacher_checks(s, teach, teacher)
    checks += _summary_checks(results, specs)

    figures = [_fig_nfa_vs_isotropy(ctx, results, specs), _fig_training(ctx, results, specs)]
    if teacher:
        spec = teacher[0]
        figures.append(_fig_heatmaps(ctx, spec, results[spec["name"]][0], rfms[(spec["data"], 0)],
                                     _chance(s, spec["data"])))
    tables = [_training_table(results, specs), _layer_table(results, specs)]
    if teacher:
        tables.append(_teacher_table(teach, teacher, s))
    diverged = sum(r["diverged"] for runs in results.values() for r in runs)
    epochs = sorted({e for sp in specs for e in sp["measure_epochs"]})
    notes = (f"{len(specs)} networks x {s['seeds']} seeds ({diverged} diverged), biases on (C_b = {s['C_b']:g}), "
             f"standard parametrisation, critical C_W (Kaiming for relu, 1 otherwise), SGD momentum {s['momentum']}, "
             f"batch {s['batch_size']}; digits: {s['digits_n']} samples (10 classes); teacher tasks: d = "
             f"{s['teacher']['dim']}, {s['teacher']['n']} samples, product (k = 2) and relu-sum (k = "
             f"{s['teacher']['relu_k']}), trained with weight decay (without it the random part of W_1 dominates "
             "W_1^T W_1 and its fraction in span(U) stays near k/d). Measures (trainer callbacks) on the first "
             f"{s['n_measure']} training samples at initialisation, after epochs {epochs} "
             "and at the end. RFM: Laplace kernel, bandwidth "
             f"{s['rfm']['bandwidth']:g}, reg {s['rfm']['reg']:g}, {s['rfm']['iters']} iterations, power "
             f"{s['rfm']['power']:g}, on the same training set as the network. NFA numbers are for the hidden "
             "layers 1..L; the readout layer (checked, not averaged) has G = I_o exactly, so its uncentred NFA cosine "
             "is 1 by construction and its centred frame is zero. Intervals: 95% Student t across seeds (one "
             f"replicate per seed). Wall time {time.perf_counter() - t0:.1f} s, CPU time "
             f"{time.process_time() - c0:.1f} s.")
    return ExperimentResult(checks=checks, figures=figures, tables=tables, notes=notes)


EXPERIMENT = Experiment(
    name=NAME,
    title="Feature learning: the Deep Neural Feature Ansatz, frame isotropy and RFM",
    description=("MLPs of depth 2-5 and widths 64-512 (an expanding first layer, a compressing layer; relu, tanh, "
                 "gelu; MSE and cross-entropy) on digits and on two multi-index teacher tasks, measured at "
                 "initialisation and during training by trainer callbacks. Judged (exact, rounding budgets): the "
                 "chain rule AGOP_i = W_i^T G W_i (rel. 1e-10) with Jacobians checked against forward mode, and the "
                 "proposition of docs/feature_learning.md (the NFA cosine lies in the interval the frame isotropy on "
                 "range(W) implies) on every layer. Judged expectations on the teacher tasks: the one-sided 95% "
                 "lower bound across seeds of the fraction of tr(W_1^T W_1) (trained) in span(U) >= 2 k/d and of "
                 "tr(M) of RFM >= 5 k/d (estimate: the shortfall, tolerance 0). Reported with 95% t-intervals "
                 "across seeds: the NFA correlation in six variants (W - W0, alpha 1/2, centred gradients, Pearson), "
                 "full and compressed isotropy, and their course during training; the correlation of RFM's M with "
                 "the trained W_1^T W_1."),
    settings=settings,
    run=run,
    order=70,
    units=units,
    run_unit=run_unit,
)
