"""Data sets of sigprop.kernels.learning.datasets: reproducible by seed, U orthonormal, targets as defined.

Tolerances: orthonormality and the link functions to 1e-12; moments by 5 standard errors.
"""
import math

import numpy as np
import pytest

from sigprop.kernels.learning import datasets, training
from sigprop.kernels.learning.datasets import (
    load_digits_data,
    multi_index_data,
    product_task,
    random_orthonormal,
    relu_sum_task,
    synthetic_data,
)
from sigprop.theory.errors import InputError, InputTypeError

TASKS = [
    lambda seed: product_task(50, dim=8, seed=seed),
    lambda seed: relu_sum_task(50, dim=8, k=3, seed=seed),
    lambda seed: relu_sum_task(50, dim=8, k=2, noise=0.1, seed=seed),
    lambda seed: multi_index_data(50, 8, 4, lambda P: np.tanh(P).sum(axis=1), seed=seed),
]


@pytest.mark.parametrize("task", TASKS)
def test_teacher_tasks_are_reproducible_and_U_orthonormal(task):
    a, b, c = task(3), task(3), task(4)
    for x, z in zip(a, b):
        np.testing.assert_array_equal(x, z)
    assert not np.array_equal(a.X, c.X) and not np.array_equal(a.U, c.U)
    X, y, U = a
    k = U.shape[1]
    assert X.shape == (50, 8) and y.shape == (50,) and U.shape == (8, k) and k < 8
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)


def test_targets_depend_only_on_the_projections():
    X, y, U = product_task(200, dim=10, seed=1)
    P = X @ U
    np.testing.assert_allclose(y, P[:, 0] * P[:, 1], rtol=1e-12, atol=1e-12)
    # moving x orthogonally to span(U) leaves y unchanged
    perp = np.random.default_rng(2).standard_normal((200, 10))
    perp -= perp @ U @ U.T
    P2 = (X + perp) @ U
    np.testing.assert_allclose(P2[:, 0] * P2[:, 1], y, rtol=1e-10, atol=1e-10)
    X, y, U = relu_sum_task(200, dim=10, k=3, seed=1)
    np.testing.assert_allclose(y, np.maximum(X @ U, 0).sum(axis=1) - 3 / math.sqrt(2 * math.pi), atol=1e-12)


def test_teacher_moments():
    """x ~ N(0, I): E y = 0 and Var y = 1 for the product; Var y = k (1/2 - 1/(2 pi)) for the relu sum."""
    n = 20000
    _, y, _ = product_task(n, dim=6, seed=0)
    assert abs(y.mean()) < 5 / math.sqrt(n) and abs(y.var() - 1.0) < 5 * math.sqrt(8 / n)  # Var(p1^2 p2^2) = 8
    _, y, _ = relu_sum_task(n, dim=6, k=3, seed=0)
    v = 3 * (0.5 - 1 / (2 * math.pi))
    assert abs(y.mean()) < 5 * math.sqrt(v / n) and abs(y.var() / v - 1) < 0.05


def test_noise_is_added_after_the_clean_draws():
    clean = relu_sum_task(30, dim=5, k=2, seed=7)
    noisy = relu_sum_task(30, dim=5, k=2, noise=0.5, seed=7)
    np.testing.assert_array_equal(clean.X, noisy.X)
    np.testing.assert_array_equal(clean.U, noisy.U)
    assert 0.2 < np.std(noisy.y - clean.y) < 0.8


def test_random_orthonormal_is_haar_like():
    """E[U U^T] = (k/d) I for Haar U: the average projector over 400 draws is within 0.06 of (k/d) I."""
    rng = np.random.default_rng(0)
    d, k = 6, 2
    avg = np.mean([U @ U.T for U in (random_orthonormal(d, k, rng) for _ in range(400))], axis=0)
    np.testing.assert_allclose(avg, k / d * np.eye(d), atol=0.06)


def test_digits_identical_to_the_original_recipe_and_reexported():
    """Features centred over all 1797 samples, rows scaled to |x|^2/d = 1, then default_rng(seed).permutation."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    Xr = raw.data - raw.data.mean(axis=0, keepdims=True)
    Xr = Xr / np.sqrt(np.mean(Xr * Xr, axis=1, keepdims=True))
    for n, seed in ((100, 3), (None, 0)):
        X, y = load_digits_data(n, seed=seed)
        idx = np.random.default_rng(seed).permutation(1797)[: n or 1797]
        np.testing.assert_array_equal(X, Xr[idx])
        np.testing.assert_array_equal(y, raw.target[idx])
        assert y.dtype == np.int64
    assert training.load_digits_data is datasets.load_digits_data
    assert training.synthetic_data is datasets.synthetic_data
    a, b = synthetic_data(20, dim=4, classes=3, seed=1), synthetic_data(20, dim=4, classes=3, seed=1)
    np.testing.assert_array_equal(a[0], b[0])


def test_bad_inputs():
    cases = [
        (lambda: product_task(10, dim=1), InputError, "dim"),
        (lambda: relu_sum_task(10, dim=4, k=5), InputError, r"k must be an integer in \[1, 4\]"),
        (lambda: relu_sum_task(0), InputError, "n"),
        (lambda: relu_sum_task(10, noise=-1.0), InputError, "noise"),
        (lambda: relu_sum_task(10, noise=math.nan), InputError, "noise"),
        (lambda: multi_index_data(10, 4, 2, "x"), InputTypeError, "link"),
        (lambda: multi_index_data(10, 4, 2, lambda P: P), InputError, "link must return"),
        (lambda: multi_index_data(10, 4, 2, lambda P: P[:, 0] / 0.0), InputError, "finite"),
        (lambda: multi_index_data(10.0, 4, 2, lambda P: P[:, 0]), InputTypeError, "n must be an integer"),
        (lambda: load_digits_data(0), InputError, "n"),
        (lambda: load_digits_data(5000), InputError, "n"),
        (lambda: synthetic_data(10, classes=1), InputError, "classes"),
    ]
    for fn, exc, match in cases:
        with np.errstate(all="ignore"), pytest.raises(exc, match=match):
            fn()


def test_inputs_with_gram_is_exact_and_refuses_what_it_cannot_factor():
    """X = sqrt(P) chol(G0): X X^T / P = G0 to rounding; non-symmetric, indefinite or non-square G0 named."""
    from sigprop.kernels.learning.datasets import inputs_with_gram
    from sigprop.theory.errors import InputError

    G0 = np.array([[1.0, 0.6, -0.2], [0.6, 1.2, 0.3], [-0.2, 0.3, 0.9]])
    X = inputs_with_gram(G0)
    np.testing.assert_allclose(X @ X.T / 3, G0, rtol=0, atol=1e-15)
    for bad, match in ((np.array([[1.0, 0.2], [0.3, 1.0]]), "symmetric"), (np.array([[1.0, 2.0], [2.0, 1.0]]),
                                                                              "positive definite"),
                       (np.ones((2, 3)), "square"), (np.array([[np.nan]]), "finite")):
        with pytest.raises(InputError, match=match):
            inputs_with_gram(bad)
