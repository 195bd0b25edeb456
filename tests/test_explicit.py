"""Explicit-weight engine (CPU): agreement with the NumPy reference, reproducibility, exact finite-width moments."""
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sigprop.kernels.explicit_cpu import run_explicit
from sigprop.kernels.reference import run_reference
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
    for k in whole:
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
    (dict(backend="tpu"), "backend"),
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
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        run_explicit(X3, (4,), activation("relu"), 2.0, 0.0, 1, 0, backend="cuda")


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
    """Deep linear net, one input: E[z^4]/(3 E[z^2]^2) at layer l is (1 + 2/n)^(l-1) exactly (THEORY sec. 3)."""
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
# Property tests
# --------------------------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(P=st.integers(1, 4), n0=st.integers(1, 6), widths=st.lists(st.integers(2, 7), min_size=1, max_size=3),
       act=st.sampled_from(["relu", "tanh", "sin", "selu", "identity"]), C_W=st.floats(0.1, 3.0),
       C_b=st.sampled_from([0.0, 0.3]), weights=st.sampled_from(["gaussian", "uniform", "rademacher"]),
       norm=st.sampled_from([None, "rms_pre", "ln_pre", "rms_post", "ln_post"]),
       residual=st.sampled_from([0.0, 0.5]), seed=st.integers(0, 2**64 - 1), first=st.integers(0, 2**31))
def test_property_explicit_equals_reference(P, n0, widths, act, C_W, C_b, weights, norm, residual, seed, first):
    X = np.random.default_rng(seed % 1000).standard_normal((P, n0))
    backward = norm is None and residual == 0.0
    kw = dict(weights=weights, residual=residual, norm=norm, backward=backward, first_network=first)
    got = run_explicit(X, tuple(widths), activation(act), C_W, C_b, 2, seed, **kw)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = run_reference(X, tuple(widths), activation(act), C_W, C_b, 2, seed, **kw)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-10, atol=1e-12 * max(1.0, np.nanmax(np.abs(ref[k]))),
                                   err_msg=k)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), k=st.integers(-3, 3), act=st.sampled_from(["relu", "leaky_relu", "abs"]))
def test_property_positive_homogeneity(seed, k, act):
    """phi positively homogeneous, C_b = 0, no norm: X -> 2^k X scales every preact/postact Gram by 4^k exactly."""
    X = np.random.default_rng(seed).standard_normal((2, 5))
    a = run_explicit(X, (6, 4), _act(act), 2.0, 0.0, 2, seed)
    b = run_explicit(X * 2.0**k, (6, 4), _act(act), 2.0, 0.0, 2, seed)
    for key in ("preact_gram", "postact_gram", "preact_m2"):
        np.testing.assert_array_equal(b[key], a[key] * 4.0**k)
    np.testing.assert_array_equal(b["preact_m4"], a["preact_m4"] * 16.0**k)
