"""Tests of sigprop.validation.measures: AGOP, the chain rule, NFA correlations, frame isotropy and the proposition.

The networks here are tiny NumPy MLPs with a hand-written backward pass (checked against central differences);
nothing is trained.  Tolerances: the chain-rule identity 1e-10 relative (Frobenius); closed forms and
re-implementations 1e-12; the proven inequalities of the proposition with 1e-9 absolute slack on cosines (rounding
of ``W^T G W`` for condition numbers up to 1e4).  Seeds are fixed; hypothesis runs derandomised under the ``ci``
profile (tests/conftest.py).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import erf

from _hyp import examples
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation.measures import (
    NFAIsotropy,
    agop,
    chain_rule_agop,
    frame_isotropy,
    nfa_correlation,
    nfa_isotropy_relation,
    psd_power,
    range_basis,
)

SQRT2 = math.sqrt(2.0)


def rel_err(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- a tiny network: z_l = h_l W_l^T + b_l, h_{l+1} = phi(z_l), output f = z_{L-1} (linear readout) ------------

ACTS = {
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0.0).astype(float)),
    "tanh": (np.tanh, lambda z: 1.0 - np.tanh(z) ** 2),
    "gelu": (lambda z: 0.5 * z * (1.0 + erf(z / SQRT2)),
             lambda z: 0.5 * (1.0 + erf(z / SQRT2)) + z * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)),
}


def init_net(widths, bias: bool, seed: int):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((b, a)) * math.sqrt(2.0 / a), 0.3 * rng.standard_normal(b) if bias else np.zeros(b))
            for a, b in zip(widths[:-1], widths[1:])]


def forward_from(net, act, layer: int, h):
    """Output of the network from layer ``layer``'s input ``h`` (N x n_in); returns (output, zs, hs)."""
    phi = ACTS[act][0]
    zs, hs = [], []
    for i, (W, b) in enumerate(net[layer:]):
        hs.append(h)
        z = h @ W.T + b
        zs.append(z)
        h = phi(z) if layer + i < len(net) - 1 else z
    return zs[-1], zs, hs


def jacobians(net, act, x):
    """Per layer l: (J_h[l], J_z[l]), the Jacobians (N, o, n) of the outputs w.r.t. its input and pre-activations."""
    dphi = ACTS[act][1]
    _, zs, _ = forward_from(net, act, 0, x)
    N, o = x.shape[0], net[-1][0].shape[0]
    Jz = np.broadcast_to(np.eye(o), (N, o, o)).copy()
    out = [None] * len(net)
    for layer in range(len(net) - 1, -1, -1):
        Jh = Jz @ net[layer][0]                      # J_h = J_z W
        out[layer] = (Jh, Jz)
        if layer:
            Jz = Jh * dphi(zs[layer - 1])[:, None, :]
    return out


WIDTHS = (5, 12, 7, 3)   # expanding, compressing, readout


def test_hand_jacobians_match_central_differences():
    """The backward pass of the test network against central differences (step 1e-6, tolerance 1e-6 relative)."""
    x = np.random.default_rng(3).standard_normal((4, WIDTHS[0]))
    for act in ACTS:
        net = init_net(WIDTHS, True, seed=4)
        jac = jacobians(net, act, x)
        _, _, hs = forward_from(net, act, 0, x)
        for layer in range(len(net)):
            h, eps = hs[layer], 1e-6
            fd = np.empty_like(jac[layer][0])
            for i in range(h.shape[1]):
                e = np.zeros_like(h)
                e[:, i] = eps
                plus, minus = forward_from(net, act, layer, h + e)[0], forward_from(net, act, layer, h - e)[0]
                fd[:, :, i] = (plus - minus) / (2 * eps)
            assert rel_err(jac[layer][0], fd) < 1e-6, (act, layer)


@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("centered", [False, True])
def test_chain_rule_identity_on_random_networks(act, bias, centered):
    """AGOP w.r.t. each layer's input == W^T G W, G the AGOP w.r.t. its pre-activations: 1e-10 relative."""
    for seed in range(3):
        net = init_net(WIDTHS, bias, seed)
        x = np.random.default_rng(100 + seed).standard_normal((64, WIDTHS[0]))
        for layer, (Jh, Jz) in enumerate(jacobians(net, act, x)):
            W = net[layer][0]
            if centered and layer == len(net) - 1:   # the readout's Jacobian is constant: centred AGOPs are 0
                assert np.abs(agop(Jh, centered=True)).max() < 1e-28 and not agop(Jz, centered=True).any()
                continue
            assert rel_err(chain_rule_agop(W, agop(Jz, centered=centered)), agop(Jh, centered=centered)) < 1e-10
            per = agop(Jh, per_output=True, centered=centered)
            per_z = agop(Jz, per_output=True, centered=centered)
            for k in range(per.shape[0]):
                assert rel_err(W.T @ per_z[k] @ W, per[k]) < 1e-10


# --- agop ---------------------------------------------------------------------------------------------------


def test_agop_matches_the_definition_loop():
    J = np.random.default_rng(0).standard_normal((7, 3, 4))
    M = sum(np.outer(J[x, k], J[x, k]) for x in range(7) for k in range(3)) / 7
    assert rel_err(agop(J), M) < 1e-13
    per = agop(J, per_output=True)
    assert per.shape == (3, 4, 4)
    assert rel_err(per.sum(axis=0), M) < 1e-13
    for k in range(3):
        assert rel_err(per[k], sum(np.outer(J[x, k], J[x, k]) for x in range(7)) / 7) < 1e-13
    assert np.linalg.eigvalsh(agop(J)).min() > -1e-12


def test_centered_agop_is_the_gradient_covariance():
    """agop(J, centered=True) = agop(J) - sum_k m_k m_k^T, m_k the sample mean of output k's gradient."""
    J = np.random.default_rng(1).standard_normal((50, 2, 6)) + 3.0
    m = J.mean(axis=0)
    assert rel_err(agop(J, centered=True), agop(J) - m.T @ m) < 1e-12
    assert rel_err(agop(J, centered=True), agop(J - m)) < 1e-13
    # centring does not depend on a constant shift of the gradients
    assert rel_err(agop(J + 5.0, centered=True), agop(J, centered=True)) < 1e-11


# --- nfa_correlation ----------------------------------------------------------------------------------------


def _rand(seed, m=6, n=9):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n))
    Z = rng.standard_normal((m, 2 * m)) * np.linspace(0.5, 2.0, m)[:, None]
    return W, Z @ Z.T / (2 * m)


def test_nfa_correlation_matches_direct_formulas():
    W, G = _rand(0)
    W0 = np.random.default_rng(9).standard_normal(W.shape)
    M = chain_rule_agop(W, G)
    A = W.T @ W
    cos = np.sum(A * M) / (np.linalg.norm(A) * np.linalg.norm(M))
    assert nfa_correlation(W, M) == pytest.approx(cos, abs=1e-12)
    assert nfa_correlation(W, M, measure="pearson") == pytest.approx(np.corrcoef(A.ravel(), M.ravel())[0, 1],
                                                                     abs=1e-12)
    D = W - W0
    assert nfa_correlation(W, M, W0=W0) == pytest.approx(nfa_correlation(D, M), abs=1e-15)
    root = scipy.linalg.sqrtm(M).real
    cos_half = np.sum(A * root) / (np.linalg.norm(A) * np.linalg.norm(root))
    assert nfa_correlation(W, M, alpha=0.5) == pytest.approx(cos_half, abs=1e-10)
    assert rel_err(psd_power(M, 2), M @ M) < 1e-12
    assert rel_err(psd_power(M, 1.5) @ psd_power(M, 0.5), M @ M) < 1e-10
    # scale invariance of both measures
    for measure in ("cosine", "pearson"):
        assert nfa_correlation(3.0 * W, 0.1 * M, measure=measure) == pytest.approx(
            nfa_correlation(W, M, measure=measure), abs=1e-13)


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4)])
def test_nfa_is_one_for_an_isotropic_frame(shape):
    W = np.random.default_rng(2).standard_normal(shape)
    M = chain_rule_agop(W, 2.5 * np.eye(shape[0]))
    for measure in ("cosine", "pearson"):
        assert nfa_correlation(W, M, measure=measure) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4)])
def test_square_root_ansatz_holds_iff_G_proportional_to_W_W_transpose(shape):
    """alpha = 1/2: (W^T G W)^(1/2) ~ W^T W  iff  Q^T G Q ~ Q^T W W^T Q; with G = I the value is
    sum s^3 / (sqrt(sum s^4) sqrt(sum s^2))."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal(shape)
    Q = range_basis(W)
    P = np.eye(shape[0]) - Q @ Q.T                        # anything on the complement of range(W) is invisible
    X = rng.standard_normal((shape[0], shape[0]))
    G = 0.7 * W @ W.T + P @ X @ X.T @ P
    assert nfa_correlation(W, chain_rule_agop(W, G), alpha=0.5, tol=1e-8) == pytest.approx(1.0, abs=1e-10)
    s = np.linalg.svd(W, compute_uv=False)
    s = s[s > 1e-12 * s[0]]
    want = np.sum(s ** 3) / math.sqrt(np.sum(s ** 4) * np.sum(s ** 2))
    got = nfa_correlation(W, chain_rule_agop(W, np.eye(shape[0])), alpha=0.5, tol=1e-8)
    assert got == pytest.approx(want, abs=1e-10) and got < 1 - 1e-3


def test_pearson_one_does_not_imply_isotropy():
    """Square W and G = I + t w w^T with W^T w = 1 (all ones): W^T G W = W^T W + t 11^T, so Pearson = 1."""
    rng = np.random.default_rng(6)
    W = rng.standard_normal((8, 8))
    w = np.linalg.solve(W.T, np.ones(8))
    G = np.eye(8) + 0.5 * np.outer(w, w)
    M = chain_rule_agop(W, G)
    assert nfa_correlation(W, M, measure="pearson") == pytest.approx(1.0, abs=1e-10)
    assert nfa_correlation(W, M) < 0.999 and frame_isotropy(G) < 0.9


def test_fractional_power_tolerance_is_stated_not_silent():
    lam = np.array([1.0, 0.5, -1e-13])                  # rounding-level negative eigenvalue: taken as 0
    Q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((3, 3)))
    M = (Q * lam) @ Q.T
    M = 0.5 * (M + M.T)
    R = psd_power(M, 0.5)
    assert rel_err(R, (Q * np.sqrt(np.maximum(lam, 0))) @ Q.T) < 1e-12
    with pytest.raises(InputError, match="positive semi-definite"):
        psd_power(M, 0.5, tol=1e-15)
    # integer powers accept any symmetric matrix; alpha = 1 accepts any matrix (no decomposition happens)
    S = np.diag([1.0, -2.0])
    assert rel_err(psd_power(S, 2), S @ S) < 1e-15
    assert nfa_correlation(np.eye(2), np.array([[1.0, 0.3], [0.0, 1.0]])) > 0


# --- frame isotropy -----------------------------------------------------------------------------------------


def test_frame_isotropy_values():
    assert frame_isotropy(4.0 * np.eye(5)) == pytest.approx(1.0, abs=1e-15)
    assert frame_isotropy(np.diag([2.0, 0, 0, 0])) == pytest.approx(0.5, abs=1e-15)
    lam = np.array([1.0, 2.0, 3.0, 10.0])
    Q, _ = np.linalg.qr(np.random.default_rng(8).standard_normal((4, 4)))
    G = (Q * lam) @ Q.T
    want = lam.mean() / math.sqrt(np.mean(lam ** 2))
    assert frame_isotropy(G, tol=1e-8) == pytest.approx(want, abs=1e-13)
    assert frame_isotropy(np.diag(lam), subspace=np.eye(4)[:, :2]) == pytest.approx(1.5 / math.sqrt(2.5), abs=1e-15)
    assert frame_isotropy(G, subspace=Q[:, [0, 2]], tol=1e-8) == pytest.approx(2.0 / math.sqrt(5.0), abs=1e-12)


@settings(max_examples=examples(40), deadline=None)
@given(n=st.integers(1, 8), k=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_frame_isotropy_in_unit_interval_and_one_iff_proportional_to_identity(n, k, seed):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, k))
    G = Z @ Z.T
    iso = frame_isotropy(G, tol=1e-8)
    lam = np.linalg.eigvalsh(G)
    assert 0.0 < iso <= 1.0
    assert iso == pytest.approx(lam.mean() / math.sqrt(np.mean(lam ** 2)), abs=1e-12)
    spread = (lam.max() - lam.min()) / lam.max()
    assert (iso > 1 - 1e-12) == (spread < 1e-5) or 1e-7 < spread < 1e-4


# --- the proposition (docs/feature_learning.md) -------------------------------------------------------------


@st.composite
def layers(draw):
    """(W, G): W square, wide or tall with condition number up to 1e4; G Wishart with a controlled anisotropy."""
    kind = draw(st.sampled_from(["square", "wide", "tall"]))
    m = draw(st.integers(2, 8))
    n = {"square": m, "wide": m + draw(st.integers(1, 6)), "tall": max(1, m - draw(st.integers(1, m - 1)))}[kind]
    log_kappa = draw(st.sampled_from([0.0, 0.5, 2.0, 4.0]))
    log_aniso = draw(st.sampled_from([0.0, 0.3, 1.0, 3.0]))
    dof = draw(st.integers(1, 2 * m + 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    s = rng.permutation(np.logspace(0.0, -log_kappa, r))
    W = (U[:, :r] * s) @ V[:, :r].T
    L = rng.standard_normal((m, dof)) * np.logspace(0.0, -log_aniso, m)[rng.permutation(m), None]
    return W, L @ L.T / dof


@settings(max_examples=examples(150), deadline=None)
@given(layer=layers())
def test_nfa_cosine_and_isotropy_satisfy_the_proven_bounds(layer):
    W, G = layer
    rel = nfa_isotropy_relation(W, G, tol=1e-8)
    assert isinstance(rel, NFAIsotropy)
    assert rel.cosine == pytest.approx(nfa_correlation(W, chain_rule_agop(W, G)), abs=1e-12)
    assert rel.rank == min(W.shape)
    assert 1.0 - 1e-12 <= rel.rho_forward <= min(math.sqrt(rel.rank), rel.condition ** 2) * (1 + 1e-12)
    assert 1.0 - 1e-12 <= rel.rho_reverse <= rel.condition ** 2 * (1 + 1e-12)
    assert rel.rho_forward * rel.rho_reverse == pytest.approx(rel.condition ** 2, rel=1e-10)
    assert rel.cosine_lower - 1e-9 <= rel.cosine <= rel.cosine_upper + 1e-9
    # the 1 - cos forms
    assert 1 - rel.cosine <= 2 * rel.rho_forward ** 2 * (1 - rel.isotropy) + 1e-9
    assert 1 - rel.isotropy <= 2 * rel.rho_reverse ** 2 * (1 - rel.cosine) + 1e-9
    if W.shape[0] <= W.shape[1]:      # full row rank: the isotropy of G itself
        assert rel.isotropy == pytest.approx(frame_isotropy(G, tol=1e-8), abs=1e-12)
    else:
        assert rel.isotropy == pytest.approx(frame_isotropy(G, subspace=range_basis(W), tol=1e-8), abs=1e-12)


@settings(max_examples=examples(60), deadline=None)
@given(layer=layers(), c=st.floats(0.1, 10.0))
def test_nfa_cosine_equals_isotropy_when_singular_values_are_equal(layer, c):
    W, G = layer
    U, _, Vt = np.linalg.svd(W, full_matrices=False)
    Wc = c * U @ Vt                                     # kappa = 1
    rel = nfa_isotropy_relation(Wc, G, tol=1e-8)
    assert rel.cosine == pytest.approx(rel.isotropy, abs=1e-12)
    assert rel.rho_forward == pytest.approx(1.0, abs=1e-12) and rel.rho_reverse == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=examples(60), deadline=None)
@given(layer=layers(), lam=st.floats(0.01, 100.0))
def test_nfa_is_one_iff_G_isotropic_on_range_of_W(layer, lam):
    """G = lam Q Q^T + (any PSD matrix on the orthogonal complement of range(W)) gives cosine 1; for a full-row-rank
    W that complement is {0}, so G = lam I.  Conversely a G that is not isotropic on range(W) gives cosine < 1 by at
    least the reverse bound."""
    W, G = layer
    m = W.shape[0]
    Q = range_basis(W)
    P = np.eye(m) - Q @ Q.T
    G_iso = lam * Q @ Q.T + P @ G @ P
    assert nfa_correlation(W, chain_rule_agop(W, G_iso)) == pytest.approx(1.0, abs=1e-11)
    rel = nfa_isotropy_relation(W, G, tol=1e-8)
    if rel.isotropy < 1 - 1e-6:
        sin_iso = math.sqrt(1 - rel.isotropy ** 2)
        assert math.sqrt(max(0.0, 1 - rel.cosine ** 2)) >= sin_iso / rel.rho_reverse - 1e-7
        assert rel.cosine < 1.0


def sin_angle(A, B) -> float:
    """Sine of the Frobenius angle between A and B from the orthogonal component (no 1 - cos^2 cancellation)."""
    a, b = A.ravel() / np.linalg.norm(A), B.ravel() / np.linalg.norm(B)
    return float(np.linalg.norm(b - (a @ b) * a))


@pytest.mark.parametrize("kappa", [2.0, 10.0, 100.0])
def test_both_bounds_are_attained(kappa):
    """r = 2, S = diag(kappa, 1): G = e1 e1^T attains the reverse bound (sin_iso = rho_reverse sin_nfa) and
    G = e2 e2^T the forward bound (sin_nfa = rho_forward sin_iso), exactly.  Sines to 1e-12 relative."""
    W = np.diag([kappa, 1.0])
    sin_iso = math.sqrt(0.5)                       # isotropy 1/sqrt(2) for both rank-one G
    for G, check in ((np.diag([1.0, 0.0]), "reverse"), (np.diag([0.0, 1.0]), "forward")):
        rel = nfa_isotropy_relation(W, G)
        assert rel.isotropy == pytest.approx(sin_iso, abs=1e-15)
        sin_nfa = sin_angle(W.T @ W, W.T @ G @ W)
        if check == "reverse":
            assert sin_nfa == pytest.approx(1.0 / math.sqrt(kappa ** 4 + 1), rel=1e-12)
            assert sin_iso == pytest.approx(rel.rho_reverse * sin_nfa, rel=1e-12)
        else:
            assert sin_nfa == pytest.approx(kappa ** 2 / math.sqrt(kappa ** 4 + 1), rel=1e-12)
            assert sin_nfa == pytest.approx(rel.rho_forward * sin_iso, rel=1e-12)


# --- bad input ----------------------------------------------------------------------------------------------

_W = np.ones((2, 3))
_M = np.eye(3)
_NONPSD = np.diag([1.0, -0.5, 1.0])
_ASYM = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

BAD = [
    (lambda: agop(np.ones((3, 4))), InputError, "J must be a 3-D"),
    (lambda: agop(np.full((2, 1, 3), np.nan)), InputError, "J must be finite"),
    (lambda: agop(np.ones((0, 1, 3))), InputError, "J must not be empty"),
    (lambda: agop(np.ones((1, 1, 3)), centered=True), InputError, "at least 2 samples"),
    (lambda: agop("abc"), InputTypeError, "J must be a real numeric array"),
    (lambda: agop(np.ones((2, 1, 3), dtype=complex)), InputTypeError, "dtype complex"),
    (lambda: agop(np.ones((2, 1, 3)), per_output=1), InputTypeError, "per_output must be True or False"),
    (lambda: chain_rule_agop(_W, np.eye(3)), InputError, "G must be 2 x 2"),
    (lambda: chain_rule_agop(_W, [[1.0, np.inf], [0.0, 1.0]]), InputError, "G must be finite"),
    (lambda: nfa_correlation(_W, np.eye(2)), InputError, "M must be 3 x 3"),
    (lambda: nfa_correlation(_W, np.ones((3, 2))), InputError, "M must be square"),
    (lambda: nfa_correlation(_W, _M, W0=np.ones((3, 2))), InputError, "W0 must have the shape of W"),
    (lambda: nfa_correlation(np.ones(3), _M), InputError, "W must be a 2-D"),
    (lambda: nfa_correlation(_W, _M, alpha=0.0), InputError, "alpha must be finite and > 0"),
    (lambda: nfa_correlation(_W, _M, alpha=-0.5), InputError, "alpha must be finite and > 0"),
    (lambda: nfa_correlation(_W, _M, alpha=math.nan), InputError, "alpha must be finite and > 0"),
    (lambda: nfa_correlation(_W, _M, alpha=math.inf), InputError, "alpha must be finite and > 0"),
    (lambda: nfa_correlation(_W, _M, alpha=True), InputTypeError, "alpha must be a real number"),
    (lambda: nfa_correlation(_W, _M, alpha="1"), InputTypeError, "alpha must be a real number"),
    (lambda: nfa_correlation(_W, _NONPSD, alpha=0.5), InputError, "M must be positive semi-definite"),
    (lambda: nfa_correlation(_W, _ASYM, alpha=0.5), InputError, "M must be symmetric"),
    (lambda: nfa_correlation(np.zeros((2, 3)), _M), InputError, "W\\^T W is zero"),
    (lambda: nfa_correlation(_W, _M, W0=_W), InputError, "\\(W - W0\\)\\^T \\(W - W0\\) is zero"),
    (lambda: nfa_correlation(_W, np.zeros((3, 3))), InputError, "M is zero"),
    (lambda: nfa_correlation(_W, _M, measure="pearson"), InputError, "constant"),
    (lambda: nfa_correlation(_W, _M, measure="spearman"), InputError, "measure must be one of"),
    (lambda: nfa_correlation(_W, _M, measure=1), InputTypeError, "measure must be one of"),
    (lambda: nfa_correlation(_W, _M, tol=2.0), InputError, r"tol must be finite and in \[0, 1\)"),
    (lambda: psd_power(_NONPSD, 1.5), InputError, "positive semi-definite"),
    (lambda: psd_power(_M, 0), InputError, "alpha must be finite and > 0"),
    (lambda: frame_isotropy(np.zeros((3, 3))), InputError, "G is zero"),
    (lambda: frame_isotropy(np.ones((3, 2))), InputError, "G must be square"),
    (lambda: frame_isotropy(_ASYM), InputError, "G must be symmetric"),
    (lambda: frame_isotropy(_NONPSD), InputError, "G must be positive semi-definite"),
    (lambda: frame_isotropy(_M, subspace=np.ones((3, 1))), InputError, "orthonormal"),
    (lambda: frame_isotropy(_M, subspace=np.eye(2)), InputError, "subspace must be n x k"),
    (lambda: frame_isotropy(np.diag([1.0, 0, 0]), subspace=np.eye(3)[:, 1:]), InputError, "Q\\^T G Q is zero"),
    (lambda: frame_isotropy([[1.0, "a"], [0, 1]]), InputTypeError, "G must be a real numeric array"),
    (lambda: range_basis(np.zeros((2, 2))), InputError, "W is zero"),
    (lambda: nfa_isotropy_relation(np.diag([1.0, 0.0]), np.diag([0.0, 1.0])), InputError, "G is zero on range"),
    (lambda: nfa_isotropy_relation(_W, np.eye(3)), InputError, "G must be 2 x 2"),
]


@pytest.mark.parametrize("call,exc,match", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_input_errors_are_value_errors():
    with pytest.raises(ValueError):
        agop(np.ones((2, 2)))


# --- the measures package: one home per measure, old paths, the helpers that moved in -----------------------------


def _old_matrix_correlation(A, B, pearson=False):
    """The formula the feature-learning experiment used before the helper moved into the package."""
    a, b = np.ravel(A).astype(float), np.ravel(B).astype(float)
    if pearson:
        a, b = a - a.mean(), b - b.mean()
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))


def _old_subspace_fraction(A, U):
    A = np.asarray(A, dtype=float)
    return float(np.trace(U.T @ A @ U) / np.trace(A))


def test_moved_helpers_give_the_old_numbers_bit_for_bit():
    from sigprop.validation.measures import matrix_correlation, subspace_fraction

    rng = np.random.default_rng(7)
    for d in (2, 5, 17):
        G = rng.standard_normal((d, d + 3))
        A, B = G @ G.T, rng.standard_normal((d, d))
        U = np.linalg.qr(rng.standard_normal((d, max(1, d // 3))))[0]
        assert matrix_correlation(A, B) == _old_matrix_correlation(A, B)
        assert matrix_correlation(A, B, measure="pearson") == _old_matrix_correlation(A, B, pearson=True)
        assert subspace_fraction(A, U) == _old_subspace_fraction(A, U)


def test_moved_helpers_are_scale_invariant_at_extreme_magnitudes():
    """The experiment's old cosine overflowed (0 instead of 1 at 1e200); the package's measures do not."""
    from sigprop.validation.measures import matrix_correlation, subspace_fraction

    rng = np.random.default_rng(8)
    G = rng.standard_normal((4, 6))
    A, U = G @ G.T, np.eye(4)[:, :2]
    for c in (1e-200, 1e200):
        assert matrix_correlation(c * A, A) == pytest.approx(1.0, abs=1e-15)
        assert matrix_correlation(c * A, A, measure="pearson") == pytest.approx(1.0, abs=1e-15)
        assert subspace_fraction(c * A, U) == pytest.approx(subspace_fraction(A, U), rel=1e-14)
    assert _old_matrix_correlation(1e200 * A, A) != pytest.approx(1.0)   # what the package's checks now prevent


def test_moved_helpers_check_their_arguments_before_work():
    from sigprop.validation.measures import matrix_correlation, subspace_fraction

    A, U = np.eye(3), np.eye(3)[:, :1]
    bad = [
        (lambda: matrix_correlation(np.eye(2), np.eye(3)), InputError, "A and B must have the same shape"),
        (lambda: matrix_correlation(np.zeros((2, 2)), np.eye(2)), InputError, "A is zero"),
        (lambda: matrix_correlation(np.ones((2, 2)), np.eye(2), measure="pearson"), InputError, "A is constant"),
        (lambda: matrix_correlation(A, A, measure="spearman"), InputError, "measure must be one of"),
        (lambda: matrix_correlation(A, [[np.nan]]), InputError, "B"),
        (lambda: subspace_fraction(np.ones((2, 3)), U), InputError, "A must be square"),
        (lambda: subspace_fraction(A, np.ones((3, 1))), InputError, "orthonormal"),
        (lambda: subspace_fraction(A, np.eye(2)), InputError, "U must be n x k"),
        (lambda: subspace_fraction(-A, U), InputError, "tr\\(A\\) must be > 0"),
        (lambda: subspace_fraction(A, "U"), InputTypeError, "U must be a real numeric array"),
    ]
    for call, exc, match in bad:
        with pytest.raises(exc, match=match):
            call()


def test_package_exports_every_module_name_once_and_lists_it():
    """One home per measure: the package's ``__all__`` is the union of its modules' (each name in exactly one
    module), every name is documented in the package docstring, and no public ``agop`` exists elsewhere."""
    import sigprop.kernels.learning.rfm
    from sigprop.validation import measures
    from sigprop.validation.measures import nfa, reference, similarity, spectra

    modules = (nfa, spectra, similarity, reference)
    names = [n for m in modules for n in m.__all__]
    assert len(names) == len(set(names)) and set(names) == set(measures.__all__)
    for m in modules:
        for n in m.__all__:
            assert getattr(measures, n) is getattr(m, n)
            assert n in measures.__doc__, n
            assert m.__name__.rsplit(".", 1)[1] in measures.__doc__
    assert "agop" not in sigprop.kernels.learning.rfm.__all__


@pytest.mark.parametrize("old, new", [("sigprop.validation.rainbow_measures", "sigprop.validation.measures"),
                                      ("sigprop.validation.nfa_reference", "sigprop.validation.measures.reference")])
def test_old_module_paths_work_for_one_release_with_a_deprecation_warning(old, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"the module {old} is now {new}"):
        mod = importlib.import_module(old)
    target = importlib.import_module(new)
    assert target.__all__ and all(getattr(mod, n) is getattr(target, n) for n in target.__all__)


def test_the_new_path_imports_without_a_warning():
    import subprocess
    import sys

    code = ("from sigprop.validation.measures import agop, procrustes, nfa_quantities, subspace_fraction; "
            "from sigprop.validation.measures.spectra import marchenko_pastur_quantiles")
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
