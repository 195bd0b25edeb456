"""The NumPy MLP trainer: network definition, gradients, features, tangent kernels, measures (hooks), protocol.

Tolerances: finite differences (central, h = 1e-6) to rel 1e-5 / abs 1e-8; exact identities to 1e-12 relative;
init statistics by |z| < 4.5 over 60 networks.  All seeds fixed.
"""
import math

import numpy as np
import pytest

from sigprop.kernels.learning.training import (
    MLP,
    TangentAlignment,
    _forward_pass,
    _gradients,
    apply_measures,
    forward,
    init_mlp,
    init_network,
    iter_layer_features,
    layer_alignments,
    layer_kernels,
    load_digits_data,
    loss_and_gradients,
    network_features,
    one_hot,
    synthetic_data,
    train,
)
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.tangent import (
    centered_kernel_alignment,
    centered_kernel_alignment_rank_one,
    tangent_kernels,
    vectorised_label_kernel,
)

ACTIVATIONS = ["relu", "tanh", "gelu"]


def _params(net):
    return np.concatenate([a.ravel() for a in net.W] + ([] if net.b is None else [a.ravel() for a in net.b]))


# --------------------------------------------------------------------------------------------
# Network definition
# --------------------------------------------------------------------------------------------
def test_init_statistics_and_layout():
    """Per-layer widths; W_i ~ N(0, C_W / fan_in); readout N(0, gain^2 / n_L); biases N(0, C_b); draw order fixed."""
    net = init_network([50, 400, 300, 3], activation="tanh", C_W=1.5, C_b=0.2, bias=True, readout_gain=2.0, seed=1)
    assert net.widths == (50, 400, 300, 3) and net.depth == 2 and net.parametrisation == "standard"
    assert [w.shape for w in net.W] == [(400, 50), (300, 400), (3, 300)]
    # sample variances of 20000 / 120000 / 900 normal draws: within 5 standard errors (sd of s^2 ~ s^2 sqrt(2/n))
    for w, var in ((net.W[0], 1.5 / 50), (net.W[1], 1.5 / 400), (net.W[2], 4.0 / 300)):
        assert abs(w.var() / var - 1) < 5 * math.sqrt(2 / w.size)
    bias_draws = np.concatenate(net.b)
    assert abs(bias_draws.var() / 0.2 - 1) < 5 * math.sqrt(2 / bias_draws.size)
    # the standard normals are drawn weights first (layer order), then biases: same weights with or without biases
    nb = init_network([50, 400, 300, 3], activation="tanh", C_W=1.5, seed=1, readout_gain=2.0)
    assert all(np.array_equal(a, b) for a, b in zip(net.W, nb.W)) and nb.b is None
    zero_b = init_network([5, 4, 2], bias=True, seed=0)
    assert all(np.all(v == 0) for v in zero_b.b)


def test_init_mlp_is_the_uniform_kaiming_relu_network():
    a = init_mlp(6, 3, depth=2, width=8, seed=4)
    b = init_network([6, 8, 8, 3], activation="relu", C_W=2.0, seed=4)
    assert a.activation.name == "relu" and all(np.array_equal(u, v) for u, v in zip(a.W, b.W))
    assert init_network([6, 8, 3], activation="tanh").W[0].var() < init_network([6, 8, 3]).W[0].var()  # LeCun


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_ntk_and_standard_parametrisations_agree_at_init(act, bias):
    """Same draws, scale in the weights or in the multipliers: the same function (to rounding), NTK kernel = s^2 x."""
    kw = dict(activation=act, C_W=1.7, C_b=0.3 if bias else 0.0, bias=bias, seed=5)
    std = init_network([4, 9, 7, 2], **kw)
    ntk = init_network([4, 9, 7, 2], parametrisation="ntk", **kw)
    X = np.random.default_rng(6).standard_normal((5, 4))
    np.testing.assert_allclose(forward(ntk, X)[1], forward(std, X)[1], rtol=1e-12, atol=1e-14)
    # gradients of raw parameters: NTK = s * standard, so the per-layer tangent kernels scale by s^2 (weights)
    for l, F, G in zip(range(2), layer_kernels(std, X)[0], layer_kernels(ntk, X)[0]):
        s2 = 1.7 / std.widths[l]
        np.testing.assert_allclose(G, s2 * (F - bias) + 0.3 * bias, rtol=1e-12)
    np.testing.assert_allclose(layer_kernels(ntk, X)[1], layer_kernels(std, X)[1], rtol=1e-10, atol=1e-14)


def test_copy_is_deep():
    net = init_network([3, 4, 2], bias=True, C_b=0.1, seed=0)
    c = net.copy()
    c.W[0][0, 0] += 1.0
    c.b[0][0] += 1.0
    assert net.W[0][0, 0] != c.W[0][0, 0] and net.b[0][0] != c.b[0][0]
    assert c.activation is net.activation


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------
def _fd_check(net, X, y, loss, wd, rng, h=1e-6):
    val, gW, gb = loss_and_gradients(net, X, y, loss, weight_decay=wd)
    groups = [(net.W, gW)] + ([(net.b, gb)] if net.b is not None else [])
    for params, grads in groups:
        for P, G in zip(params, grads):
            for _ in range(3):
                idx = tuple(rng.integers(0, s) for s in P.shape)
                old = P[idx]
                P[idx] = old + h
                lp = loss_and_gradients(net, X, y, loss, weight_decay=wd)[0]
                P[idx] = old - h
                lm = loss_and_gradients(net, X, y, loss, weight_decay=wd)[0]
                P[idx] = old
                assert G[idx] == pytest.approx((lp - lm) / (2 * h), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("param", ["standard", "ntk"])
def test_gradients_match_finite_differences(loss, act, param):
    """Objective = mean loss + (wd/2)|theta|^2 (weights and biases), gradients w.r.t. the raw parameters."""
    X, y = synthetic_data(7, dim=5, classes=3, seed=1)
    net = init_network([5, 6, 4, 3], activation=act, bias=True, C_b=0.05, parametrisation=param, seed=2)
    _fd_check(net, X, y, loss, 0.03, np.random.default_rng(4))


@pytest.mark.parametrize("bias", [False, True])
def test_gradients_mse_regression_targets(bias):
    X = np.random.default_rng(0).standard_normal((6, 3))
    y = np.sin(X[:, 0])
    net = init_network([3, 5, 1], activation="gelu", bias=bias, C_b=0.1 if bias else 0.0, seed=1)
    _fd_check(net, X, y, "mse", 0.0, np.random.default_rng(1))
    _fd_check(net, X, y, "mse", 0.1, np.random.default_rng(2))


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_network_features_against_finite_differences(act):
    """df/dh_{i-1} and df/dz_i by central differences through the layers above; J_input = J_preact @ W exactly."""
    net = init_network([4, 6, 5, 3], activation=act, bias=True, C_b=0.1, seed=3)
    X = np.random.default_rng(8).standard_normal((3, 4))
    feats = network_features(net, X)
    assert [f.layer for f in feats] == [1, 2, 3]
    H, Z = _forward_pass(net, X)
    phi = net.activation.fn

    def out_from_preact(i, z):  # f given z_i (array index i-1 -> layer i)
        h = phi(z) if i <= net.depth else None
        if h is None:
            return z
        for j in range(i, net.depth + 1):
            z = h @ net.weight(j).T + net.b_scale[j] * net.b[j]
            h = phi(z) if j < net.depth else z
        return h

    def out_from_input(i, h):
        z = h @ net.weight(i - 1).T + net.b_scale[i - 1] * net.b[i - 1]
        return out_from_preact(i, z)

    eps = 1e-6
    for f in feats:
        i = f.layer
        np.testing.assert_array_equal(f.inputs, H[i - 1])
        np.testing.assert_array_equal(f.preact, Z[i - 1])
        for name, base, fn, J in (("input", H[i - 1], out_from_input, f.jac_input),
                                  ("preact", Z[i - 1], out_from_preact, f.jac_preact)):
            for k in range(base.shape[1]):
                d = np.zeros_like(base)
                d[:, k] = eps
                fd = (fn(i, base + d) - fn(i, base - d)) / (2 * eps)     # (N, o): column k of every Jacobian
                np.testing.assert_allclose(J[:, :, k], fd, rtol=1e-6, atol=1e-8, err_msg=f"layer {i} {name}")
        # the exact identity J_input_i = J_preact_i W_i (effective weight), to rounding
        np.testing.assert_allclose(f.jac_input, f.jac_preact @ f.weight, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(feats[-1].preact, forward(net, X)[1])


def test_iter_layer_features_streams_top_down():
    net = init_mlp(3, 2, depth=3, width=5, seed=0)
    assert [f.layer for f in iter_layer_features(net, np.ones((2, 3)))] == [4, 3, 2, 1]


# --------------------------------------------------------------------------------------------
# Tangent kernels and alignment
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("bias", [False, True])
def test_layer_tangent_kernels_equal_gradient_inner_products(act, bias):
    X, y = synthetic_data(4, dim=5, classes=2, seed=5)
    net = init_network([5, 7, 7, 7, 2], activation=act, bias=bias, C_b=0.1 if bias else 0.0, seed=6)
    _, _, T = layer_kernels(net, X)
    N, o = 4, 2
    grads = {}
    for i in range(o):
        for a in range(N):
            H, Z = _forward_pass(net, X[a:a + 1])
            dF = np.zeros((1, o))
            dF[0, i] = 1.0
            gW, gb = _gradients(net, H, Z, dF)
            grads[i * N + a] = [np.concatenate([gW[l].ravel()] + ([gb[l]] if bias else [])) for l in range(3)]
    for l in range(3):
        G = np.array([grads[k][l] for k in range(o * N)])
        np.testing.assert_allclose(T[l], G @ G.T, rtol=1e-10, atol=1e-12)
    Y = one_hot(y, o)
    al = layer_alignments(net, X, Y)
    np.testing.assert_allclose(al, [centered_kernel_alignment(t, vectorised_label_kernel(Y)) for t in T], atol=1e-12)


@pytest.mark.parametrize("m", [2, 7, 60])
def test_rank_one_cka_equals_the_general_cka(m):
    rng = np.random.default_rng(m)
    A = rng.standard_normal((m, m + 2))
    y = rng.standard_normal(m)
    for K in (A @ A.T, rng.standard_normal((m, m))):   # symmetric PSD and a general square matrix
        assert centered_kernel_alignment_rank_one(K, y) == pytest.approx(
            centered_kernel_alignment(K, np.outer(y, y)), rel=1e-12, abs=1e-14)
    with pytest.raises(InputError, match="y must be"):
        centered_kernel_alignment_rank_one(A @ A.T, y[:-1])
    with pytest.raises(InputError, match="zero centred norm"):
        centered_kernel_alignment_rank_one(A @ A.T, np.ones(m))
    with pytest.raises(InputError, match="zero centred norm"):
        centered_kernel_alignment_rank_one(np.ones((m, m)), y)
    with pytest.raises(InputError, match="non-finite"):
        centered_kernel_alignment_rank_one(np.full((m, m), np.nan), y)
    with pytest.raises(InputError, match="square"):
        centered_kernel_alignment_rank_one(A, y)


def test_init_kernels_against_infinite_width_theory():
    """Scalar-readout Kaiming nets at init: C_W / n * Theta_l (standard param.) averages to the theory (|z| < 4.5)."""
    X = np.random.default_rng(7).standard_normal((3, 20))
    X /= np.sqrt((X ** 2).mean(axis=1, keepdims=True))
    depth, width, nets = 4, 256, 60
    th = tangent_kernels("relu", X @ X.T / 20, depth, 2.0, 0.0)
    samples = []
    for s in range(nets):
        mlp = init_mlp(20, 1, depth=depth, width=width, seed=1000 + s)
        _, bwd, T = layer_kernels(mlp, X)
        fan_in = np.array([20] + [width] * (depth - 1))[:, None, None]
        samples.append(np.concatenate([bwd, T * 2.0 / fan_in]))
    samples = np.array(samples)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / math.sqrt(nets)
    z = (mean - np.concatenate([th.backward, th.tangent])) / se
    assert np.all(np.abs(z) < 4.5), np.abs(z).max()


# --------------------------------------------------------------------------------------------
# Measures (hooks)
# --------------------------------------------------------------------------------------------
class _Spy:
    """A measure that counts its calls and returns a copy of the readout weights."""

    name = "spy"

    def __init__(self):
        self.calls = 0

    def __call__(self, net):
        self.calls += 1
        return net.W[-1].copy()


def test_hooks_run_at_the_chosen_epochs_and_thresholds():
    X, y = synthetic_data(200, dim=16, classes=3, separation=1.5, seed=8)
    net = init_mlp(16, 3, depth=2, width=32, seed=9)
    spy = _Spy()
    r = train(net, X, y, lr=0.02, epochs=10, thresholds=(0.5, 0.3, 10.0, 1e-9), measure_epochs=[1, 4, 10],
              measures=[spy])
    h = r.loss_history
    # epoch_at: the first epoch whose loss is below each threshold (10.0: already after epoch 1; 1e-9: never)
    for t in (0.5, 0.3, 10.0):
        e = r.epoch_at[t]
        assert h[e] < t and all(v >= t for v in h[1:e])
    assert 1e-9 not in r.epoch_at and r.at_threshold("spy", 1e-9) is None
    want = {("init", 0), ("final", 10)} | {("epoch", e) for e in (1, 4, 10)} | {("threshold", r.epoch_at[t])
                                                                                  for t in (0.5, 0.3, 10.0)}
    assert {(rec.trigger, rec.epoch) for rec in r.records} == want
    # one evaluation per distinct epoch, shared by its triggers; each record carries the loss at its epoch
    assert spy.calls == len({e for _, e in want})
    assert all(rec.loss == h[rec.epoch] for rec in r.records)
    assert r.at_epoch("spy", 10) is r.final("spy")
    np.testing.assert_array_equal(r.final("spy"), net.W[-1])
    assert not np.array_equal(r.initial("spy"), r.final("spy"))
    assert r.last("spy")[0] == f"loss<{min(r.epoch_at):g}"


def test_stop_at_last_threshold_and_no_measures():
    X, y = synthetic_data(120, dim=8, classes=2, separation=2.0, seed=1)
    net = init_mlp(8, 2, depth=2, width=32, seed=2)
    r = train(net, X, y, lr=0.05, epochs=30, thresholds=(0.6,), stop_at_last_threshold=True)
    assert len(r.loss_history) == r.epoch_at[0.6] + 1 < 31 and r.records == []


def test_measure_on_an_untrained_network_equals_the_init_record():
    X, y = synthetic_data(30, dim=6, classes=3, seed=3)
    net = init_network([6, 16, 16, 3], activation="tanh", seed=4)
    m = TangentAlignment(X[:10], y[:10])

    def readout_norm(net):
        return float(np.linalg.norm(net.W[-1]))

    before = apply_measures(net, [m, readout_norm])
    assert list(before) == ["tangent_alignment", "readout_norm"] and before["tangent_alignment"].shape == (2,)
    r = train(net.copy(), X, y, lr=0.01, epochs=1, measures=[m, readout_norm])
    np.testing.assert_array_equal(r.initial("tangent_alignment"), before["tangent_alignment"])
    assert r.initial("readout_norm") == before["readout_norm"]
    with pytest.raises(InputError, match="distinct names"):
        apply_measures(net, [readout_norm, readout_norm])
    with pytest.raises(InputTypeError, match="callable"):
        apply_measures(net, [3])


def test_training_raises_alignment_on_separable_data():
    X, y = synthetic_data(200, dim=16, classes=3, separation=1.5, seed=8)
    mlp = init_mlp(16, 3, depth=4, width=64, seed=9)
    r = train(mlp, X, y, loss="cross_entropy", lr=0.02, epochs=15, thresholds=(0.5, 0.1),
              measures=[TangentAlignment(X[:30], y[:30])])
    assert r.loss_history[-1] < 0.5 * r.loss_history[0]
    at = r.at_threshold("tangent_alignment", 0.5)
    assert at.shape == (4,) and at.mean() > r.initial("tangent_alignment").mean()


# --------------------------------------------------------------------------------------------
# Training protocol
# --------------------------------------------------------------------------------------------
def test_mse_on_digits_trains():
    X, y = load_digits_data(150, seed=0)
    assert X.shape == (150, 64) and np.allclose((X ** 2).mean(axis=1), 1.0)
    mlp = init_mlp(64, 10, depth=3, width=64, bias=True, seed=1)
    r = train(mlp, X, y, loss="mse", lr=0.02, epochs=8)
    assert r.loss_history[-1] < r.loss_history[0] and r.accuracy_history[-1] > 0.5


@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_regression_with_mse_trains(act):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4))
    y = X[:, 0] * X[:, 1]
    net = init_network([4, 32, 32, 1], activation=act, bias=True, C_b=0.05, seed=1)
    r = train(net, X, y, loss="mse", lr=0.05, epochs=20, batch_size=10)
    assert r.loss_history[-1] < 0.5 * r.loss_history[0] and math.isnan(r.accuracy_history[-1])


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_one_full_batch_step_is_clipped_sgd_with_weight_decay(bias, wd):
    """One full-batch step without momentum: theta <- theta - lr (g min(1, c/|g|) + wd theta), g the loss gradient."""
    X, y = synthetic_data(40, dim=6, classes=3, seed=2)
    base = init_network([6, 16, 16, 3], bias=bias, C_b=0.1 if bias else 0.0, seed=4)
    _, gW, gb = loss_and_gradients(base, X, y, "cross_entropy")
    g = np.concatenate([a.ravel() for a in gW] + ([] if gb is None else [a.ravel() for a in gb]))
    gnorm = float(np.linalg.norm(g))
    lr = 0.1
    for clip, expect_clipped in ((0.25 * gnorm, 1), (4.0 * gnorm, 0)):
        net = base.copy()
        r = train(net, X, y, lr=lr, momentum=0.0, batch_size=40, epochs=1, clip_norm=clip, weight_decay=wd)
        step = _params(base) - _params(net)
        assert r.clipped_steps == expect_clipped
        np.testing.assert_allclose(step, lr * (g * min(1.0, clip / gnorm) + wd * _params(base)), rtol=1e-9,
                                   atol=1e-13)
    # no clipping and a threshold above every gradient give the same trajectory
    a, b = base.copy(), base.copy()
    train(a, X, y, lr=lr, epochs=2)
    train(b, X, y, lr=lr, epochs=2, clip_norm=1e12)
    # bits: the same NumPy/BLAS calls in one process, and the clip factor min(1, 1e12 / |g|) is exactly 1.0
    np.testing.assert_array_equal(_params(a), _params(b))


def test_momentum_accumulates_two_steps():
    """Two full-batch steps: v1 = g0, v2 = mu g0 + g1, theta2 = theta0 - lr (v1 + v2)."""
    X, y = synthetic_data(20, dim=4, classes=2, seed=0)
    base = init_network([4, 8, 2], activation="tanh", seed=1)
    lr, mu = 0.1, 0.9
    net = base.copy()
    train(net, X, y, lr=lr, momentum=mu, batch_size=20, epochs=2)
    g0 = loss_and_gradients(base, X, y, "cross_entropy")[1]
    mid = base.copy()
    for w, g in zip(mid.W, g0):
        w -= lr * g
    g1 = loss_and_gradients(mid, X, y, "cross_entropy")[1]
    want = [w - lr * (a + mu * a + b) for w, a, b in zip(base.W, g0, g1)]
    for got, exp in zip(net.W, want):
        np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-14)


def test_divergence_stops_training_and_skips_the_final_measure():
    X, y = synthetic_data(20, dim=4, classes=2, seed=0)
    net = init_network([4, 8, 2], seed=1)
    with np.errstate(all="ignore"):
        r = train(net, X, y, loss="mse", lr=1e6, epochs=5, measures=[_Spy()])
    assert r.diverged and r.final("spy") is None and r.initial("spy") is not None


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
def test_bad_inputs():
    X, y = synthetic_data(10, dim=4, classes=2)
    mlp = init_mlp(4, 2, depth=2, width=8)
    cases = [
        (lambda: train(mlp, X, y, loss="hinge"), InputError, "loss"),
        (lambda: train(mlp, X[:, :3], y), InputError, "X must be"),
        (lambda: train(mlp, np.where(X > 1, np.nan, X), y), InputError, "non-finite"),
        (lambda: train(mlp, X, y + 5), InputError, "labels"),
        (lambda: train(mlp, X, y.astype(float)), InputError, "cross_entropy needs integer"),
        (lambda: train(mlp, X, np.zeros((10, 3)), loss="mse"), InputError, "mse targets"),
        (lambda: train(mlp, X, y, lr=-1.0), InputError, "lr"),
        (lambda: train(mlp, X, y, lr=0.0), InputError, "lr"),
        (lambda: train(mlp, X, y, momentum=1.0), InputError, "momentum"),
        (lambda: train(mlp, X, y, weight_decay=-0.1), InputError, "weight_decay"),
        (lambda: train(mlp, X, y, batch_size=0), InputError, "batch_size"),
        (lambda: train(mlp, X, y, thresholds=(0.0,)), InputError, "thresholds"),
        (lambda: train(mlp, X, y, measure_epochs=(0,)), InputError, "measure_epochs"),
        (lambda: train(mlp, X, y, measures=["x"]), InputTypeError, "callable"),
        (lambda: init_mlp(4, 2, depth=0), InputError, "depth"),
        (lambda: init_network([4, 0, 2]), InputError, r"widths\[1\]"),
        (lambda: init_network([4, 2]), InputError, "widths"),
        (lambda: init_network([4, 3, 2], activation="nosuch"), InputError, "nosuch"),
        (lambda: init_network([4, 3, 2], C_W=0.0), InputError, "C_W"),
        (lambda: init_network([4, 3, 2], C_b=-1.0), InputError, "C_b"),
        (lambda: init_network([4, 3, 2], parametrisation="mup"), InputError, "parametrisation"),
        (lambda: init_network([4, 3, 2], parametrisation="ntk", bias=True), InputError, "C_b must be > 0"),
        (lambda: layer_alignments(mlp, X, one_hot(y, 3)), InputError, "label matrix"),
        (lambda: layer_kernels(mlp, X, outputs=[5]), InputError, "outputs"),
        (lambda: network_features(mlp, X[:, :2]), InputError, "X must be"),
        (lambda: TangentAlignment(X, y[:3]), InputError, "labels"),
    ]
    for bad in (0.0, -1.0, math.inf, math.nan):
        cases.append((lambda bad=bad: train(mlp, X, y, clip_norm=bad), InputError, "clip_norm"))
    cases.append((lambda: train(mlp, X, y, clip_norm="2"), InputTypeError, "clip_norm"))
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn()
    assert isinstance(mlp, MLP)
