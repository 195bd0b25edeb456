"""Infinite-width tangent-kernel decomposition and centred kernel alignment."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory.activations import activation
from sigprop.theory.gaussian import expect2
from sigprop.theory.meanfield import kernel_recursion
from sigprop.theory.tangent import (
    backward_kernels,
    center_kernel,
    centered_kernel_alignment,
    forward_kernels,
    label_alignment,
    label_kernel,
    pair_expectations,
    tangent_kernels,
    vectorised_label_kernel,
)


def _psd(seed, m=6, rank=3):
    A = np.random.default_rng(seed).standard_normal((m, rank))
    return A @ A.T


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 10 ** 6), scale=st.floats(1e-3, 1e3), shift=st.floats(-10, 10))
def test_cka_identities(seed, scale, shift):
    K1, K2 = _psd(seed), _psd(seed + 1)
    a = centered_kernel_alignment(K1, K2)
    assert -1 - 1e-12 <= a <= 1 + 1e-12
    assert a == pytest.approx(centered_kernel_alignment(K2, K1), abs=1e-12)
    assert a == pytest.approx(centered_kernel_alignment(scale * K1 + shift, K2), abs=1e-9)  # centring kills constants
    assert centered_kernel_alignment(K1, K1) == pytest.approx(1.0, abs=1e-12)


def test_cka_by_hand():
    K1 = np.diag([1.0, 2.0, 3.0])
    K2 = np.ones((3, 3)) + np.diag([0.0, 0.0, 1.0])
    C = np.eye(3) - 1 / 3
    a, b = C @ K1 @ C, C @ K2 @ C
    assert np.allclose(center_kernel(K1), a)
    assert centered_kernel_alignment(K1, K2) == pytest.approx(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_label_kernels_and_dispatch():
    y = np.array([0, 1, 1, 2])
    Kl = label_kernel(y)
    assert np.array_equal(Kl, (y[:, None] == y[None, :]).astype(float))
    V = vectorised_label_kernel(y)
    assert V.shape == (12, 12) and V[1 * 4 + 1, 1 * 4 + 2] == 1 and V[0, 1 * 4 + 1] == 1 and V[0, 1] == 0
    assert label_alignment(Kl, y) == pytest.approx(1.0)
    assert label_alignment(V, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="does not match"):
        label_alignment(np.eye(5), y)
    with pytest.raises(ValueError, match="shape"):
        label_alignment(np.eye(4), np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="zero centred norm"):
        centered_kernel_alignment(np.ones((4, 4)), Kl)
    with pytest.raises(ValueError, match="same shape"):
        centered_kernel_alignment(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="square"):
        centered_kernel_alignment(np.ones((3, 4)), np.eye(3))


@pytest.mark.parametrize("name, params", [("relu", {}), ("leaky_relu", {"slope": 0.3}), ("abs", {})])
def test_closed_form_pair_expectations_match_quadrature(name, params):
    act = activation(name, **params)
    K = np.array([[1.3, -0.4, 0.9], [-0.4, 0.7, 0.2], [0.9, 0.2, 1.1]])
    pp, dd = pair_expectations(act, K)
    d = lambda x: float(act.deriv(np.asarray(x)))  # the registry's relu deriv needs an array argument
    for a, b in [(0, 1), (1, 2), (1, 1)]:
        K2 = K[np.ix_([a, b], [a, b])]
        assert pp[a, b] == pytest.approx(expect2(lambda x, y: act.fn(x) * act.fn(y), K2, act.kinks), abs=1e-10)
        if a != b:
            assert dd[a, b] == pytest.approx(expect2(lambda x, y: d(x) * d(y), K2, act.kinks, epsabs=1e-10), abs=1e-8)


@pytest.mark.parametrize("name, C_W, C_b", [("relu", 2.0, 0.1), ("tanh", 1.3, 0.05)])
def test_forward_matches_meanfield_recursion(name, C_W, C_b):
    X = np.random.default_rng(3).standard_normal((4, 10))
    G0 = X @ X.T / 10
    K, H, D = forward_kernels(name, G0, 5, C_W, C_b)
    assert np.allclose(K, kernel_recursion(name, G0, 5, C_W, C_b), rtol=1e-9, atol=1e-12)


def test_backward_and_tangent_structure():
    X = np.random.default_rng(4).standard_normal((3, 8))
    G0 = X @ X.T / 8
    tk = tangent_kernels("relu", G0, 6, 2.0, 0.0)
    _, H, D = forward_kernels("relu", G0, 6, 2.0, 0.0)
    B = backward_kernels(D, 2.0)
    assert np.allclose(tk.backward, B)
    # at the ReLU critical point the diagonal is preserved: K_aa = 2 G0_aa, <phi'^2> = 1/2, so B_aa = 2^(L-l-1) / 2 ...
    assert np.allclose(np.diagonal(tk.preact, axis1=1, axis2=2), 2 * np.diag(G0))
    assert np.allclose(np.diagonal(tk.backward, axis1=1, axis2=2), 0.5)
    assert np.allclose(tk.tangent[0], 2 * G0 * B[0])
    assert np.allclose(tk.tangent[3], 2 * H[2] * B[3])


def test_infinite_width_kernels_against_explicit_simulation():
    """Theory must hold: simulated backward and tangent Grams at width 512 agree within |z| < 4 (1/n bias << SE)."""
    from sigprop.kernels.simulate import simulate

    X = np.random.default_rng(5).standard_normal((3, 16))
    depth = 4
    r = simulate(X, depth=depth, width=512, activation="relu", C_W=2.0, C_b=0.1, n_networks=64,
                 method="explicit", backward=True, seed=11)
    th = tangent_kernels("relu", X @ X.T / 16, depth, 2.0, 0.1)
    for sim, theory in ((r.backward_gram, th.backward), (r.tangent_gram, th.tangent)):
        mean = sim.mean(axis=0)
        se = sim.std(axis=0, ddof=1) / np.sqrt(sim.shape[0])
        z = (mean - theory) / se
        assert np.all(np.abs(z) < 4.5), np.abs(z).max()  # 4 x 9 entries: Sidak bound at 99% is ~3.9


def test_bad_inputs():
    with pytest.raises(ValueError, match="depth"):
        tangent_kernels("relu", np.eye(3), 0, 2.0)
    with pytest.raises(ValueError, match="C_W"):
        tangent_kernels("relu", np.eye(3), 3, -1.0)
    with pytest.raises(ValueError, match="symmetric"):
        tangent_kernels("relu", np.array([[1.0, 0.5], [0.0, 1.0]]), 3, 2.0)
    with pytest.raises(TypeError):
        tangent_kernels(3, np.eye(3), 3, 2.0)
