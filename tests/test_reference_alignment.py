"""The reference layer alignment (``layer_alignments(..., definition='reference')``) against a port of the authors'
code.

Oracle: the per-example Jacobians of every Linear layer's raw parameters (weight, then bias when present) are built
one parameter at a time by the complex step (``Im f(theta + i h e_p) / h``, h = 1e-30, through a forward pass
written here, independent of the trainer's backward pass; exact to rounding for piecewise-linear and analytic
activations), stored as nngeometry stores them (``grads[output, example, parameter]``), centred as nngeometry's
``Jacobian.get_jacobian`` does with ``centering=True`` (``grads -= grads.mean(dim=1, keepdim=True)``: per output,
over the samples), and fed to the formula of ``layer_alignment`` in ``bugbuglou/NTK_alignment``
(``fmnist_FNNs_MC5.py``): ``targets = one_hot(targets).float(); targets -= targets.mean(dim=0)``,
``FVector(vector_repr=targets.t())``, ``align = yTKy / (frobK * norm(targets)**2)``.  The same Jacobians, uncentred,
give the oracle of the 'sigprop' definition (CKA with C = I - 11^T / (oN), hidden layers only).

Tolerance: 1e-10 absolute on alignments of order 0.1-1 (the two sides agree to ~1e-15 in practice).
"""
import numpy as np
import pytest

from sigprop.kernels.learning.training import (
    TangentAlignment,
    apply_measures,
    init_network,
    layer_alignments,
    one_hot,
    synthetic_data,
)
from sigprop.theory.errors import InputError

TOL = 1e-10
STEP = 1e-30


def _complex_forward(net, X, shift=None):
    """Outputs (N, o) of ``net`` on X in complex arithmetic; ``shift = (i, 'W' | 'b', index)`` adds i * STEP there."""
    h = X.astype(complex)
    for i in range(net.depth + 1):
        W = net.W[i].astype(complex)
        b = None if net.b is None else net.b[i].astype(complex)
        if shift is not None and shift[0] == i:
            (W if shift[1] == "W" else b)[shift[2]] += 1j * STEP
        z = net.w_scale[i] * (h @ W.T)
        if b is not None:
            z = z + net.b_scale[i] * b
        if i < net.depth:
            h = np.where(z.real > 0, z, 0) if net.activation.name == "relu" else np.tanh(z)
        else:
            h = z
    return h


def _layer_jacobians(net, X):
    """Per layer i = 0..L: grads (o, N, P_i), d f_k(x_a) / d theta_p over the raw weight (row-major) then bias."""
    out = []
    for i in range(net.depth + 1):
        cols = [("W", idx) for idx in np.ndindex(*net.W[i].shape)]
        if net.b is not None:
            cols += [("b", (p,)) for p in range(net.b[i].shape[0])]
        g = np.empty((net.outputs, X.shape[0], len(cols)))
        for c, (kind, idx) in enumerate(cols):
            g[:, :, c] = (_complex_forward(net, X, (i, kind, idx)).imag / STEP).T
        out.append(g)
    return out


def _nngeometry_alignment(grads, labels, o):
    """``layer_alignment`` of the reference code for one layer, on nngeometry's Jacobian with centering=True."""
    grads = grads - grads.mean(axis=1, keepdims=True)  # Jacobian.get_jacobian, centering=True
    K = np.einsum("kap,jbp->kajb", grads, grads)  # FMatDense: (n_output, n_examples, n_output, n_examples)
    targets = np.eye(o)[labels]
    targets -= targets.mean(axis=0)
    v = targets.T.copy().reshape(-1)  # FVector(vector_repr=targets.t().contiguous())
    sd = K.shape
    yTKy = v @ (K.reshape(sd[0] * sd[1], sd[2] * sd[3]) @ v)  # FMatDense.vTMv
    frobK = np.linalg.norm(K)  # FMatDense.frobenius_norm
    return yTKy / (frobK * np.linalg.norm(v) ** 2)


def _gram_centred(grads):
    """nngeometry's other path (``get_gram_matrix`` with centering): the uncentred Gram, then C_N on both sides."""
    o, N, _ = grads.shape
    G = np.einsum("kap,jbp->kajb", grads, grads)
    C = np.eye(N) - np.ones((N, N)) / N
    return np.einsum("ac,kcjd,db->kajb", C, G, C)


def _sigprop_alignment(grads, Y1h):
    """CKA of the raw oN x oN kernel with y y^T, y = vec(Y) output-major; C = I - 11^T / (oN)."""
    o, N, _ = grads.shape
    J = grads.reshape(o * N, -1)
    T = J @ J.T
    y = Y1h.T.reshape(-1)
    C = np.eye(o * N) - np.ones((o * N, o * N)) / (o * N)
    A, B = C @ T @ C, C @ np.outer(y, y) @ C
    return np.vdot(A, B) / (np.linalg.norm(A) * np.linalg.norm(B))


def _data(N=11, classes=3, dim=4, seed=0):
    X, _ = synthetic_data(N, dim=dim, classes=classes, seed=seed)
    y = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 2])[:N] % classes  # unbalanced, every class present
    return X, y


NETWORKS = [
    dict(activation="relu", bias=False, parametrisation="standard"),
    dict(activation="relu", bias=True, C_b=0.2, parametrisation="standard"),
    dict(activation="tanh", bias=True, C_b=0.3, parametrisation="ntk"),
    dict(activation="tanh", bias=False, parametrisation="ntk"),
]


def _move(net, seed):
    """Move every weight and bias away from its initial law (as training does), in place."""
    rng = np.random.default_rng(seed)
    for w in net.W:
        w += 0.3 * rng.standard_normal(w.shape) * np.abs(w).mean()
    for b in net.b or []:
        b += 0.5 * rng.standard_normal(b.shape)


@pytest.mark.parametrize("kw", NETWORKS)
@pytest.mark.parametrize("moved", [False, True])
def test_reference_definition_equals_port_of_authors_formula(kw, moved):
    X, y = _data()
    net = init_network([4, 6, 5, 5, 3], seed=7, **kw)
    if moved:
        _move(net, seed=1)
    grads = _layer_jacobians(net, X)
    want = np.array([_nngeometry_alignment(g, y, 3) for g in grads])
    got = layer_alignments(net, X, one_hot(y, 3), definition="reference")
    assert got.shape == (net.depth + 1,)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
    # nngeometry's Gram path (FMatDense uses get_gram_matrix) centres the same kernel
    for g in grads:
        gc = g - g.mean(axis=1, keepdims=True)
        np.testing.assert_allclose(_gram_centred(g), np.einsum("kap,jbp->kajb", gc, gc), rtol=0,
                                   atol=1e-12 * np.abs(gc).max() ** 2)
    # the complex-step Jacobian of the readout weight is h_L (x) e_k: the port's layout is the trainer's
    assert np.allclose(grads[-1][1, :, net.W[-1].shape[1]:2 * net.W[-1].shape[1]],
                       net.w_scale[-1] * _hidden_output(net, X), atol=1e-12)


def _hidden_output(net, X):
    h = X
    for i in range(net.depth):
        z = net.w_scale[i] * (h @ net.W[i].T)
        if net.b is not None:
            z = z + net.b_scale[i] * net.b[i]
        h = np.maximum(z, 0) if net.activation.name == "relu" else np.tanh(z)
    return h


@pytest.mark.parametrize("kw", NETWORKS)
def test_sigprop_definition_equals_its_oracle_and_is_the_default(kw):
    X, y = _data()
    net = init_network([4, 6, 5, 5, 3], seed=3, **kw)
    Y = one_hot(y, 3)
    grads = _layer_jacobians(net, X)
    want = np.array([_sigprop_alignment(g, Y) for g in grads[:-1]])  # readout left out
    default = layer_alignments(net, X, Y)
    np.testing.assert_allclose(default, want, rtol=0, atol=TOL)
    np.testing.assert_array_equal(layer_alignments(net, X, Y, definition="sigprop"), default)
    # the definitions differ (centring and label vector): not the same numbers on the same layers
    assert np.max(np.abs(layer_alignments(net, X, Y, definition="reference")[:-1] - default)) > 1e-3


def test_sigprop_definition_numbers_unchanged():
    """Values of the default definition computed before the 'reference' option existed."""
    X, y = synthetic_data(12, dim=5, classes=3, seed=4)
    net = init_network([5, 7, 6, 6, 3], activation="relu", bias=True, C_b=0.1, seed=2)
    np.testing.assert_allclose(layer_alignments(net, X, one_hot(y, 3)),
                               [0.1056096430042115, 0.12237860842489513, 0.10558239428157419], rtol=1e-13, atol=0)
    net = init_network([5, 7, 6, 6, 3], activation="tanh", seed=3)
    np.testing.assert_allclose(layer_alignments(net, X, one_hot(y, 3)),
                               [0.03495273659476008, 0.06506469594780648, 0.18556429242283], rtol=1e-13, atol=0)


def test_reference_readout_layer_closed_form():
    """Readout: df_k/dz = e_k, so K = I_o (x) C F C, F = h h^T (+1): A = tr(Yc^T F Yc) / (sqrt(o) |CFC| |Yc|^2)."""
    X, y = _data()
    net = init_network([4, 6, 5, 3], activation="relu", bias=True, C_b=0.1, seed=5)
    h = _hidden_output(net, X)
    F = h @ h.T + 1.0
    C = np.eye(len(y)) - 1.0 / len(y)
    Yc = one_hot(y, 3) - one_hot(y, 3).mean(axis=0)
    want = np.trace(Yc.T @ F @ Yc) / (np.sqrt(3) * np.linalg.norm(C @ F @ C) * np.vdot(Yc, Yc))
    got = layer_alignments(net, X, one_hot(y, 3), definition="reference")[-1]
    assert abs(got - want) < TOL


def test_tangent_alignment_measure_takes_the_definition():
    X, y = _data()
    net = init_network([4, 6, 5, 5, 3], activation="relu", bias=True, C_b=0.1, seed=1)
    m = TangentAlignment(X, y)
    r = TangentAlignment(X, y, name="ref", definition="reference")
    assert m.definition == "sigprop"
    values = apply_measures(net, [m, r])
    np.testing.assert_array_equal(values["tangent_alignment"], layer_alignments(net, X, one_hot(y, 3)))
    np.testing.assert_array_equal(values["ref"], layer_alignments(net, X, one_hot(y, 3), definition="reference"))


def test_bad_input_is_refused():
    X, y = _data()
    net = init_network([4, 6, 5, 3], seed=0)
    Y = one_hot(y, 3)
    for bad in ("nngeometry", "Reference", None, 1):
        with pytest.raises(InputError, match="definition must be one of"):
            layer_alignments(net, X, Y, definition=bad)
        with pytest.raises(InputError, match="definition must be one of"):
            TangentAlignment(X, y, definition=bad)
    with pytest.raises(InputError, match="zero centred norm"):  # every sample of one class: labels centre to 0
        layer_alignments(net, X, one_hot(np.zeros(len(y), dtype=int), 3), definition="reference")
    with pytest.raises(InputError, match="label matrix must be"):
        layer_alignments(net, X, Y[:, :2], definition="reference")
    dead = init_network([4, 6, 5, 3], seed=0)
    dead.W[-1][:] = 0.0  # no gradient reaches the hidden layers: their kernels vanish
    with pytest.raises(InputError, match="layer 2: the centred tangent kernel is zero"):
        layer_alignments(dead, X, Y, definition="reference")
