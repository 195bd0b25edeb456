"""Trainer options of the equilibrium experiment's reference protocol: float32 training, a budget in SGD steps,
and the running-average threshold rule (with the epoch and step of each threshold).

Tolerances: float32 against float64 on the same network (float32-rounded start and inputs), 8 steps: losses to
1e-5 relative, parameters to 1e-5 relative (measured 2e-7 and 7e-8 on these cases; docs/training.md has the
figures on deeper networks and longer runs, where the two trajectories drift apart).  The step budget and the
running-average rule are exact (hand-computed cases).
"""
from __future__ import annotations

import numpy as np
import pytest

from sigprop.kernels.learning import training as tr
from sigprop.kernels.learning.datasets import synthetic_data
from sigprop.theory.errors import InputError


def _rel(a, b) -> float:
    num = sum(float(np.sum((x.astype(float) - z) ** 2)) for x, z in zip(a, b))
    return (num / sum(float(np.sum(z ** 2)) for z in b)) ** 0.5


def _params(net):
    return list(net.W) + ([] if net.b is None else list(net.b))


def test_float32_network_is_the_float64_one_rounded():
    a = tr.init_network([5, 7, 3], activation="tanh", bias=True, C_b=0.1, seed=3)
    b = tr.init_network([5, 7, 3], activation="tanh", bias=True, C_b=0.1, seed=3, dtype="float32")
    assert b.dtype == np.float32 and all(p.dtype == np.float32 for p in _params(b))
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(p.astype(np.float32), q)


@pytest.mark.parametrize("act, bias", [("relu", False), ("tanh", True)])
def test_float32_training_agrees_with_float64(act, bias):
    X, y = synthetic_data(64, dim=6, classes=3, seed=0)
    X = X.astype(np.float32).astype(np.float64)          # the same inputs for both
    n32 = tr.init_network([6, 32, 32, 3], activation=act, bias=bias, C_b=0.1 if bias else 0.0, seed=1,
                          dtype="float32")
    start = n32.astype("float64")                        # the same start
    kw = dict(lr=0.05, batch_size=8, epochs=1, seed=2)   # 8 steps
    r32, r64 = tr.train(n32, X, y, **kw), tr.train(start.copy(), X, y, **kw)
    assert r32.steps == r64.steps == 8
    assert all(p.dtype == np.float32 for p in _params(r32.net))
    np.testing.assert_allclose(r32.loss_history, r64.loss_history, rtol=1e-5)
    assert _rel(_params(r32.net), _params(r64.net)) < 1e-5
    assert _rel(_params(r64.net), _params(start)) > 1e-2      # they did move
    assert _rel(_params(r32.net), _params(r64.net)) > 0       # and float32 is not float64


def test_train_dtype_converts_the_network_and_float64_is_unchanged():
    X, y = synthetic_data(30, dim=4, classes=2, seed=0)
    net = tr.init_network([4, 8, 2], seed=1)
    a, b = net.copy(), net.copy()
    ra = tr.train(a, X, y, epochs=2, dtype="float32")
    rb = tr.train(b.astype("float32"), X, y, epochs=2)
    assert a.dtype == np.float32 and ra.loss_history == rb.loss_history
    for p, q in zip(a.W, rb.net.W):
        np.testing.assert_array_equal(p, q)
    c, d = net.copy(), net.copy()
    rc, rd = tr.train(c, X, y, epochs=2), tr.train(d, X, y, epochs=2, dtype="float64")
    assert rc.loss_history == rd.loss_history and all(np.array_equal(p, q) for p, q in zip(c.W, d.W))


def test_step_budget_ends_mid_epoch_and_counts_steps():
    # 40 samples, batches of 8: 5 steps per epoch; momentum 0 so two steps can be replayed by hand
    X, y = synthetic_data(40, dim=4, classes=2, seed=0)
    net = tr.init_network([4, 8, 2], seed=1)
    kw = dict(lr=0.1, momentum=0.0, batch_size=8, seed=3)
    two = tr.train(net.copy(), X, y, epochs=2, **kw)
    r = tr.train(net.copy(), X, y, epochs=10, max_steps=12, measures=[_Spy()], measure_epochs=[3], **kw)
    assert r.steps == 12 and r.step_history == [0, 5, 10, 12] and len(r.loss_history) == 4
    # whichever comes first: the epochs
    assert tr.train(net.copy(), X, y, epochs=2, max_steps=100, **kw).steps == 10
    # epoch 3 was cut short: no 'epoch' record for it, the final one after step 12
    assert [(rec.trigger, rec.epoch, rec.step) for rec in r.records] == [("init", 0, 0), ("final", 3, 12)]
    # the two steps of epoch 3, by hand, from the network after two epochs
    rng = np.random.default_rng(3)
    rng.permutation(40), rng.permutation(40)
    perm = rng.permutation(40)
    want = two.net.copy()
    for k in range(2):
        idx = perm[8 * k:8 * k + 8]
        _, gW, _ = tr.loss_and_gradients(want, X[idx], y[idx], "cross_entropy")
        for w, g in zip(want.W, gW):
            w -= 0.1 * g
    for got, exp in zip(r.net.W, want.W):
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-15)
    # a budget at an epoch end is the same training as that many epochs
    same = tr.train(net.copy(), X, y, epochs=10, max_steps=10, **kw)
    assert same.loss_history == two.loss_history and all(np.array_equal(p, q) for p, q in zip(same.net.W, two.net.W))


class _Spy:
    name = "spy"

    def __call__(self, net):
        return 0.0


def _frozen_regression():
    """All-zero relu network: f = 0 and every gradient 0, so the mini-batch losses are exactly y_a^2."""
    net = tr.init_network([2, 3, 1], seed=0)
    for w in net.W:
        w[...] = 0.0
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    return net, X, np.array([1.0, 0.5])             # sample losses 1 and 0.25; full loss 0.625


def test_running_average_rule_on_a_hand_computed_case():
    net, X, y = _frozen_regression()
    # batches of one sample in the order default_rng(0).permutation(2): epochs 1-3 (0, 1), epoch 4 (1, 0)
    rng = np.random.default_rng(0)
    assert [rng.permutation(2).tolist() for _ in range(4)] == [[0, 1], [0, 1], [0, 1], [1, 0]]
    # r = first loss, then r <- 0.9 r + 0.1 loss:
    r1 = 0.9 * 1.0 + 0.1 * 0.25                        # 0.925
    r2 = 0.9 * (0.9 * r1 + 0.1 * 1.0) + 0.1 * 0.25     # 0.86425
    r3 = 0.9 * (0.9 * r2 + 0.1 * 1.0) + 0.1 * 0.25     # 0.8150425
    r4 = 0.9 * (0.9 * r3 + 0.1 * 0.25) + 0.1 * 1.0     # 0.782684425
    kw = dict(loss="mse", lr=0.1, batch_size=1, epochs=6, thresholds=(0.9, 0.82), seed=0, measures=[_Spy()],
              measure_init=False, measure_final=False)
    r = tr.train(net.copy(), X, y, threshold_rule="running_average", **kw)
    assert np.isnan(r.running_loss_history[0])
    np.testing.assert_allclose(r.running_loss_history[1:5], [r1, r2, r3, r4], rtol=1e-14)
    # 0.9: r1 > 0.9 < r2, r3 -> epoch 3.  0.82: r3 < 0.82 but r2 > 0.82, then r4 < 0.82 -> epoch 4, not 3
    assert r.epoch_at == {0.9: 3, 0.82: 4} and r.step_at == {0.9: 6, 0.82: 8}
    assert [(rec.trigger, rec.epoch, rec.step, rec.threshold) for rec in r.records] == [
        ("threshold", 3, 6, 0.9), ("threshold", 4, 8, 0.82)]
    # the default rule reads the full loss (0.625 from the start): both after epoch 1
    full = tr.train(net.copy(), X, y, **kw)
    assert full.threshold_rule == "full_loss" and full.epoch_at == {0.9: 1, 0.82: 1}
    assert full.step_at == {0.9: 2, 0.82: 2} and full.loss_history == [0.625] * 7


def test_running_average_rule_stops_at_the_last_threshold():
    net, X, y = _frozen_regression()
    r = tr.train(net, X, y, loss="mse", lr=0.1, batch_size=1, epochs=50, thresholds=(0.82,), seed=0,
                 threshold_rule="running_average", stop_at_last_threshold=True)
    assert r.epoch_at == {0.82: 4} and r.steps == 8 and len(r.loss_history) == 5


def test_protocol_options_are_checked():
    X, y = synthetic_data(10, dim=4, classes=2, seed=0)
    net = tr.init_network([4, 3, 2], seed=0)
    cases = [
        (dict(max_steps=0), "max_steps"), (dict(max_steps=1.5), "max_steps"),
        (dict(threshold_rule="ema"), "threshold_rule"), (dict(dtype="float16"), "dtype"),
        (dict(dtype="int64"), "dtype"),
    ]
    for kw, name in cases:
        with pytest.raises(InputError, match=f"^{name} must be"):
            tr.train(net, X, y, **kw)
    with pytest.raises(InputError, match="^dtype must be"):
        tr.init_network([4, 3, 2], dtype="float16")
