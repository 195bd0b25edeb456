"""One overflow/underflow convention for every method: NaN from the first non-finite statistic on with
a SimulationOverflowWarning; subnormal statistics reported as 0, an underflowed covariance factored as rank 0,
with a SimulationUnderflowWarning naming the layer.  The convention itself: sigprop.kernels.float_range."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from sigprop.kernels import SimulationOverflowWarning, SimulationUnderflowWarning, simulate
from sigprop.kernels.float_range import DBL_MIN, check_statistics
from sigprop.kernels.gram_device import PSD_RTOL, factor_psd

X2 = np.array([[1.0, 0.5, -0.3, 0.8], [0.2, -1.0, 0.6, 0.4]])


def _assert_nan_from_first_nonfinite(r):
    """Per network: no inf anywhere; once a layer's post-activation Gram is NaN, every later statistic is NaN."""
    for a in (r.preact_gram, r.postact_gram, r.preact_m2, r.preact_m4):
        assert not np.isinf(a).any()
    post_bad = np.isnan(r.postact_gram).any(axis=(2, 3))  # (S, L)
    for s in range(post_bad.shape[0]):
        if post_bad[s].any():
            l0 = int(post_bad[s].argmax())
            assert np.isnan(r.postact_gram[s, l0:]).all()
            assert np.isnan(r.preact_gram[s, l0 + 1:]).all() and np.isnan(r.preact_m4[s, l0 + 1:]).all()
            assert np.isfinite(r.postact_gram[s, :l0]).all()


@pytest.mark.parametrize("method", ["explicit", "gram", "numpy"])
def test_exp_overflow_warns_and_is_nan_from_the_first_overflow(method):
    """The issue's case: exp, C_W=2, width 16 overflows from hidden layer 3; explicit used to do it silently."""
    with pytest.warns(SimulationOverflowWarning, match=rf"{method} method: 3 of 3 network\(s\).*first at hidden "
                                                       r"layer 3 "):
        r = simulate(X2, depth=30, width=16, activation="exp", C_W=2.0, n_networks=3, seed=0, method=method)
    _assert_nan_from_first_nonfinite(r)
    assert np.isnan(r.postact_gram[:, -1]).all() and np.isfinite(r.postact_gram[:, :2]).all()


@pytest.mark.parametrize("method", ["explicit", "gram"])
def test_relu_overflow_is_nan_not_inf(method):
    """relu, C_W=1e5: the variance grows by 5e4 per layer and overflows near hidden layer 33; the explicit method
    used to return inf where the docs say NaN."""
    with pytest.warns(SimulationOverflowWarning, match="first at hidden layer 3[0-9] "):
        r = simulate(X2, depth=80, width=16, activation="relu", C_W=1e5, n_networks=2, seed=0, method=method)
    _assert_nan_from_first_nonfinite(r)
    assert np.isnan(r.postact_gram[:, 40:]).all()


def test_overflow_in_the_backward_pass_is_nan_at_every_layer_below():
    with pytest.warns(SimulationOverflowWarning):
        r = simulate(X2, depth=12, width=8, activation="relu", C_W=1e60, n_networks=2, seed=1, method="explicit",
                     backward=True)
    assert not np.isinf(r.backward_gram).any() and not np.isinf(r.tangent_gram).any()
    assert np.isnan(r.backward_gram).all() and np.isnan(r.tangent_gram).all()  # forward overflow at layer 6


def test_no_warning_without_overflow_or_underflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = simulate(X2, depth=3, width=8, activation="relu", C_W=2.0, n_networks=4, seed=0, method="explicit",
                     backward=True)
    assert np.isfinite(r.postact_gram).all()


@pytest.mark.parametrize("method", ["gram", "explicit"])
@pytest.mark.parametrize("act, C_W, depth", [("relu", 1.0, 828), ("tanh", 0.5, 1040)])
def test_underflowed_variance_is_rank_zero_with_a_warning(method, act, C_W, depth):
    """The issue's cases: the gram method stopped with 'not positive semi-definite' after the whole run (relu,
    C_W=1, width 16, depth 828; tanh, C_W=0.5 from depth 937) while explicit returned zeros.  Now both return 0
    beyond the underflow, and warn naming the layer."""
    with pytest.warns(SimulationUnderflowWarning, match=rf"{method} method: statistics of 2 of 2 network\(s\) "
                                                        r"underflowed.*first at hidden layer \d+"):
        r = simulate(X2, depth=depth, width=16, activation=act, C_W=C_W, n_networks=2, seed=0, method=method)
    for a in (r.preact_gram, r.postact_gram, r.preact_m2, r.preact_m4):
        assert np.isfinite(a).all()
        assert not ((a != 0) & (np.abs(a) < DBL_MIN)).any()  # no subnormal numbers left
    if act == "tanh":  # variance ~ 0.5^l: every Gram entry underflowed by layer 1040 in every network
        assert (r.postact_gram[:, -1] == 0).all() and (r.preact_gram[:, -1] == 0).all()
    assert (r.preact_m4[:, -1] == 0).all()  # z^4 ~ variance^2 underflows first
    assert (r.postact_gram[:, 0] > 0).any()


def test_factor_psd_takes_an_all_subnormal_covariance_as_rank_zero():
    P = 2
    A, Wk, perm = np.empty((P, P)), np.empty((P, P)), np.empty(P, dtype=np.int64)
    K = np.array([[3e-310, 1e-310], [1e-310, 2e-310]])
    assert factor_psd.py_func(K, A, Wk, perm, P, PSD_RTOL) == 0 and (A == 0).all()
    assert factor_psd(K, A, Wk, perm, P, PSD_RTOL) == 0
    K = np.array([[3e-310, 1e-3], [1e-3, 1.0]])  # a subnormal variance next to a normal covariance: not PSD
    assert factor_psd(K, A, Wk, perm, P, PSD_RTOL) == -1


def _stats(S=2, L=3, P=2, fill=1.0):
    return {"preact_gram": np.full((S, L, P, P), fill), "postact_gram": np.full((S, L, P, P), fill),
            "preact_m2": np.full((S, L, P), fill), "preact_m4": np.full((S, L, P), 3 * fill),
            "backward_gram": np.full((S, L, P, P), fill), "tangent_gram": np.full((S, L, P, P), fill)}


def test_check_statistics_overflow_order():
    out = _stats()
    out["postact_gram"][0, 1, 0, 1] = np.inf  # network 0: post of layer index 1 overflows; its pre stays
    out["backward_gram"][1, 1, 0, 0] = np.inf  # network 1: backward pass only, at layer index 1
    with pytest.warns(SimulationOverflowWarning, match="2 of 2 network.*first at hidden layer 2 "
                                                       r"\(postact_gram\)"):
        rep = check_statistics(out, np.ones((2, 3)), 0.0, "test")
    assert rep.overflow_networks == 2 and rep.overflow_layer == 1
    assert np.isfinite(out["preact_gram"][0, :2]).all() and np.isnan(out["preact_gram"][0, 2]).all()
    assert np.isnan(out["postact_gram"][0, 1:]).all() and np.isfinite(out["postact_gram"][0, 0]).all()
    assert np.isnan(out["backward_gram"][0]).all()  # after a forward overflow: every backward layer
    # network 1: the backward pass runs from the last layer down, so NaN from index 1 down to 0; forward kept
    assert np.isnan(out["backward_gram"][1, :2]).all() and np.isfinite(out["backward_gram"][1, 2]).all()
    assert np.isfinite(out["postact_gram"][1]).all()


def test_check_statistics_underflow_and_exact_zeros():
    out = _stats()
    out["postact_gram"][0, 2] = 1e-310  # subnormal
    out["preact_m4"][1, 1] = 0.0  # a zero fourth moment next to a non-zero variance: underflow
    with pytest.warns(SimulationUnderflowWarning, match=r"2 of 2 network.*first at hidden layer 2 \(preact_m4\)"):
        rep = check_statistics(out, np.ones((2, 3)), 0.0, "test")
    assert rep.underflow_networks == 2 and rep.gram_underflow_layer == 2
    assert (out["postact_gram"][0, 2] == 0).all()
    zeros = {k: np.zeros_like(v) for k, v in _stats().items()}  # zero inputs: exact zeros, not underflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = check_statistics(zeros, np.zeros((2, 3)), 0.0, "test")
    assert rep.underflow_networks == 0 and rep.overflow_networks == 0
