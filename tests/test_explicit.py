"""Explicit-weight engine (CPU): agreement with the NumPy reference, reproducibility, exact finite-width moments."""
import itertools
import math
import os
import subprocess
import sys
import textwrap
from fractions import Fraction

import numpy as np
import pytest

from _hyp import examples
from sigprop.kernels.explicit_cpu import run_explicit
from sigprop.kernels.reference import (
    reference_backward_gram,
    reference_preactivations,
    run_reference,
    tangent_from_backward,
)
from sigprop.theory.activations import activation, custom_activation


def _soft_sine():
    """A custom activation (x/2 + sin x) with its numba scalar and derivative."""
    return custom_activation(lambda x: 0.5 * x + np.sin(x), name="half_x_plus_sin",
                             derivative=lambda x: 0.5 + np.cos(x),
                             scalar=lambda x: 0.5 * x + math.sin(x),
                             scalar_derivative=lambda x: 0.5 + math.cos(x))


X3 = np.random.default_rng(1).standard_normal((3, 7))

CASES = [
    # (activation, keyword arguments)
    ("relu", dict(backward=True)),
    ("tanh", dict(backward=True)),
    ("custom", dict(backward=True)),
    ("gelu", dict(weights="uniform", backward=True)),
    ("erf", dict(weights="rademacher", backward=True)),
    ("relu", dict(norm="rms_pre")),
    ("tanh", dict(norm="ln_pre")),
    ("relu", dict(norm="rms_post")),
    ("custom", dict(norm="ln_post", residual=0.4)),
    ("relu", dict(residual=0.6)),
    ("tanh", dict(residual=0.3, norm="rms_post", weights="rademacher")),
    ("leaky_relu", dict(weights="uniform", residual=1.0)),
]


def _act(name):
    if name == "custom":
        return _soft_sine()
    if name == "leaky_relu":
        return activation("leaky_relu", slope=0.2)
    return activation(name)


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                                                for n, kw in CASES])
def test_explicit_matches_reference(name, kw):
    act = _act(name)
    widths = (6, 5, 9)
    got = run_explicit(X3, widths, act, 1.7, 0.2, 3, 12345, first_network=5, **kw)
    ref = run_reference(X3, widths, act, 1.7, 0.2, 3, 12345, first_network=5, **kw)
    keys = {"preact_gram", "postact_gram", "preact_m2", "preact_m4"}
    if kw.get("backward"):
        keys |= {"backward_gram", "tangent_gram"}
    assert set(got) == keys == set(ref)
    S, L, P = 3, 3, 3
    for k in keys:
        shape = (S, L, P) if k.startswith("preact_m") else (S, L, P, P)
        assert got[k].shape == shape and got[k].dtype == np.float64
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-13 * np.abs(ref[k]).max(), err_msg=k)
    # a real network: the statistics move from layer to layer and are not trivially equal
    assert not np.allclose(got["preact_gram"][:, 0], got["preact_gram"][:, 1])


def test_finite_difference_derivative_of_custom_activation():
    """Without scalar_derivative, phi' is the central difference of phi (step 1e-6) in both engines."""
    act = custom_activation(lambda x: np.tanh(x) + 0.1 * x, scalar=lambda x: math.tanh(x) + 0.1 * x)
    got = run_explicit(X3, (4, 5), act, 1.2, 0.0, 2, 3, backward=True)
    ref = run_reference(X3, (4, 5), act, 1.2, 0.0, 2, 3, backward=True)
    np.testing.assert_allclose(got["backward_gram"], ref["backward_gram"], rtol=1e-7, atol=1e-9)


def test_batches_reproduce_the_same_networks():
    act = activation("tanh")
    whole = run_explicit(X3, (5, 4), act, 1.0, 0.1, 4, 99, backward=True)
    a = run_explicit(X3, (5, 4), act, 1.0, 0.1, 2, 99, backward=True)
    b = run_explicit(X3, (5, 4), act, 1.0, 0.1, 2, 99, backward=True, first_network=2)
    for k in whole:  # compiled vs compiled: each network's sums have one fixed order whatever the batch
        np.testing.assert_array_equal(whole[k], np.concatenate([a[k], b[k]]))
    other = run_explicit(X3, (5, 4), act, 1.0, 0.1, 2, 100)
    assert not np.array_equal(other["preact_gram"], a["preact_gram"])


THREADS_SCRIPT = textwrap.dedent("""
    import numba, numpy as np
    from sigprop.kernels.explicit_cpu import run_explicit
    from sigprop.theory.activations import activation
    X = np.random.default_rng(0).standard_normal((4, 9))
    res = []
    for t in (1, 3):
        numba.set_num_threads(t)
        res.append(run_explicit(X, (33, 17, 8), activation('tanh'), 1.5, 0.1, 5, 7, backward=True))
        res.append(run_explicit(X, (33, 17), activation('relu'), 2.0, 0.0, 5, 7, norm='ln_post', residual=0.5))
    for k in res[0]:
        assert np.array_equal(res[0][k], res[2][k]), k
    for k in res[1]:
        assert np.array_equal(res[1][k], res[3][k]), k
    print("OK")
""")


def test_results_do_not_depend_on_thread_count():
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    res = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK" in res.stdout


@pytest.mark.parametrize("kw,match", [
    (dict(backward=True, residual=0.5), "residual"),
    (dict(backward=True, norm="ln_pre"), "norm"),
    (dict(weights="cauchy"), "weights"),
    (dict(norm="batch"), "norm"),
    (dict(residual=1.5), "residual"),
])
def test_bad_arguments_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        run_explicit(X3, (4,), activation("relu"), 2.0, 0.0, 1, 0, **kw)


def test_activation_must_be_an_activation_object():
    with pytest.raises(TypeError, match="act"):
        run_explicit(X3, (4,), "relu", 2.0, 0.0, 1, 0)
    with pytest.raises(TypeError, match="act"):
        run_reference(X3, (4,), "relu", 2.0, 0.0, 1, 0)


def test_layernorm_needs_two_neurons_and_degenerate_layers_give_nan():
    with pytest.raises(ValueError, match="width"):
        run_explicit(X3, (4, 1), activation("relu"), 2.0, 0.0, 1, 0, norm="ln_post")
    # a dead ReLU layer under RMSNorm o phi is 0/0: NaN (as in the reference), not an exception or a clipped value
    x = np.ones((1, 2))
    got = run_explicit(x, (1, 1), activation("relu"), 2.0, 0.0, 16, 0, norm="rms_post")
    with np.errstate(invalid="ignore"):
        ref = run_reference(x, (1, 1), activation("relu"), 2.0, 0.0, 16, 0, norm="rms_post")
    dead = np.isnan(ref["postact_gram"][:, 0, 0, 0])
    assert dead.any() and not dead.all()
    np.testing.assert_array_equal(np.isnan(got["postact_gram"][:, 0, 0, 0]), dead)


def test_cuda_backend_without_gpu_raises_clearly():
    from sigprop.kernels import simulate
    from sigprop.kernels.backend import cuda_available
    from sigprop.kernels.explicit_cuda import run_explicit_cuda
    from sigprop.theory.errors import InputError

    if cuda_available():
        pytest.skip("a GPU (or the simulator) is present")
    with pytest.raises(InputError, match="backend='cuda' needs a CUDA GPU"):
        simulate(X3, depth=1, width=4, activation="relu", C_W=2.0, n_networks=1, method="explicit", backend="cuda")
    with pytest.raises(InputError, match="CUDA GPU"):
        run_explicit_cuda(X3, (4,), activation("relu"), 2.0, 0.0, 1, 0)


# --------------------------------------------------------------------------------------------
# Statistics against exact finite-width results
# --------------------------------------------------------------------------------------------
def _kurtosis_ratio(m2, m4):
    """R = E[z^4] / (3 E[z^2]^2) estimated over networks (axis 0), with its delta-method standard error."""
    M2, M4 = m2.mean(0), m4.mean(0)
    R = M4 / (3 * M2**2)
    infl = m4 / (3 * M2**2) - 2 * M4 * m2 / (3 * M2**3)
    return R, infl.std(0, ddof=1) / np.sqrt(m2.shape[0])


@pytest.mark.parametrize("n,S", [(4, 30000), (16, 8000)])
def test_deep_linear_fourth_moment(n, S):
    """Deep linear net, one input: E[z^4]/(3 E[z^2]^2) at layer l is (1 + 2/n)^(l-1) exactly
    (docs/derivations.md, 3.1)."""
    L = 8
    x = np.random.default_rng(2).standard_normal((1, 10))
    x *= np.sqrt(10) / np.linalg.norm(x)
    res = run_explicit(x, (n,) * L, activation("identity"), 1.0, 0.0, S, 2024)
    R, se = _kurtosis_ratio(res["preact_m2"][:, :, 0], res["preact_m4"][:, :, 0])
    expected = (1 + 2 / n) ** np.arange(L)
    z = (R - expected) / se
    assert np.all(np.abs(z) < 4), (R, expected, z)
    # sensitive: the Gaussian value 1 is excluded at layer 3 already
    assert (R[2] - 1) / se[2] > 5
    # E[z^2] = C_W^l |x|^2/n_0 = 1 exactly
    m2 = res["preact_m2"][:, :, 0]
    assert np.all(np.abs(m2.mean(0) - 1) / (m2.std(0, ddof=1) / np.sqrt(S)) < 4)


def test_deep_linear_backward_and_tangent_are_exact():
    """Linear net, any width: delta^(l) = W^(l+1)^T ... W^(L)^T v / sqrt(n_L), so E|delta^(l)|^2 = C_W^(L-l); and
    H^(l) (weights 1..l) is independent of delta^(l+1) (weights l+2..L, v), so E tangent[l] = C_W E H^(l) E B^(l).
    With C_W = 1, C_b = 0: E backward_gram[l] = 1 and E tangent_gram[l] = |x|^2/n_0 = 2.25."""
    S, n, L = 6000, 4, 5
    x = np.full((1, 6), 1.5)
    res = run_explicit(x, (n,) * L, activation("identity"), 1.0, 0.0, S, 11, backward=True)
    for key, target in (("backward_gram", 1.0), ("tangent_gram", 2.25)):
        v = res[key][:, :, 0, 0]
        z = (v.mean(0) - target) / (v.std(0, ddof=1) / np.sqrt(S))
        assert np.all(np.abs(z) < 4), (key, v.mean(0), z)


def test_relu_backward_gram_matches_infinite_width():
    """ReLU at criticality (C_W = 2, C_b = 0), one input: B^(L) = <phi'^2> = 1/2 and B^(l) = 2 <phi'^2> B^(l+1) = 1/2.

    n = 256 keeps the 1/n corrections (and the chance of an all-dead layer) below the statistical error
    (about 3% of the mean with S = 120 networks)."""
    S, n, L = 120, 256, 4
    x = np.ones((1, 8))
    res = run_explicit(x, (n,) * L, activation("relu"), 2.0, 0.0, S, 5, backward=True)
    B = res["backward_gram"][:, :, 0, 0]
    z = (B.mean(0) - 0.5) / (B.std(0, ddof=1) / np.sqrt(S))
    assert np.all(np.abs(z) < 4), (B.mean(0), z)
    # the wrong recursion (no C_W, i.e. 2^-(L-l)) would be far off
    assert np.all(np.abs(B.mean(0)[:-1] - 0.5 * 0.5 ** np.arange(L - 1, 0, -1)) / (B.std(0)[:-1] / np.sqrt(S)) > 8)


# --------------------------------------------------------------------------------------------
# Exact agreement, and pre-activations on a kink of phi
# --------------------------------------------------------------------------------------------
FORWARD_KEYS = ("preact_gram", "postact_gram", "preact_m2", "preact_m4")


def _exact_forward(weights, C_b, residual, act_name):
    """True where the reference's forward statistics equal the engine's bit for bit, on every CPU.

    Uniform and Rademacher draws are bit-identical in the NumPy twin (integer Philox, exact conversions);
    with C_b = 0 and residual = 0 no Gaussian number enters the forward pass; identity and relu are exact in
    both (x, max(x, 0)); the reference sums in the engine's order with separately rounded NumPy + - * / sqrt,
    and numba emits no fused multiply-add without fastmath, so every operation is the same IEEE-754 correctly
    rounded one.  (The backward pass uses the Gaussian readout vector, equal only to rounding.)"""
    return weights in ("uniform", "rademacher") and C_b == 0.0 and residual == 0.0 and act_name in ("relu",
                                                                                                      "identity")


@pytest.mark.parametrize("act_name,weights,widths,kw", [
    ("relu", "rademacher", (2, 2), dict(backward=True)),
    ("identity", "rademacher", (3, 1, 4), dict(backward=True)),
    ("relu", "uniform", (5, 7, 3), dict(backward=True)),
    ("identity", "uniform", (6, 2), dict(norm="rms_pre")),
    ("relu", "rademacher", (4, 9), dict(norm="ln_post")),
])
def test_forward_statistics_are_bit_identical_for_exact_weights(act_name, weights, widths, kw):
    """Uniform/Rademacher weights, relu/identity, C_b = 0: forward statistics equal bit for bit (_exact_forward);
    the backward ones (Gaussian readout) to rounding, with the same phi' pattern since every z is equal.
    Inputs rounded to integers give many exact ties (z = 0 at relu's kink)."""
    X = np.round(2 * np.random.default_rng(7).standard_normal((3, 4)))
    assert _exact_forward(weights, 0.0, 0.0, act_name)
    got = run_explicit(X, widths, activation(act_name), 1.3, 0.0, 4, 2**40 + 3, weights=weights, **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = run_reference(X, widths, activation(act_name), 1.3, 0.0, 4, 2**40 + 3, weights=weights, **kw)
    for k in FORWARD_KEYS:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    for k in set(ref) - set(FORWARD_KEYS):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-14 * np.abs(ref[k]).max(), err_msg=k)


# A failing example that hypothesis once reported for test_property_explicit_equals_reference (on a
# Skylake-AVX512 Xeon), exactly as reported: a tie on selu's kink.
ISSUE14 = dict(P=1, n0=1, widths=[2, 2], act="selu", C_W=1.0, C_b=0.0, weights="rademacher", norm=None,
               residual=0.0, seed=2, first=127)


def test_regression_issue14_selu_tie_at_the_kink():
    """Network 1 (id 128), layer 2, neuron 0 is an exact tie: z = (-h + h) / sqrt(2) with h_0 = h_1 (both
    neurons of layer 1 have the same Rademacher row), on selu's kink, where phi' jumps from 1.758 to 1.051.

    The engine sums the unit draws' products pair by pair, then scales: z = 0 exactly.  The old reference
    scaled W first and called BLAS, which on FMA hardware evaluates fma(-c, h, c h) = the rounding error of
    c h = 1.1e-18 > 0: the other one-sided derivative, and backward_gram 0.355 instead of 0.888.  The
    reference now sums in the engine's order and gets 0 too."""
    c = ISSUE14
    X = np.random.default_rng(c["seed"] % 1000).standard_normal((c["P"], c["n0"]))
    args = (X, tuple(c["widths"]), activation(c["act"]), c["C_W"], c["C_b"], 2, c["seed"])
    kw = dict(weights=c["weights"], residual=c["residual"], norm=c["norm"], backward=True,
              first_network=c["first"])
    # the example still exercises the tie: an exact 0 out of nonzero terms, in the reference ...
    pre = reference_preactivations(*args, weights=c["weights"], first_network=c["first"])[1]
    z, bound = pre[1]
    assert z[0, 0] == 0.0 and bound[0, 0] > 0.1
    # ... whose terms (1/sqrt 2) h_0 and -(1/sqrt 2) h_1, added with one rounding (a fused multiply-add,
    # computed exactly with fractions), give the rounding error of (1/sqrt 2) h, not 0
    h = activation("selu")(pre[0][0])
    assert h.shape == (2, 1) and h[0, 0] == h[1, 0]
    w = math.sqrt(c["C_W"] / 2)
    assert float(Fraction(-w) * Fraction(h[0, 0]) + Fraction(w * h[1, 0])) != 0.0
    got = run_explicit(*args, **kw)
    ref = run_reference(*args, **kw)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-12 * np.abs(ref[k]).max(), err_msg=k)
    assert got["backward_gram"][1, 0, 0, 0] == pytest.approx(0.888301, abs=1e-6)


# A pre-activation counts as on a kink when |z - kink| <= KINK_RTOL * bound, bound = sum of the magnitudes
# of the terms added into z (reference_preactivations).  Two evaluations that differ by rounding differ by
# at most ~10 ulp of bound per layer here (Gaussian draws <= 12 units of 2^-52 max(r, 1), libm <= ~4 ulp,
# <= 8 terms, <= 3 layers): 1e-12 (~4500 ulp) covers that with a wide margin, while a pre-activation that is
# not an exact tie falls this close to a kink with probability ~1e-12, so the full comparison is kept for
# practically every network.
KINK_RTOL = 1e-12
MAX_SIDE_CHOICES = 1024  # one-sided derivative combinations tried for one network (2^10, ~0.3 s at most)


def _side_candidates(act, z: float) -> list[float]:
    """phi' just below, at and just above the kink nearest to z (the values either evaluation may take)."""
    k = min(act.kinks, key=lambda q: abs(z - q))
    pts = np.array([np.nextafter(k, -np.inf), k, np.nextafter(k, np.inf)])
    return sorted({float(d) for d in act.deriv(pts)})


def _kink_entries(act, pre) -> list[tuple[int, int, int]]:
    """(layer index, neuron, input) of the pre-activations of one network whose phi' side is ambiguous.

    Seeds: |z - kink| <= KINK_RTOL * bound with bound > 0, a cancellation of nonzero terms that rounding may
    push to either side.  An entry with bound = 0 is an exact sum of exact zeros (h = 0 upstream), the same
    in any evaluation, unless an ambiguous entry upstream in the same input column made h tiny instead of 0
    in one of them: such entries on a kink, downstream of a seed in their column, are added too."""
    if not act.kinks:
        return []
    out = []
    seeded = set()  # input columns with a seed in an earlier layer
    for l, (z, bound) in enumerate(pre):
        dist = np.min([np.abs(z - k) for k in act.kinks], axis=0)
        seed = (dist <= KINK_RTOL * bound) & (bound > 0)
        downstream = (dist == 0) & (bound == 0) & np.isin(np.arange(z.shape[1]), sorted(seeded))[None, :]
        out += [(l, int(i), int(a)) for i, a in zip(*np.nonzero(seed | downstream))]
        seeded |= {int(a) for a in np.nonzero(seed.any(axis=0))[0]}
    return out


def _matches_a_side_choice(got_bgram, got_tangent, act, pre, entries, widths, C_W, C_b, seed, weights, net,
                           X, post, tol) -> bool | None:
    """Whether the engine's backward statistics of one network equal (to ``tol``) the reference's with some
    one-sided phi' at each ambiguous entry; None when there are more than MAX_SIDE_CHOICES combinations."""
    cands = [_side_candidates(act, pre[l][0][i, a]) for l, i, a in entries]
    if math.prod(len(c) for c in cands) > MAX_SIDE_CHOICES:
        return None
    base = [act.deriv(z) for z, _ in pre]
    for choice in itertools.product(*cands):
        derivs = [d.copy() for d in base]
        for (l, i, a), value in zip(entries, choice):
            derivs[l][i, a] = value
        b = reference_backward_gram(widths, C_W, seed, weights, net, derivs)
        t = tangent_from_backward(b[None], post[None], X, C_W, C_b)[0]
        if all(np.allclose(g, r, rtol=tol[0], atol=tol[1](r), equal_nan=True)
               for g, r in ((got_bgram, b), (got_tangent, t))):
            return True
    return False


def test_side_choice_check_tells_the_sides_apart():
    """The kink-aware comparison is not vacuous: at that tie, the old reference's backward statistics
    (phi' = 1.051 from the right) and the engine's (1.758 from the left) are both matched, and a wrong value
    (phi' = 1 there) is not; the tie is the only ambiguous entry of that network, and network 0 has none."""
    c = ISSUE14
    X = np.random.default_rng(c["seed"] % 1000).standard_normal((1, 1))
    act = activation("selu")
    pre = reference_preactivations(X, (2, 2), act, 1.0, 0.0, 2, 2, weights="rademacher", first_network=127)
    assert _kink_entries(act, pre[0]) == [] and _kink_entries(act, pre[1]) == [(1, 0, 0)]
    ref = run_reference(X, (2, 2), act, 1.0, 0.0, 2, 2, weights="rademacher", backward=True, first_network=127)
    tol = (1e-10, lambda r: 1e-12 * max(1.0, np.nanmax(np.abs(r))))

    def check(dphi_at_tie):
        derivs = [act.deriv(z) for z, _ in pre[1]]
        derivs[1][0, 0] = dphi_at_tie
        b = reference_backward_gram((2, 2), 1.0, 2, "rademacher", 128, derivs)
        t = tangent_from_backward(b[None], ref["postact_gram"][1:2], X, 1.0, 0.0)[0]
        return _matches_a_side_choice(b, t, act, pre[1], [(1, 0, 0)], (2, 2), 1.0, 0.0, 2, "rademacher", 128,
                                      X, ref["postact_gram"][1], tol)

    left, right = float(act.deriv(np.array(-1e-300))), float(act.deriv(np.array(1e-300)))
    assert _side_candidates(act, 0.0) == sorted({left, right}) and abs(left - right) > 0.7
    assert check(left) and check(right)
    assert check(1.0) is False


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------
from hypothesis import event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=examples(25), deadline=None)
@given(P=st.integers(1, 4), n0=st.integers(1, 6), widths=st.lists(st.integers(2, 7), min_size=1, max_size=3),
       act=st.sampled_from(["relu", "tanh", "sin", "selu", "identity"]), C_W=st.floats(0.1, 3.0),
       C_b=st.sampled_from([0.0, 0.3]), weights=st.sampled_from(["gaussian", "uniform", "rademacher"]),
       norm=st.sampled_from([None, "rms_pre", "ln_pre", "rms_post", "ln_post"]),
       residual=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**64 - 1), first=st.integers(0, 2**31))
def test_property_explicit_equals_reference(P, n0, widths, act, C_W, C_b, weights, norm, residual, seed, first):
    """Engine == reference: forward statistics to rounding (bit for bit where _exact_forward); backward
    statistics to rounding for every network without an ambiguous pre-activation on a kink of phi, and
    otherwise equal to the reference's with one of the one-sided phi' there (_matches_a_side_choice)."""
    X = np.random.default_rng(seed % 1000).standard_normal((P, n0))
    phi = activation(act)
    assert not phi.jumps, "phi itself jumps: the forward statistics would need the same care"
    backward = norm is None and residual == 0.0
    kw = dict(weights=weights, residual=residual, norm=norm, backward=backward, first_network=first)
    got = run_explicit(X, tuple(widths), phi, C_W, C_b, 2, seed, **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = run_reference(X, tuple(widths), phi, C_W, C_b, 2, seed, **kw)
    rtol = 1e-10

    def atol(r):
        return 1e-12 * max(1.0, np.nanmax(np.abs(r))) if np.isfinite(r).any() else 0.0

    exact = _exact_forward(weights, C_b, residual, act)
    for k in FORWARD_KEYS:
        if exact:
            np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        else:
            np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol(ref[k]), err_msg=k)
    if not backward:
        return
    pre = reference_preactivations(X, tuple(widths), phi, C_W, C_b, 2, seed, weights=weights, first_network=first)
    for s in range(2):
        entries = _kink_entries(phi, pre[s])
        if not entries:
            for k in ("backward_gram", "tangent_gram"):
                np.testing.assert_allclose(got[k][s], ref[k][s], rtol=rtol, atol=atol(ref[k]),
                                           err_msg=f"{k}, network {s}")
            continue
        note(f"network {s}: pre-activations on a kink at (layer, neuron, input) {entries}")
        ok = _matches_a_side_choice(got["backward_gram"][s], got["tangent_gram"][s], phi, pre[s], entries,
                                    tuple(widths), C_W, C_b, seed, weights, first + s, X, ref["postact_gram"][s],
                                    (rtol, atol))
        event("backward compared with one-sided phi' at a kink" if ok is not None
              else "backward not compared: too many one-sided combinations")
        assert ok is not False, f"network {s}: backward statistics match no one-sided choice of phi' at {entries}"


@settings(max_examples=examples(10), deadline=None)
@given(seed=st.integers(0, 2**32), k=st.integers(-3, 3), act=st.sampled_from(["relu", "leaky_relu", "abs"]))
def test_property_positive_homogeneity(seed, k, act):
    """phi positively homogeneous, C_b = 0, no norm: X -> 2^k X scales every preact/postact Gram by 4^k exactly.

    Exact on every CPU: multiplying by a power of two is exact (no overflow or subnormals at these sizes), so
    every product and sum of the run on 2^k X is 2^k (4^k, 16^k) times the same operation's result on X."""
    X = np.random.default_rng(seed).standard_normal((2, 5))
    a = run_explicit(X, (6, 4), _act(act), 2.0, 0.0, 2, seed)
    b = run_explicit(X * 2.0**k, (6, 4), _act(act), 2.0, 0.0, 2, seed)
    for key in ("preact_gram", "postact_gram", "preact_m2"):
        np.testing.assert_array_equal(b[key], a[key] * 4.0**k)
    np.testing.assert_array_equal(b["preact_m4"], a["preact_m4"] * 16.0**k)
