"""One overflow/underflow convention for every method: NaN from the first non-finite statistic on with
a SimulationOverflowWarning; subnormal statistics reported as 0, an underflowed covariance factored as rank 0,
with a SimulationUnderflowWarning naming the layer.  The convention itself: sigprop.kernels.float_range."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from sigprop.kernels import SimulationOverflowWarning, SimulationUnderflowWarning, simulate
from sigprop.kernels.float_range import (
    BACKWARD_FIELDS,
    DBL_MIN,
    FORWARD_FIELDS,
    RangeReport,
    check_statistics,
    warn_range,
)
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


# --- check_statistics against the NumPy implementation it replaced (kept here, verbatim, as the reference) -------

def _reference_per_layer(a, mask):
    return mask.any(axis=tuple(range(2, mask.ndim)))


def _reference_first_layer(flags):
    any_flag = np.logical_or.reduce(list(flags.values()))
    S, L = any_flag.shape
    first = np.where(any_flag.any(axis=1), any_flag.argmax(axis=1), L)
    if not any_flag.any():
        return first, None, None
    layer = int(first.min())
    field = next(name for name, f in flags.items() if f[:, layer].any())
    return first, layer, field


def _reference_overflow(out):
    pre_fields = ("preact_gram", "preact_m2", "preact_m4")
    S, L = out["preact_gram"].shape[:2]
    bad_pre = {k: _reference_per_layer(out[k], ~np.isfinite(out[k])) for k in pre_fields}
    bad_post = _reference_per_layer(out["postact_gram"], ~np.isfinite(out["postact_gram"]))
    stages = np.empty((S, 2 * L), dtype=bool)
    stages[:, 0::2] = np.logical_or.reduce(list(bad_pre.values()))
    stages[:, 1::2] = bad_post
    first = np.where(stages.any(axis=1), stages.argmax(axis=1), 2 * L)
    for k in pre_fields:
        out[k][np.arange(L)[None, :] >= (first[:, None] + 1) // 2] = np.nan
    out["postact_gram"][np.arange(L)[None, :] >= first[:, None] // 2] = np.nan
    layer = field = None
    if (first < 2 * L).any():
        f = int(first.min())
        layer = f // 2
        field = ("postact_gram" if f % 2 else
                 next(k for k in pre_fields if bad_pre[k][:, layer][first == f].any()))
    bad = first < 2 * L
    bwd = {k: out[k] for k in BACKWARD_FIELDS if out.get(k) is not None}
    if bwd:
        flags = {k: _reference_per_layer(a, ~np.isfinite(a))[:, ::-1] for k, a in bwd.items()}
        top, btop, bfield = _reference_first_layer(flags)
        top = np.where(bad, L - 1, L - 1 - top)
        lower = np.arange(L)[None, :] <= top[:, None]
        for a in bwd.values():
            a[lower] = np.nan
        if layer is None and btop is not None:
            layer, field = L - 1 - btop, bfield
        bad = bad | (top >= 0)
    return int(bad.sum()), layer, field


def _reference_underflow(out, G0, C_b):
    fields = [k for k in FORWARD_FIELDS + BACKWARD_FIELDS if out.get(k) is not None]
    pre, post = out["preact_gram"], out["postact_gram"]
    S, L = pre.shape[:2]
    prev_nonzero = np.empty((S, L), dtype=bool)
    prev_nonzero[:, 0] = bool(np.any(G0 != 0))
    prev_nonzero[:, 1:] = _reference_per_layer(post[:, :-1], post[:, :-1] != 0)
    flags = {}
    for k in fields:
        a = out[k]
        flags[k] = _reference_per_layer(a, (a != 0) & (np.abs(a) < DBL_MIN))
    flags["preact_m4"] = flags["preact_m4"] | _reference_per_layer(out["preact_m4"], (out["preact_m4"] == 0)
                                                                   & (out["preact_m2"] != 0))
    zero_pre = ~_reference_per_layer(pre, pre != 0)
    flags["preact_gram"] = flags["preact_gram"] | (zero_pre & ((C_b > 0) | prev_nonzero))
    first, layer, field = _reference_first_layer(flags)
    gram_layer = _reference_first_layer({k: flags[k] for k in ("preact_gram", "postact_gram")})[1]
    for k in fields:
        a = out[k]
        a[(a != 0) & (np.abs(a) < DBL_MIN)] = 0.0
    return int((first < L).sum()), layer, field, gram_layer


def _reference_check_statistics(out, X, C_b):
    X = np.asarray(X, dtype=np.float64)
    G0 = X @ X.T / X.shape[1]
    n_over, lo, fo = _reference_overflow(out)
    n_under, lu, fu, lg = _reference_underflow(out, G0, C_b)
    return RangeReport(out["preact_gram"].shape[0], n_over, lo, fo, n_under, lu, fu, lg)


_SPECIAL = np.array([np.nan, -np.nan, np.inf, -np.inf, 5e-324, -5e-324, 1e-310, -1e-310, np.nextafter(DBL_MIN, 0),
                     -np.nextafter(DBL_MIN, 0), DBL_MIN, -DBL_MIN, 0.0, -0.0, np.finfo(np.float64).max])


def _random_case(rng):
    """Statistics with injected NaN, +-inf, subnormals, exact zeros, zero fourth moments, all-zero layers; some
    arrays not C-contiguous (transposed views); the backward fields present, None or absent."""
    S, L = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    P = 0 if rng.random() < 0.03 else int(rng.integers(1, 4))
    backward = rng.choice(["present", "none", "absent"])
    fields = FORWARD_FIELDS + (BACKWARD_FIELDS if backward == "present" else ())
    out = {}
    for k in fields:
        shape = (S, L, P) if k in ("preact_m2", "preact_m4") else (S, L, P, P)
        values = rng.normal(size=shape) * rng.choice([1.0, 1e-300, 1e-307, 1e300])
        if len(shape) == 4 and rng.random() < 0.2:  # a transposed view: written through, scanned from a copy
            values = np.swapaxes(np.ascontiguousarray(np.swapaxes(values, 2, 3)), 2, 3)
        for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.6 and values.size else 0):
            idx = tuple(int(rng.integers(0, n)) for n in shape)
            values[idx] = rng.choice(_SPECIAL)
        out[k] = values
    for _ in range(int(rng.integers(0, 3))):  # structural zeros and NaN
        s, l, kind = int(rng.integers(0, S)), int(rng.integers(0, L)), int(rng.integers(0, 5))
        if kind == 0:
            out["preact_gram"][s, l] = 0.0  # an all-zero pre-activation Gram layer
        elif kind == 1:
            out["postact_gram"][s, l] = 0.0
        elif kind == 2 and P:
            out["preact_m4"][s, l, int(rng.integers(0, P))] = 0.0  # next to a (likely) non-zero m2
        elif kind == 3:
            for a in out.values():  # a dead network from layer l on: exact zeros
                a[s, l:] = 0.0
        else:
            for k in ("preact_gram", "preact_m2", "preact_m4"):  # one z: NaN together
                out[k][s, l] = np.nan
    if backward == "none":
        out["backward_gram"] = out["tangent_gram"] = None
    X = rng.choice([0.0, 1.0, 1e-160]) * rng.normal(size=(P, 3))
    if P and rng.random() < 0.05:
        X[0, 0] = np.nan
    return out, X, float(rng.choice([0.0, 0.5]))


def _recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [(w.category, str(w.message)) for w in caught]


def test_check_statistics_is_the_numpy_reference_bit_for_bit():
    """The one-pass check gives the same report, the same warnings and the same arrays (every bit: NaN payloads,
    the sign of zeros) as the NumPy implementation it replaced, on randomised statistics."""
    rng = np.random.default_rng(20240611)
    over_fields, under_fields, gram_layers = set(), set(), 0
    for case in range(400):
        out, X, C_b = _random_case(rng)
        ref = {k: None if v is None else v.copy() for k, v in out.items()}
        rep, caught = _recorded(lambda: check_statistics(out, X, C_b, "test"))
        ref_rep = _reference_check_statistics(ref, X, C_b)
        assert rep == ref_rep, case
        assert caught == _recorded(lambda: warn_range(ref_rep, "test"))[1], case
        assert out.keys() == ref.keys()
        for k, v in out.items():
            if v is None:
                assert ref[k] is None
                continue
            np.testing.assert_array_equal(v, ref[k], err_msg=f"case {case}, {k}")
            assert (np.ascontiguousarray(v).view(np.uint64) == ref[k].view(np.uint64)).all(), (case, k)
        over_fields.add(rep.overflow_field)
        under_fields.add(rep.underflow_field)
        gram_layers += rep.gram_underflow_layer is not None
    # the cases reach every branch: each field as the first overflow / underflow, and none
    assert over_fields == under_fields == {None, *FORWARD_FIELDS, *BACKWARD_FIELDS}
    assert gram_layers > 20
