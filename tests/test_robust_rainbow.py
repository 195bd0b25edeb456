"""Robustness of ``simulate(..., covariance=RainbowCovariance(...))`` (the rainbow model) at extreme inputs.

* overflow and underflow follow the convention of :func:`sigprop.kernels.simulate`
  (:func:`sigprop.kernels.float_range.check_statistics`) for every method: the statistics are NaN from the first
  non-finite one on, never inf, subnormal statistics are 0, with exactly one warning of each kind; a layer whose
  covariance is exactly zero (``a_l = 0`` and no anchor feature, ``C_b = 0``) is not an underflow;
* widths beyond the generator's rows, and runs that do not fit in memory (the planner of ``simulate``), are refused
  before any work with an error naming ``width``; batching the networks by the planner changes no number.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import sigprop.kernels.backend as backend
from sigprop.kernels import RainbowCovariance, simulate
from sigprop.kernels.float_range import DBL_MIN, SimulationOverflowWarning, SimulationUnderflowWarning
from sigprop.kernels.rainbow_cpu import run_rainbow_explicit_cpu
from sigprop.theory.activations import activation
from sigprop.theory.errors import InputError, InputTypeError

METHODS = ("numpy", "explicit", "gram")
X = np.random.default_rng(0).standard_normal((3, 4))


def _rainbow(act, X, C1, a, b=None, anchors=None, *, widths, method="numpy", n_networks=1, **kw):
    """``simulate`` with the rainbow covariance ``(C1, a, b, anchors)``, the NumPy engine unless ``method`` says."""
    return simulate(X, depth=len(widths), width=widths, activation=act, method=method, n_networks=n_networks,
                    covariance=RainbowCovariance(C1, a, b, anchors), **kw)


def _run(*args, **kw):
    """The rainbow simulation and every warning it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _rainbow(*args, **kw)
    return res, caught


# --- overflow and underflow: the convention of simulate -------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_overflow_is_nan_from_the_first_non_finite_statistic_with_one_warning(method):
    res, caught = _run("exp", 10 * X, 1.0, [50.0], widths=(8, 8), method=method)
    assert [w.category for w in caught] == [SimulationOverflowWarning]
    assert "hidden layer 2 (postact_gram)" in str(caught[0].message)
    assert caught[0].filename == __file__
    pre, post = res.preact_gram, res.postact_gram
    assert not np.isinf(pre).any() and not np.isinf(post).any()
    # exp(z) of layer 2 overflows: its post-activation Gram is NaN, everything before it finite
    assert np.isfinite(pre).all() and np.isfinite(post[:, 0]).all()
    assert np.isnan(post[:, 1]).all()


def test_the_engine_itself_overflows_to_inf():
    """What the convention replaces: the compiled engine's raw numbers."""
    raw = run_rainbow_explicit_cpu(10 * X, [8, 8], activation("exp"), np.array([50.0]), np.zeros((1, 0)), 3, 0.0,
                                   n_networks=1, seed=0)
    assert np.isinf(raw["postact_gram"][:, 1]).any()


@pytest.mark.parametrize("method", METHODS)
def test_overflow_counts_the_networks_in_one_warning(method):
    res, caught = _run("exp", 10 * X, 1.0, [50.0], widths=(8, 8), n_networks=3, seed=2, method=method)
    assert [w.category for w in caught] == [SimulationOverflowWarning]
    bad = np.isnan(res.postact_gram).any(axis=(1, 2, 3))
    assert f"{bad.sum()} of 3 network(s)" in str(caught[0].message)


@pytest.mark.parametrize("method", METHODS)
def test_underflow_is_zero_with_one_warning(method):
    res, caught = _run("relu", 1e-160 * X, 1.0, [1.0], widths=(8, 8), method=method)
    assert [w.category for w in caught] == [SimulationUnderflowWarning]
    for g in (res.preact_gram, res.postact_gram):
        assert not ((g != 0) & (np.abs(g) < DBL_MIN)).any()


@pytest.mark.parametrize("method", METHODS)
def test_a_layer_of_zero_covariance_is_exactly_zero_not_an_underflow(method):
    # layer 2 with a = 0: white part 0; its anchor (the origin) has a zero relu feature, so C_2 = 0 exactly
    res, caught = _run("relu", X, 1.0, [0.0], [[1.0]], np.zeros((1, 4)), widths=(8, 8), n_networks=2, method=method)
    assert caught == []
    assert np.all(res.preact_gram[:, 1] == 0) and np.all(res.postact_gram[:, 1] == 0)
    assert np.all(res.preact_gram[:, 0, :3, :3] != 0)


# --- widths and memory: refused before any work ---------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_widths_beyond_the_generator_rows_are_an_input_error_naming_width(method):
    with pytest.raises(InputError, match=r"width\[0\] must be an integer in \[1, 4294967296\], got 100000000000"):
        _rainbow("tanh", X, 1.0, [1.0], widths=(10**11, 8), method=method)
    with pytest.raises(InputError, match=r"width\[1\] must be an integer in \[1, 4294967296\], got 4294967297"):
        _rainbow("tanh", X, 1.0, [1.0], widths=(8, 2**32 + 1), method=method)
    with pytest.raises(InputError, match=r"width\[1\] must be an integer in \[1, "):
        _rainbow("tanh", X, 1.0, [1.0], widths=(8, 0), method=method)
    with pytest.raises(InputTypeError, match=r"width\[0\] must be an integer in \[1, 4294967296\], got float"):
        _rainbow("tanh", X, 1.0, [1.0], widths=(8.0, 8), method=method)


def test_more_layers_than_the_generator_has_is_an_input_error_naming_a():
    with pytest.raises(InputError, match=r"a must have at most 16777213 entries"):
        RainbowCovariance(1.0, np.ones(2**24 - 2))


@pytest.mark.parametrize("method", METHODS)
def test_a_run_that_does_not_fit_in_memory_is_refused_naming_widths(monkeypatch, method):
    monkeypatch.setattr(backend, "host_memory_available", lambda: 2**20)  # 1 MiB
    with pytest.raises(MemoryError, match=r"simulate \(widths=\[100000, 8\].*needs about .*GiB.*of the "
                                          r"0.000977 GiB of memory available.*use a smaller width"):
        _rainbow("tanh", X, 1.0, [1.0], widths=(10**5, 8), method=method)


def test_batches_of_the_planner_change_no_number(monkeypatch):
    kw = dict(widths=(64, 64), n_networks=3, seed=4, first_network=2, C_b=0.1, method="explicit",
              keep_activations=True)
    args = ("tanh", X, 1.5, [1.0], [[2.0]], X[:1])
    whole = _rainbow(*args, **kw)
    # memory for one network's buffers at a time ((6 + L) x 64 x N doubles; outputs 3 x 36 x N doubles; N = 4)
    monkeypatch.setattr(backend, "host_memory_available", lambda: 30_000)
    calls = []
    import sigprop.kernels.rainbow_cpu as cpu

    real = cpu.run_rainbow_explicit_cpu
    monkeypatch.setattr(cpu, "run_rainbow_explicit_cpu", lambda *a, **k: calls.append(k) or real(*a, **k))
    split = _rainbow(*args, **kw)
    assert [(c["network0"], c["n_networks"]) for c in calls] == [(2, 1), (3, 1), (4, 1)]
    assert np.array_equal(whole.preact_gram, split.preact_gram)
    assert np.array_equal(whole.postact_gram, split.postact_gram)
    assert all(np.array_equal(u, v) for u, v in zip(whole.activations, split.activations))
