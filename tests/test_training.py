"""The NumPy MLP trainer: gradients, per-layer tangent kernels, alignment, training protocol, init statistics."""
import math

import numpy as np
import pytest

from sigprop.kernels.training import (
    _gradients,
    _loss_and_dF,
    forward,
    init_mlp,
    layer_alignments,
    layer_kernels,
    load_digits_data,
    one_hot,
    synthetic_data,
    train,
)
from sigprop.theory.tangent import centered_kernel_alignment, tangent_kernels, vectorised_label_kernel


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("bias", [False, True])
def test_gradients_match_finite_differences(loss, bias):
    X, y = synthetic_data(7, dim=5, classes=3, seed=1)
    mlp = init_mlp(5, 3, depth=3, width=6, bias=bias, seed=2)
    if bias:
        for b in mlp.b:
            b += 0.1 * np.random.default_rng(3).standard_normal(b.shape)
    Y = one_hot(y, 3)
    H, F = forward(mlp, X)
    _, dF = _loss_and_dF(F, Y, loss)
    gW, gb = _gradients(mlp, H, dF)
    rng = np.random.default_rng(4)
    h = 1e-6
    for l in range(4):
        params = [(mlp.W[l], gW[l])] + ([(mlp.b[l], gb[l])] if bias else [])
        for P, G in params:
            idx = tuple(rng.integers(0, s) for s in P.shape)
            old = P[idx]
            P[idx] = old + h
            lp = _loss_and_dF(forward(mlp, X)[1], Y, loss)[0]
            P[idx] = old - h
            lm = _loss_and_dF(forward(mlp, X)[1], Y, loss)[0]
            P[idx] = old
            assert G[idx] == pytest.approx((lp - lm) / (2 * h), rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("bias", [False, True])
def test_layer_tangent_kernels_equal_gradient_inner_products(bias):
    X, y = synthetic_data(4, dim=5, classes=2, seed=5)
    mlp = init_mlp(5, 2, depth=3, width=7, bias=bias, seed=6)
    _, _, T = layer_kernels(mlp, X)
    N, o = 4, 2
    grads = {}
    for i in range(o):
        for a in range(N):
            H, F = forward(mlp, X[a:a + 1])
            dF = np.zeros((1, o))
            dF[0, i] = 1.0
            gW, gb = _gradients(mlp, H, dF)
            grads[i * N + a] = [np.concatenate([gW[l].ravel()] + ([gb[l]] if bias else [])) for l in range(3)]
    for l in range(3):
        G = np.array([grads[k][l] for k in range(o * N)])
        assert np.allclose(T[l], G @ G.T, rtol=1e-10, atol=1e-12)
    Y = one_hot(y, o)
    al = layer_alignments(mlp, X, Y)
    assert np.allclose(al, [centered_kernel_alignment(t, vectorised_label_kernel(Y)) for t in T], atol=1e-12)


def test_init_kernels_against_infinite_width_theory():
    """Scalar-readout Kaiming nets at init: C_W / n * Theta_l (standard param.) averages to the theory (|z| < 4)."""
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


def test_training_reduces_loss_and_records_thresholds():
    X, y = synthetic_data(200, dim=16, classes=3, separation=1.5, seed=8)
    mlp = init_mlp(16, 3, depth=4, width=64, seed=9)
    r = train(mlp, X, y, loss="cross_entropy", lr=0.02, epochs=15, thresholds=(0.5, 0.1),
              align_X=X[:30], align_labels=y[:30])
    assert r.loss_history[-1] < 0.5 * r.loss_history[0]
    assert 0.5 in r.alignment_at and r.alignment_at[0.5].shape == (4,)
    e = r.epoch_at[0.5]
    assert r.loss_history[e] < 0.5 and all(v >= 0.5 for v in r.loss_history[:e])
    # training raises the alignment of the hidden layers with the labels
    assert r.alignment_at[0.5].mean() > r.alignment_init.mean()
    assert r.last_alignment()[0].startswith("loss<")


def test_mse_on_digits_trains():
    X, y = load_digits_data(150, seed=0)
    assert X.shape == (150, 64) and np.allclose((X ** 2).mean(axis=1), 1.0)
    mlp = init_mlp(64, 10, depth=3, width=64, bias=True, seed=1)
    r = train(mlp, X, y, loss="mse", lr=0.02, epochs=8, thresholds=(0.08,), align_X=X[:20], align_labels=y[:20])
    assert r.loss_history[-1] < r.loss_history[0] and r.accuracy_history[-1] > 0.5


@pytest.mark.parametrize("bias", [False, True])
def test_gradient_clipping_rescales_the_full_batch_step(bias):
    """One full-batch step without momentum moves the parameters by -lr g min(1, c/|g|), g the global gradient."""
    X, y = synthetic_data(40, dim=6, classes=3, seed=2)
    Y = one_hot(y, 3)
    base = init_mlp(6, 3, depth=3, width=16, bias=bias, seed=4)
    H, F = forward(base, X)
    _, dF = _loss_and_dF(F, Y, "cross_entropy")
    gW, gb = _gradients(base, H, dF)
    g = np.concatenate([a.ravel() for a in gW] + ([] if gb is None else [a.ravel() for a in gb]))
    gnorm = float(np.linalg.norm(g))

    def params(m):
        return np.concatenate([a.ravel() for a in m.W] + ([] if m.b is None else [a.ravel() for a in m.b]))

    lr = 0.1
    for clip, expect_clipped in ((0.25 * gnorm, 1), (4.0 * gnorm, 0)):
        mlp = base.copy()
        r = train(mlp, X, y, lr=lr, momentum=0.0, batch_size=40, epochs=1, thresholds=(), clip_norm=clip,
                  align_X=X[:5], align_labels=y[:5], final_alignment=False)
        step = params(base) - params(mlp)
        assert r.clipped_steps == expect_clipped
        np.testing.assert_allclose(step, lr * g * min(1.0, clip / gnorm), rtol=1e-9, atol=1e-13)
    # no clipping and a threshold above every gradient give the same trajectory
    a, b = base.copy(), base.copy()
    train(a, X, y, lr=lr, epochs=2, thresholds=(), final_alignment=False, align_X=X[:5], align_labels=y[:5])
    train(b, X, y, lr=lr, epochs=2, thresholds=(), final_alignment=False, align_X=X[:5], align_labels=y[:5],
          clip_norm=1e12)
    # bits: the same NumPy/BLAS calls in one process, and the clip factor min(1, 1e12 / |g|) is exactly 1.0
    np.testing.assert_array_equal(params(a), params(b))


def test_bad_inputs():
    X, y = synthetic_data(10, dim=4, classes=2)
    mlp = init_mlp(4, 2, depth=2, width=8)
    with pytest.raises(ValueError, match="loss"):
        train(mlp, X, y, loss="hinge")
    with pytest.raises(ValueError, match="X must be"):
        train(mlp, X[:, :3], y)
    with pytest.raises(ValueError, match="labels"):
        train(mlp, X, y + 5)
    with pytest.raises(ValueError, match="lr"):
        train(mlp, X, y, lr=-1.0)
    for bad in (0.0, -1.0, math.inf, math.nan, "2"):
        with pytest.raises(ValueError, match="clip_norm"):
            train(mlp, X, y, clip_norm=bad)
    with pytest.raises(ValueError, match="depth"):
        init_mlp(4, 2, depth=0)
    with pytest.raises(ValueError, match="label matrix"):
        layer_alignments(mlp, X, one_hot(y, 3))
    with pytest.raises(ValueError, match="outputs"):
        layer_kernels(mlp, X, outputs=[5])
