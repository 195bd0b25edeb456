"""The Recursive Feature Machine (sigprop.kernels.learning.rfm, docs/derivations.md, section 7): closed-form gradients
against finite differences and a naive loop, the kernel ridge solve against a dense NumPy solve, feature recovery on
low-index teachers, input checks, and the invariants of M and of the history."""
import dataclasses

import numpy as np
import pytest

from sigprop.kernels.learning import rfm as rfm_module
from sigprop.kernels.learning.rfm import (
    RFMResult,
    _psd_power,
    _sqdist,
    laplace_kernel,
    predictor_agop,
    predictor_gradients,
    rfm,
    rfm_memory_bytes,
)
from sigprop.theory.errors import InputError, InputTypeError


def _naive_kernel(Z, X, M, L):
    V = Z[:, None, :] - X[None, :, :]
    return np.exp(-np.sqrt(np.einsum("jik,kl,jil->ji", V, M, V)) / L)


def _naive_gradients(Z, X, alpha, M, L):
    """grad f_c(z) = -(1/L) M sum_i alpha_ic k(z, x_i) (z - x_i) / |z - x_i|_M, coincident terms dropped, by a loop."""
    out = np.zeros((len(Z), alpha.shape[1], X.shape[1]))
    for j, z in enumerate(Z):
        for i, x in enumerate(X):
            v = z - x
            r = np.sqrt(v @ M @ v)
            if r == 0.0:
                continue
            out[j] += -(1.0 / L) * np.outer(alpha[i] * np.exp(-r / L) / r, M @ v)
    return out


def _random_psd(d, rng):
    A = rng.standard_normal((d, d))
    return A @ A.T / d


def _fraction_in_span(M, U):
    """Share of tr(M) in the span of the orthonormal columns of U: tr(U^T M U) / tr(M)."""
    return float(np.trace(U.T @ M @ U) / np.trace(M))


# ---- (1) closed-form gradients ------------------------------------------------------------------------------------

@pytest.mark.parametrize("power", [1.0, 0.5])
def test_closed_form_gradient_matches_central_difference(power):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    Y = np.stack([X[:, 0] * X[:, 1], np.sin(X[:, 2])], axis=1)
    res = rfm(X, Y, iters=2, power=power, bandwidth=3.0)  # a learned, non-identity M and two outputs
    assert not np.allclose(res.M, np.eye(4))
    Z = rng.standard_normal((6, 4))  # not training points
    G = res.gradients(Z)
    assert G.shape == (6, 2, 4)
    h = 1e-5
    FD = np.empty_like(G)
    for k in range(4):
        e = np.zeros(4)
        e[k] = h
        FD[:, :, k] = (res.predict(Z + e) - res.predict(Z - e)) / (2 * h)
    err = np.linalg.norm(G - FD, axis=2) / np.linalg.norm(G, axis=2)
    assert err.max() <= 1e-6
    np.testing.assert_allclose(predictor_gradients(Z, X, res.alpha, res.M, 3.0), G, rtol=1e-12, atol=1e-13)


def test_vectorised_gradients_and_agop_match_a_naive_loop():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    X[7] = X[3]  # a duplicate centre: its coincident terms are dropped like the self term
    alpha = rng.standard_normal((30, 2))
    M = _random_psd(3, rng)
    L = 2.0
    Z = np.vstack([rng.standard_normal((4, 3)), X[:5]])  # off and on the training points
    ref = _naive_gradients(Z, X, alpha, M, L)
    np.testing.assert_allclose(predictor_gradients(Z, X, alpha, M, L), ref, rtol=1e-10, atol=1e-12)
    G = _naive_gradients(X, X, alpha, M, L)
    for centering in (False, True):
        Gc = G - G.mean(axis=0) if centering else G
        A_ref = np.einsum("jck,jcl->kl", Gc, Gc) / (30 * 2)
        A = predictor_agop(X, alpha, M, L, centering=centering)
        np.testing.assert_allclose(A, A_ref, rtol=1e-10, atol=1e-12 * np.abs(A_ref).max())
    assert np.all(np.isfinite(predictor_agop(X, alpha, M, L)))


def test_first_update_is_the_agop_of_the_dense_numpy_predictor():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 5))
    y = X[:, 0] - X[:, 1] ** 2
    res = rfm(X, y, iters=1, bandwidth=4.0, reg=1e-2)
    K = _naive_kernel(X, X, np.eye(5), 4.0)
    alpha0 = np.linalg.solve(K + 1e-2 * np.eye(50), y)
    np.testing.assert_allclose(res.history[1].M, predictor_agop(X, alpha0, np.eye(5), 4.0), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(res.history[0].M, np.eye(5))


# ---- (2) feature recovery (docs/derivations.md, section 7) ----------------------------------------------------

def test_recovers_span_e1_e2_for_product_teacher():
    """y = x1 x2, d = 10, N = 800, x ~ N(0, I), 5 iterations: 0.9999 of tr(M) in span(e1, e2) (chance 0.2)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((800, 10))
    res = rfm(X, X[:, 0] * X[:, 1], iters=5)
    fractions = [_fraction_in_span(r.M, np.eye(10)[:, :2]) for r in res.history]
    assert fractions[0] == pytest.approx(0.2)  # M_0 = I: chance level k / d
    assert fractions[-1] >= 0.9
    assert res.train_mse[-1] < 1e-3


def test_recovers_random_multi_index_subspace():
    """y = g(U^T x) with U a random orthonormal d x k frame: tr(M) concentrates on span(U), far above k / d."""
    rng = np.random.default_rng(3)
    d, k, N = 20, 3, 500
    U, _ = np.linalg.qr(rng.standard_normal((d, k)))
    X = rng.standard_normal((N, d))
    Z = X @ U
    y = Z[:, 0] * Z[:, 1] + np.tanh(2.0 * Z[:, 2])
    X_val = rng.standard_normal((200, d))
    Zv = X_val @ U
    y_val = Zv[:, 0] * Zv[:, 1] + np.tanh(2.0 * Zv[:, 2])
    res = rfm(X, y, iters=5, X_val=X_val, y_val=y_val)
    fraction = _fraction_in_span(res.M, U)
    assert _fraction_in_span(res.history[0].M, U) == pytest.approx(k / d)
    assert fraction >= 0.9  # chance: k / d = 0.15
    assert res.val_mse[-1] < 0.5 * res.val_mse[0]  # the learned metric generalises better than the plain kernel


# ---- (3) the kernel ridge solve -------------------------------------------------------------------------------

def test_kernel_ridge_solution_matches_dense_numpy_solve():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((80, 6)) + 5.0  # an offset: the distances are computed after centring
    Y = np.stack([np.cos(X[:, 0]), X[:, 1] * X[:, 2]], axis=1)
    res = rfm(X, Y, iters=2, bandwidth=5.0, reg=1e-3, power=0.5)
    K = _naive_kernel(X, X, res.M, 5.0)
    np.testing.assert_allclose(laplace_kernel(X, X, res.M, 5.0), K, rtol=1e-10, atol=1e-14)
    alpha = np.linalg.solve(K + 1e-3 * np.eye(80), Y)
    assert np.linalg.norm(res.alpha - alpha) <= 1e-8 * np.linalg.norm(alpha)
    assert res.history[-1].train_mse == pytest.approx(np.mean((K @ alpha - Y) ** 2), rel=1e-6, abs=1e-14)
    Z = rng.standard_normal((7, 6)) + 5.0
    np.testing.assert_allclose(res.predict(Z), _naive_kernel(Z, X, res.M, 5.0) @ alpha, rtol=1e-9, atol=1e-12)


def test_laplace_kernel_plain_and_coincident_points():
    X = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(laplace_kernel(X, X, bandwidth=5.0), [[1.0, np.exp(-1.0)], [np.exp(-1.0), 1.0]],
                               rtol=1e-15)
    M = np.diag([1.0, 0.0])  # points that differ only in a null direction of M coincide in its metric
    K = laplace_kernel(np.array([[0.0, 7.0]]), X, M, bandwidth=5.0)
    np.testing.assert_allclose(K, [[1.0, np.exp(-3.0 / 5.0)]], rtol=1e-15)


# ---- (4) bad inputs -------------------------------------------------------------------------------------------

_X = np.random.default_rng(5).standard_normal((10, 3))
_y = _X[:, 0]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"X": np.full((10, 3), np.nan)}, InputError, "X must be finite"),
    ({"X": np.zeros(10)}, InputError, "X must have shape"),
    ({"X": [["a", "b"]] * 10}, InputTypeError, "X must be a real array"),
    ({"X": _X[:1], "y": _y[:1]}, InputError, "N >= 2"),
    ({"y": np.r_[_y[:9], np.inf]}, InputError, "y must be finite"),
    ({"y": _y[:9]}, InputError, r"y must have shape \(10,\)"),
    ({"y": np.zeros(10, dtype=int)}, InputError, "at least 2 distinct labels"),
    ({"y": _y, "task": "classification"}, InputTypeError, "integer labels"),
    ({"bandwidth": 0.0}, InputError, "bandwidth must be finite and > 0"),
    ({"bandwidth": -1.0}, InputError, "bandwidth"),
    ({"bandwidth": "10"}, InputTypeError, "bandwidth must be a real number"),
    ({"reg": 0.0}, InputError, "reg must be finite and > 0"),
    ({"reg": np.nan}, InputError, "reg must be finite"),
    ({"iters": 0}, InputError, "iters must be an integer >= 1"),
    ({"iters": 2.0}, InputError, "iters must be an integer >= 1"),
    ({"iters": True}, InputError, "iters"),
    ({"power": 0.0}, InputError, r"power must be in \(0, 1\]"),
    ({"power": 1.5}, InputError, r"power must be in \(0, 1\]"),
    ({"diag": 1}, InputTypeError, "diag must be True or False"),
    ({"normalise_trace": "yes"}, InputTypeError, "normalise_trace"),
    ({"kernel": "gaussian"}, InputError, "kernel must be one of"),
    ({"task": "ranking"}, InputError, "task must be one of"),
    ({"X_val": _X}, InputError, "X_val and y_val must be given together"),
    ({"X_val": _X[:, :2], "y_val": _y}, InputError, r"X_val must have shape \(n, 3\)"),
    ({"X_val": _X, "y_val": _y[:5]}, InputError, "y_val must have shape"),
    ({"X_val": _X, "y_val": np.stack([_y, _y], 1)}, InputError, "y_val must have shape"),
    ({"y": np.arange(10) % 2, "X_val": _X[:2], "y_val": np.array([0, 5])}, InputError, "labels seen in y"),
])
def test_bad_inputs_raise_before_any_work(kwargs, exc, match):
    args = {"X": _X, "y": _y, **kwargs}
    with pytest.raises(exc, match=match):
        rfm(args.pop("X"), args.pop("y"), **args)


def test_input_errors_are_value_errors():
    with pytest.raises(ValueError):
        rfm(_X, _y, reg=-1.0)
    with pytest.raises(TypeError):
        rfm(_X, _y, bandwidth=None)


def test_memory_check_names_N(monkeypatch):
    monkeypatch.setattr(rfm_module.backend, "host_memory_available", lambda: 1_000)
    with pytest.raises(MemoryError, match="N = 10 training points"):
        rfm(_X, _y)
    assert rfm_memory_bytes(2000, 64) > 3 * 8 * 2000 ** 2


def test_helper_and_predict_checks():
    rng = np.random.default_rng(6)
    res = rfm(_X, _y, iters=1)
    with pytest.raises(InputError, match=r"X_new must have shape \(n, 3\)"):
        res.predict(np.zeros((2, 4)))
    with pytest.raises(InputError, match="X_new must be finite"):
        res.gradients(np.full((1, 3), np.nan))
    with pytest.raises(InputError, match="classification"):
        res.predict_labels(_X)
    with pytest.raises(InputError, match="M must be positive semidefinite"):
        laplace_kernel(_X, _X, -np.eye(3))
    with pytest.raises(InputError, match="M must be symmetric"):
        laplace_kernel(_X, _X, np.triu(_random_psd(3, rng)) + np.eye(3))
    with pytest.raises(InputError, match="alpha must have shape"):
        predictor_agop(_X, np.ones(9))


def test_rounding_guards_raise_on_impossible_values():
    """Negative squared distances / AGOP eigenvalues beyond the rounding bound cannot come from a PSD M: errors."""
    with pytest.raises(FloatingPointError, match="not positive semidefinite"):
        _sqdist(_X - _X.mean(0), _X - _X.mean(0), -np.eye(3), same=True)
    with pytest.raises(FloatingPointError, match="not positive semidefinite"):
        _psd_power(np.diag([1.0, -1e-3]), 1.0, n_terms=10, diag=False)
    # within rounding: a tiny negative eigenvalue of a PSD sum of outer products becomes exactly 0
    P = _psd_power(np.diag([1.0, -1e-16]), 0.5, n_terms=10, diag=False)
    np.testing.assert_array_equal(np.linalg.eigvalsh(P) >= 0.0, [True, True])
    assert P[1, 1] == 0.0


# ---- (5) invariants of M and the history ----------------------------------------------------------------------

def test_M_symmetric_psd_every_round_and_history_lengths():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 6))
    y = np.stack([X[:, 0] * X[:, 3], X[:, 1]], axis=1)
    for kwargs in ({}, {"power": 0.5}, {"centering": True}, {"normalise_trace": True}, {"diag": True}):
        res = rfm(X, y, iters=3, X_val=X[:20] + 0.1, y_val=y[:20], **kwargs)
        assert len(res.history) == 4 and res.Ms.shape == (4, 6, 6)
        assert [r.iteration for r in res.history] == [0, 1, 2, 3]
        assert res.train_mse.shape == (4,) and res.val_mse.shape == (4,)
        assert res.history[0].train_accuracy is None and res.history[0].val_accuracy is None
        assert res.M is res.history[-1].M
        for r in res.history:
            np.testing.assert_array_equal(r.M, r.M.T)
            w = np.linalg.eigvalsh(r.M)
            assert w.min() >= -1e-14 * w.max()
        if kwargs.get("diag"):
            np.testing.assert_array_equal(res.M, np.diag(np.diag(res.M)))
        if kwargs.get("normalise_trace"):
            assert np.trace(res.M) == pytest.approx(6.0, rel=1e-12)


def test_power_half_squares_to_the_agop():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((70, 4))
    y = X[:, 0] * X[:, 1]
    full = rfm(X, y, iters=1, power=1.0)
    half = rfm(X, y, iters=1, power=0.5)
    np.testing.assert_allclose(half.M @ half.M, full.M, rtol=1e-9, atol=1e-12 * np.abs(full.M).max())


def test_result_is_immutable():
    res = rfm(_X, _y, iters=1)
    assert isinstance(res, RFMResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.M = np.eye(3)
    for a in (res.M, res.alpha, res.X_train, res.history[0].M):
        with pytest.raises(ValueError):
            a[0, 0] = 1.0


def test_classification_by_one_hot_regression():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((400, 6))
    labels = np.where(X[:, 0] * X[:, 1] > 0, 3, 7)  # arbitrary label values
    res = rfm(X[:300], labels[:300], iters=3, X_val=X[300:], y_val=labels[300:])
    np.testing.assert_array_equal(res.classes, [3, 7])
    assert res.predict(X[300:]).shape == (100, 2)
    assert set(np.unique(res.predict_labels(X[300:]))) <= {3, 7}
    acc = res.accuracy(X[300:], labels[300:])
    assert acc == pytest.approx(res.history[-1].val_accuracy)
    assert acc > 0.8 and acc > res.history[0].val_accuracy
    assert res.history[-1].train_accuracy == 1.0


def test_regression_output_shapes():
    res1 = rfm(_X, _y, iters=1)
    assert res1.predict(_X[:4]).shape == (4,) and res1.gradients(_X[:4]).shape == (4, 1, 3)
    res2 = rfm(_X, np.stack([_y, -_y], 1), iters=1)
    assert res2.predict(_X[:4]).shape == (4, 2)
    res3 = rfm(_X, np.arange(10) % 3, iters=1, task="regression")  # integer targets, regression on request
    assert res3.classes is None and res3.predict(_X[:2]).shape == (2,)
