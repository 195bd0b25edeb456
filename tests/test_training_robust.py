"""The trainer refuses bad input before any work, naming the argument, and warns when training diverges.

Complex arrays (whose imaginary part NumPy would drop), strings and out-of-range seeds raise ``InputError`` naming
the argument and its allowed range, and leave the network untouched; a divergence gives a
``TrainingDivergenceWarning`` naming the epoch and the SGD step.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from sigprop.kernels.learning import training as tr
from sigprop.kernels.learning.datasets import synthetic_data
from sigprop.theory.errors import InputError, InputTypeError


def _data():
    X, y = synthetic_data(20, dim=4, classes=2, seed=0)
    return X, y, tr.init_network([4, 8, 2], seed=1)


def _unchanged(net, before) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(net.W, before.W))


@pytest.mark.parametrize("case", ["X", "y_labels", "y_targets"])
def test_complex_arrays_are_refused_naming_the_argument(case):
    X, y, net = _data()
    before = net.copy()
    args = {"X": (X + 1j, y, "cross_entropy"), "y_labels": (X, y + 0j, "cross_entropy"),
            "y_targets": (X, np.eye(2)[y] + 1j, "mse")}[case]
    name = case.split("_")[0]
    with pytest.raises(InputTypeError, match=rf"^{name} must be a real numeric array .*complex128"):
        tr.train(net, args[0], args[1], loss=args[2], epochs=1)
    assert _unchanged(net, before)


def test_complex_arrays_are_refused_by_the_other_entry_points():
    X, y, net = _data()
    T = tr.one_hot(y, 2)
    cases = [
        (lambda: tr.forward(net, X + 1j), "X"),
        (lambda: tr.loss_and_gradients(net, X + 1j, y, "cross_entropy"), "X"),
        (lambda: tr.loss_and_gradients(net, X, y + 0j, "cross_entropy"), "y"),
        (lambda: tr.evaluate(net, X + 1j, T, "mse"), "X"),
        (lambda: tr.evaluate(net, X, T + 1j, "mse"), "T"),
        (lambda: tr.evaluate(net, X, T, "mse", labels=y + 0j), "labels"),
    ]
    for fn, name in cases:
        with pytest.raises(InputTypeError, match=rf"^{name} must be a real numeric array"):
            fn()


@pytest.mark.parametrize("bad", ["abc", [[1.0, 2.0], [3.0]], None, np.array([["a", "b"]])])
def test_non_numeric_X_is_refused_naming_X(bad):
    _, y, net = _data()
    with pytest.raises(InputTypeError, match="^X must be a real numeric array"):
        tr.train(net, bad, y, epochs=1)


@pytest.mark.parametrize("bad", [-1, 2**64, "abc", 1.5, True, None])
def test_init_network_seed_is_checked_naming_seed_and_range(bad):
    with pytest.raises(InputError, match=r"^seed must be an int in \[0, 2\^64\)"):
        tr.init_network([4, 3, 2], seed=bad)
    with pytest.raises(InputError, match=r"^seed must be an int in \[0, 2\^64\)"):
        tr.init_mlp(4, 2, depth=1, width=3, seed=bad)


@pytest.mark.parametrize("bad", [-1, 2**64, "abc", 2.0, None])
def test_train_seed_is_checked_before_any_work(bad):
    X, y, net = _data()
    before = net.copy()
    with pytest.raises(InputError, match=r"^seed must be an int in \[0, 2\^64\)"):
        tr.train(net, X, y, epochs=2, seed=bad)
    assert _unchanged(net, before)


def test_seeds_in_range_still_work():
    a = tr.init_network([4, 3, 2], seed=2**64 - 1)
    b = tr.init_network([4, 3, 2], seed=np.uint64(2**64 - 1))
    assert np.array_equal(a.W[0], b.W[0])


def test_divergence_warns_with_the_epoch_and_step():
    # 40 samples in batches of 8: five steps per epoch; lr = 1e6 overflows within the first epoch
    X, y = synthetic_data(40, dim=4, classes=2, seed=0)
    net = tr.init_network([4, 8, 2], seed=1)
    kw = dict(loss="mse", lr=1e6, batch_size=8, epochs=5)
    with np.errstate(all="ignore"), pytest.warns(tr.TrainingDivergenceWarning) as rec:
        r = tr.train(net.copy(), X, y, **kw)
    assert r.diverged and r.diverged_epoch == len(r.loss_history) - 1
    k = r.diverged_step
    assert 0 < k <= r.steps and f"epoch {r.diverged_epoch}, after {k} SGD steps" in str(rec[0].message)
    assert issubclass(tr.TrainingDivergenceWarning, RuntimeWarning)
    # the step is where it happened: the parameters after k steps give a non-finite loss, after k - 1 a finite one
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", tr.TrainingDivergenceWarning)
        at_k = tr.train(net.copy(), X, y, max_steps=k, **kw)
        before_k = tr.train(net.copy(), X, y, max_steps=k - 1, **kw) if k > 1 else None
    assert not np.isfinite(at_k.loss_history[-1])
    assert before_k is None or (np.isfinite(before_k.loss_history[-1]) and not before_k.diverged)


def test_no_warning_without_divergence():
    X, y, net = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = tr.train(net, X, y, lr=0.05, epochs=3)
    assert not r.diverged and r.diverged_step is None and r.diverged_epoch is None
