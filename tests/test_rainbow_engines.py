"""The compiled rainbow engines: ``simulate(..., covariance=RainbowCovariance(...), method='explicit'|'gram')``.

* explicit (compiled) == NumPy reference to rounding: max relative difference of every Gram <= 1e-12 (measured
  ~6e-16), for relu/tanh/gelu and a custom activation, C_b = 0 and > 0, m = 0 and m > 0 anchors, a scalar and a full
  first-layer C_1, a purely anchored layer (a = 0) and an unanchored one (b = 0); the kept activations likewise;
* Gram chain with a white covariance (C_1 = c, a_l = c, b = 0) == the Gram engine of sigprop.kernels.gram_cpu, bit
  for bit (same stream, same keys, same arithmetic);
* Gram chain vs explicit: the same distribution at small widths (24, 16, 12), where finite-width effects are large:
  the mean over 600 networks of every Gram entry and of its square agree, |z| < Z_BOUND = 4.5 (z with the two
  standard errors combined; 360 comparisons, a Gaussian family at level 0.99 needs ~4.2);
* both against the recursion (sigprop.theory.rainbow.rainbow_kernels): extrapolated in 1/width from widths 64..512
  (|z| < Z_BOUND, 90 entries per engine and activation), and the Gram chain at width 16384 directly (bias ~1/n
  << its SE);
* numba's CUDA simulator == CPU bit for bit at tiny sizes (subprocess with NUMBA_ENABLE_CUDASIM=1);
* results do not depend on the numba thread count (1 and 2 threads, bit for bit);
* bad engine arguments are InputErrors before any work.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from sigprop.kernels import RainbowCovariance, simulate
from sigprop.kernels.gram_cpu import run_gram_cpu
from sigprop.theory.activations import activation, custom_activation
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import rainbow_kernels
from sigprop.validation.stats import wls_extrapolate

Z_BOUND = 4.5
RTOL = 1e-12  # explicit compiled vs NumPy: summation order only


def _rainbow(act, X, C1, a, b=None, anchors=None, *, widths, method="numpy", **kw):
    """``simulate`` with the rainbow covariance ``(C1, a, b, anchors)``, the NumPy engine unless ``method`` says."""
    return simulate(X, depth=len(widths), width=widths, activation=act, method=method,
                    covariance=RainbowCovariance(C1, a, b, anchors), **kw)


def _problem(P: int = 3, m: int = 2, d: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, d))
    Z = rng.standard_normal((m, d))
    A = rng.standard_normal((d, d))
    C1 = A @ A.T / d + 0.3 * np.eye(d)
    return X, Z, C1 * d / np.trace(C1)


X, ANCHORS, C_FULL = _problem()


def _rel(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.max(np.abs(u - v)) / np.max(np.abs(v)))


# --- explicit compiled == NumPy -----------------------------------------------------------------------------

EXPLICIT_CASES = [  # (activation, C1, a, b, anchors, C_b, widths)
    ("relu", C_FULL, [1.0, 1.5], [[0.5, 1.0], [2.0, 0.1]], ANCHORS, 0.3, (37, 20, 129)),
    ("tanh", C_FULL, [1.0, 0.0], [[0.5, 1.0], [2.0, 0.1]], ANCHORS, 0.0, (16, 300, 9)),  # layer 3 purely anchored
    ("gelu", 1.3, [1.2, 0.8], [[0.0, 0.0], [1.0, 3.0]], ANCHORS, 0.1, (64, 33, 17)),  # layer 2 unanchored
    ("tanh", 2.0, [1.5], None, None, 0.2, (130, 7)),  # m = 0
    ("relu", C_FULL, [], None, ANCHORS, 0.0, (50,)),  # one layer
]


@pytest.mark.parametrize("case", range(len(EXPLICIT_CASES)))
def test_explicit_engine_equals_numpy_reference_to_rounding(case):
    act, C1, a, b, Z, C_b, widths = EXPLICIT_CASES[case]
    kw = dict(widths=widths, n_networks=3, seed=4, first_network=2, C_b=C_b, keep_activations=True)
    ref = _rainbow(act, X, C1, a, b, Z, **kw)
    fast = _rainbow(act, X, C1, a, b, Z, method="explicit", **kw)
    assert _rel(fast.preact_gram, ref.preact_gram) <= RTOL
    assert _rel(fast.postact_gram, ref.postact_gram) <= RTOL
    for h_fast, h_ref in zip(fast.activations, ref.activations):
        assert h_fast.shape == h_ref.shape
        assert _rel(h_fast, h_ref) <= RTOL
    assert fast.widths == ref.widths and fast.n_inputs == ref.n_inputs


def test_explicit_engine_with_a_custom_activation_equals_numpy():
    soft = softsign()
    kw = dict(widths=(40, 24), n_networks=2, seed=1, C_b=0.1)
    ref = _rainbow(soft, X, C_FULL, [1.0], [[1.0, 0.5]], ANCHORS, **kw)
    fast = _rainbow(soft, X, C_FULL, [1.0], [[1.0, 0.5]], ANCHORS, method="explicit", **kw)
    assert _rel(fast.postact_gram, ref.postact_gram) <= RTOL


# --- Gram chain: exact identities ---------------------------------------------------------------------------

@pytest.mark.parametrize("act,C_b,with_anchors", [("tanh", 0.1, False), ("relu", 0.0, True)])
def test_white_gram_chain_is_the_gram_engine_bit_for_bit(act, C_b, with_anchors):
    """C_1 = c, a_l = c, b = 0: the rainbow Gram chain is the ordinary one (docs/derivations.md, sec. 4) on the N
    points, and it draws the same numbers (stream 4, same keys), so the two agree exactly."""
    c, widths = 1.7, (19, 8, 33)
    Z = ANCHORS if with_anchors else None
    m = ANCHORS.shape[0] if with_anchors else 0
    sim = _rainbow(act, X, c, [c, c], np.zeros((2, m)), Z, widths=widths, n_networks=3, seed=9, first_network=4,
                           C_b=C_b, method="gram")
    Y = np.concatenate([X, ANCHORS]) if with_anchors else X
    ref = run_gram_cpu(Y, widths, activation(act), c, C_b, 3, 9, first_network=4)
    assert np.array_equal(sim.preact_gram, ref["preact_gram"])
    assert np.array_equal(sim.postact_gram, ref["postact_gram"])


def test_gram_chain_grams_are_symmetric_psd_and_deterministic():
    kw = dict(widths=(3, 50), n_networks=4, seed=2, C_b=0.0, method="gram")  # width 3 < N = 5: singular Sigma_2
    s1 = _rainbow("relu", X, C_FULL, [0.5], [[1.0, 2.0]], ANCHORS, **kw)
    s2 = _rainbow("relu", X, C_FULL, [0.5], [[1.0, 2.0]], ANCHORS, **kw)
    assert np.array_equal(s1.postact_gram, s2.postact_gram)
    G = s1.preact_gram
    assert np.array_equal(G, np.swapaxes(G, -1, -2))
    assert np.linalg.matrix_rank(G[0, 0]) <= 3  # a width-3 layer has a rank <= 3 Gram
    assert np.min(np.linalg.eigvalsh(G)) > -1e-12 * np.max(G)


# --- Gram chain vs explicit: same distribution --------------------------------------------------------------

DIST_WIDTHS = (24, 16, 12)
DIST_NETWORKS = 600
DIST_CONFIG = dict(C1=C_FULL, a=[1.0, 0.8], b=[[1.5, 0.5], [0.7, 1.2]], C_b=0.1)


def _moments(sim) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard errors over networks of (pre, post) Gram entries and of their squares."""
    g = np.stack([sim.preact_gram, sim.postact_gram], axis=1)  # (S, 2, L, N, N)
    g = np.stack([g, g ** 2], axis=1)  # (S, 2 moments, 2 kinds, L, N, N)
    return g.mean(axis=0), g.std(axis=0, ddof=1) / math.sqrt(g.shape[0])


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_gram_chain_and_explicit_engine_have_the_same_distribution(act):
    c = DIST_CONFIG
    kw = dict(widths=DIST_WIDTHS, n_networks=DIST_NETWORKS, seed=21, C_b=c["C_b"])
    m_e, se_e = _moments(_rainbow(act, X, c["C1"], c["a"], c["b"], ANCHORS, method="explicit", **kw))
    m_g, se_g = _moments(_rainbow(act, X, c["C1"], c["a"], c["b"], ANCHORS, method="gram", **kw))
    iu = np.triu_indices(X.shape[0] + ANCHORS.shape[0])
    z = ((m_g - m_e) / np.sqrt(se_g ** 2 + se_e ** 2))[..., iu[0], iu[1]]
    assert np.max(np.abs(z)) < Z_BOUND, f"max |z| = {np.max(np.abs(z)):.2f}"
    assert np.sqrt(np.mean(z ** 2)) < 1.5  # no systematic inflation either
    # the finite-width fluctuations compared here are large: the last post Gram's diagonal varies by > 10%
    sd = se_e[0, 1, -1] * math.sqrt(DIST_NETWORKS)
    assert np.min(np.diag(sd) / np.diag(m_e[0, 1, -1])) > 0.1


# --- both engines against the recursion ---------------------------------------------------------------------

THEORY_WIDTHS = (64, 128, 256, 512)
THEORY_NETWORKS = {"explicit": (160, 80, 48, 32), "gram": (400, 400, 400, 400)}


@pytest.mark.parametrize("method", ["explicit", "gram"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_engines_match_the_recursion_extrapolated_in_one_over_width(method, act):
    c = DIST_CONFIG
    rk = rainbow_kernels(act, X, c["C1"], c["a"], c["b"], ANCHORS, C_b=c["C_b"])
    theory = np.stack([rk.preact, rk.postact])
    means, ses = [], []
    for w, (n, S) in enumerate(zip(THEORY_WIDTHS, THEORY_NETWORKS[method])):
        sim = _rainbow(act, X, c["C1"], c["a"], c["b"], ANCHORS, widths=(n, n, n), n_networks=S, seed=33,
                               first_network=1000 * w, C_b=c["C_b"], method=method)
        g = np.stack([sim.preact_gram, sim.postact_gram], axis=1)
        means.append(g.mean(axis=0))
        ses.append(g.std(axis=0, ddof=1) / math.sqrt(S))
    means, ses = np.array(means), np.array(ses)
    z = []
    for idx in np.ndindex(theory.shape):
        if idx[-2] <= idx[-1]:
            fit = wls_extrapolate(THEORY_WIDTHS, means[(slice(None),) + idx], ses[(slice(None),) + idx], order=1)
            z.append((fit.intercept - theory[idx]) / fit.intercept_se)
    z = np.array(z)
    assert np.max(np.abs(z)) < Z_BOUND, f"max |z| = {np.max(np.abs(z)):.2f}"
    assert np.sqrt(np.mean(z ** 2)) < 2.0


@pytest.mark.parametrize("act", ["relu", "gelu"])
def test_gram_chain_at_a_large_width_matches_the_recursion(act):
    """Width 16384, cost independent of the previous width: the 1/n bias (~1e-4) is far below the SE (~2e-3)."""
    c = DIST_CONFIG
    n, S = 16384, 40
    sim = _rainbow(act, X, c["C1"], c["a"], c["b"], ANCHORS, widths=(n, n, n), n_networks=S, seed=8,
                           C_b=c["C_b"], method="gram")
    rk = rainbow_kernels(act, X, c["C1"], c["a"], c["b"], ANCHORS, C_b=c["C_b"])
    for sims, theory in ((sim.preact_gram, rk.preact), (sim.postact_gram, rk.postact)):
        z = (sims.mean(axis=0) - theory) / (sims.std(axis=0, ddof=1) / math.sqrt(S))
        assert np.max(np.abs(z)) < Z_BOUND, f"max |z| = {np.max(np.abs(z)):.2f}"


# --- thread count -------------------------------------------------------------------------------------------

@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has fewer than 2 threads here")
@pytest.mark.parametrize("method", ["explicit", "gram"])
def test_results_do_not_depend_on_the_thread_count(method):
    kw = dict(widths=(300, 260), n_networks=3, seed=5, C_b=0.1, method=method)
    runs = []
    old = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            runs.append(_rainbow("tanh", X, C_FULL, [1.0], [[1.0, 0.5]], ANCHORS, **kw))
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(runs[0].preact_gram, runs[1].preact_gram)
    assert np.array_equal(runs[0].postact_gram, runs[1].postact_gram)


# --- CUDA (numba's simulator) == CPU ------------------------------------------------------------------------

CUDA_CASES = [  # tiny: the simulator runs every thread in Python
    dict(act="relu", C1="full", a=[1.0, 1.5], b=[[0.5, 1.0], [0.0, 0.0]], anchors=True, C_b=0.2, widths=[9, 17, 6],
         S=2, network0=1),
    dict(act="tanh", C1=2.0, a=[1.5], b=None, anchors=False, C_b=0.0, widths=[8, 5], S=2, network0=0),
    dict(act="gelu", C1="full", a=[0.0, 1.0], b=[[2.0, 1.0], [0.5, 0.0]], anchors=True, C_b=0.1, widths=[7, 10, 9],
         S=2, network0=3),
    dict(act="softsign", C1=1.0, a=[1.0], b=[[1.0, 0.5]], anchors=True, C_b=0.0, widths=[6, 9], S=1, network0=0),
]


def softsign():
    """A custom activation with a numba scalar (its own compiled kernels)."""
    return custom_activation(lambda x: x / (1 + np.abs(x)), name="softsign", scalar=lambda x: x / (1 + abs(x)))

CUDA_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from sigprop.kernels import RainbowCovariance, simulate
    from sigprop.theory.activations import custom_activation
    cases, full, X, Z = json.loads(sys.argv[1])
    out = {}
    for k, c in enumerate(cases):
        C1 = np.array(full) if c["C1"] == "full" else c["C1"]
        act = c["act"]
        if act == "softsign":
            act = custom_activation(lambda x: x / (1 + np.abs(x)), name="softsign", scalar=lambda x: x / (1 + abs(x)))
        for method in ("explicit", "gram"):
            cov = RainbowCovariance(C1, c["a"], c["b"], np.array(Z) if c["anchors"] else None)
            r = simulate(np.array(X), depth=len(c["widths"]), width=c["widths"], activation=act, covariance=cov,
                         n_networks=c["S"], seed=6, first_network=c["network0"], C_b=c["C_b"], method=method,
                         backend="cuda", keep_activations=(method == "explicit"))
            out[f"{k}/{method}/pre"] = r.preact_gram
            out[f"{k}/{method}/post"] = r.postact_gram
            if r.activations is not None:
                out[f"{k}/{method}/h_last"] = r.activations[-1]
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def cuda_simulated(tmp_path_factory):
    path = tmp_path_factory.mktemp("rainbow_cudasim") / "out.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    arg = json.dumps([CUDA_CASES, C_FULL.tolist(), X.tolist(), ANCHORS.tolist()])
    proc = subprocess.run([sys.executable, "-c", CUDA_SCRIPT, arg, str(path)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.cudasim
@pytest.mark.parametrize("method", ["explicit", "gram"])
@pytest.mark.parametrize("k", range(len(CUDA_CASES)))
def test_cuda_simulator_equals_cpu_bit_for_bit(cuda_simulated, k, method):
    c = CUDA_CASES[k]
    C1 = C_FULL if c["C1"] == "full" else c["C1"]
    act = softsign() if c["act"] == "softsign" else c["act"]
    r = _rainbow(act, X, C1, c["a"], c["b"], ANCHORS if c["anchors"] else None, widths=c["widths"],
                         n_networks=c["S"], seed=6, first_network=c["network0"], C_b=c["C_b"], method=method,
                         keep_activations=(method == "explicit"))
    # the same + - * / sqrt in the same order on both sides (rng's own log/sincos, libm's tanh/erf)
    assert np.array_equal(r.preact_gram, cuda_simulated[f"{k}/{method}/pre"])
    assert np.array_equal(r.postact_gram, cuda_simulated[f"{k}/{method}/post"])
    if method == "explicit":
        assert np.array_equal(r.activations[-1], cuda_simulated[f"{k}/{method}/h_last"])


# --- bad input ----------------------------------------------------------------------------------------------

def test_bad_engine_arguments_are_input_errors(monkeypatch):
    kw = dict(widths=(8, 8), n_networks=1)
    args = ("relu", X, 1.0, [1.0], [[1.0, 1.0]], ANCHORS)
    with pytest.raises(InputError, match="method must be one of"):
        _rainbow(*args, method="fast", **kw)
    with pytest.raises(InputError, match="backend must be one of"):
        _rainbow(*args, method="gram", backend="tpu", **kw)
    with pytest.raises(InputError, match="method='numpy'.*cpu"):
        _rainbow(*args, backend="cuda", **kw)
    with pytest.raises(InputError, match="keep_activations"):
        _rainbow(*args, method="gram", keep_activations=True, **kw)
    no_scalar = custom_activation(lambda x: np.vectorize(lambda v: max(v, 0.0))(x), name="vec", scalar=None)
    assert no_scalar.scalar is None
    with pytest.raises(InputTypeError, match="numba scalar"):
        _rainbow(no_scalar, *args[1:], method="explicit", **kw)
    import sigprop.kernels.backend as backend

    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    with pytest.raises(InputError, match="backend='cuda' needs a CUDA GPU"):
        _rainbow(*args, method="explicit", backend="cuda", **kw)
