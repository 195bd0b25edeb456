"""reference_file_nfa against a literal NumPy port of verify_deep_NFA.py (aradha/deep_neural_feature_ansatz).

The port below mirrors the reference code line by line: ``neural_model.Net`` (``first``, ``middle``, ``last``,
bias-free Linear layers, ReLU), ``load_nn`` with its in-place ``M -= M0`` on the network's own parameter,
``get_layer_output`` with its loop over ``net.middle``, ``build_subnetwork`` sharing the parameter arrays,
``egop`` with its transposes, optional centring and einsum, ``correlate`` and ``main``'s loop over layers 0, 1, 2
(each ``verify_NFA`` call loads the network afresh).  Its Jacobians are per-sample forward-mode products (the role of
``vmap(jacrev(net))``), independent of sigprop's backward recursion.  PyTorch is replaced by NumPy in float64.
"""
from __future__ import annotations

import numpy as np
import pytest

from sigprop.kernels.learning.training import MLP, network_features
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation.measures import agop, nfa_correlation
from sigprop.validation.measures.reference import (
    NFAQuantities,
    layer_input_agop,
    nfa_quantities,
    reference_file_nfa,
)

# --- the port: torch stand-ins ------------------------------------------------------------------------------


class Parameter:
    def __init__(self, data):
        self.data = data                      # p.data; the port's p.data.numpy() is p.data itself (shared memory)


class Linear:                                 # nn.Linear(n_in, n_out, bias=False): y = x W^T
    def __init__(self, n_in, n_out):
        self.weight = Parameter(np.zeros((n_out, n_in)))

    def __call__(self, x):
        return x @ self.weight.data.T

    def jvp(self, x, T):                      # forward-mode tangent: (n_out, k)
        return self(x), self.weight.data @ T

    def parameters(self):
        return [self.weight]


class Nonlinearity:                           # neural_model.Nonlinearity('relu')
    def __call__(self, x):
        return np.maximum(x, 0.0)

    def jvp(self, x, T):
        return self(x), (x > 0)[:, None] * T  # torch's relu'(0) = 0

    def parameters(self):
        return []


class Sequential:
    def __init__(self, *mods):
        self.mods = list(mods)

    def __call__(self, x):
        for m in self.mods:
            x = m(x)
        return x

    def jvp(self, x, T):
        for m in self.mods:
            x, T = m.jvp(x, T)
        return x, T

    def parameters(self):
        return [p for m in self.mods for p in m.parameters()]


class Net:                                    # neural_model.Net, act_name='relu', bias = False
    def __init__(self, dim, depth=1, width=1024, num_classes=2):
        self.depth = depth
        if depth == 1:
            self.first = Linear(dim, width)
            self.fc = Sequential(Nonlinearity(), Linear(width, num_classes))
        else:
            num_layers = depth - 1
            self.first = Sequential(Linear(dim, width))
            self.middle = [Sequential(Nonlinearity(), Linear(width, width)) for idx in range(num_layers)]
            self.last = Sequential(Nonlinearity(), Linear(width, num_classes))

    def modules_in_order(self):
        if self.depth == 1:
            return [self.first, self.fc]
        return [self.first, *self.middle, self.last]

    def parameters(self):                     # registration order: first, middle..., last (fc)
        return [p for m in self.modules_in_order() for p in m.parameters()]

    def __call__(self, x):
        o = x
        for m in self.modules_in_order():
            o = m(o)
        return o

    def load_state_dict(self, state):
        for p, w in zip(self.parameters(), state):
            p.data[...] = w                   # copy into the parameter's own storage


def torch_load(saved):
    return [w.copy() for w in saved]          # a fresh state dict each time, as torch.load


def get_jacobian(net, data):                  # vmap(jacrev(net))(data).transpose(0, 2).transpose(0, 1)
    rows = []
    for x in data:
        o, T = x, np.eye(x.shape[0])
        for m in net.modules_in_order():
            o, T = m.jvp(o, T)
        rows.append(T)                         # (c, n)
    J = np.stack(rows)                         # (N, c, n)
    return J.transpose(2, 1, 0).transpose(1, 0, 2)   # (n, c, N) then (c, n, N)


# --- the port: verify_deep_NFA.py ---------------------------------------------------------------------------


def load_nn(saved, saved_init, width, depth, dim, num_classes, layer_idx=0, remove_init=False):
    if remove_init:
        init_net = Net(dim, width=width, depth=depth, num_classes=num_classes)
        d = torch_load(saved_init)
        init_net.load_state_dict(d)
        init_params = [p for idx, p in enumerate(init_net.parameters())]

    net = Net(dim, width=width, depth=depth, num_classes=num_classes)
    d = torch_load(saved)
    net.load_state_dict(d)

    for idx, p in enumerate(net.parameters()):
        if idx == layer_idx:
            M = p.data
            if remove_init:
                M0 = init_params[idx].data
                M -= M0
            break

    M = M.T @ M * 1 / len(M)
    return net, M


def load_init_nn(saved_init, width, depth, dim, num_classes, layer_idx=0):
    net = Net(dim, width=width, depth=depth, num_classes=num_classes)
    d = torch_load(saved_init)
    net.load_state_dict(d)
    for idx, p in enumerate(net.parameters()):
        if idx == layer_idx:
            M = p.data
            break
    M = M.T @ M * 1 / len(M)
    return net, M


def get_layer_output(net, trainloader, layer_idx=0):
    out = []
    for idx, batch in enumerate(trainloader):
        data, labels = batch
        if layer_idx == 0:
            out.append(data)
        elif layer_idx == 1:
            o = Nonlinearity()(net.first(data))
            out.append(o)
        elif layer_idx > 1:
            o = net.first(data)
            for l_idx, m in enumerate(net.middle):
                o = m(o)
                if l_idx + 1 == layer_idx:
                    o = Nonlinearity()(o)
                    out.append(o)
                    break
    out = np.concatenate(out, axis=0)
    return out


def build_subnetwork(net, dim, width, depth, num_classes, layer_idx=0, random_net=False):
    net_ = Net(dim, depth=depth - layer_idx, width=width, num_classes=num_classes)
    params = [p for idx, p in enumerate(net.parameters())]
    if not random_net:
        for idx, p_ in enumerate(net_.parameters()):
            p_.data = params[idx + layer_idx].data
    return net_


def egop(net, dataset, centering=False):
    bs = 1000
    batches = np.array_split(dataset, range(bs, len(dataset), bs))
    G = 0
    Js = []
    for batch_idx, data in enumerate(batches):
        J = get_jacobian(net, data)
        Js.append(J)
    Js = np.concatenate(Js, axis=-1)
    if centering:
        J_mean = np.mean(Js, axis=-1)[..., None]
        Js = Js - J_mean
    Js = np.swapaxes(Js, 2, 0)
    Js = np.swapaxes(Js, 1, 2)
    batches = np.array_split(Js, range(bs, len(Js), bs))
    for batch_idx, J in enumerate(batches):
        G += np.einsum("mcd,mcD->dD", J, J)
    G = G * 1 / len(Js)
    return G


def correlate(M, G):
    M = M.astype(np.float64)
    G = G.astype(np.float64)
    normM = np.linalg.norm(M.flatten())
    normG = np.linalg.norm(G.flatten())
    return np.dot(M.flatten(), G.flatten()) / (normM * normG)


def verify_NFA(saved, saved_init, trainloader, width, depth, dim, num_classes, layer_idx=0):
    remove_init = True
    random_net = False
    net, M = load_nn(saved, saved_init, width, depth, dim, num_classes, layer_idx=layer_idx,
                     remove_init=remove_init)
    net0, M0 = load_init_nn(saved_init, width, depth, dim, num_classes, layer_idx=layer_idx)
    subnet = build_subnetwork(net, M.shape[0], width, depth, num_classes, layer_idx=layer_idx,
                              random_net=random_net)
    init_correlation = correlate(M, M0)
    out = get_layer_output(net, trainloader, layer_idx=layer_idx)
    G = egop(subnet, out, centering=True)
    G2 = egop(subnet, out, centering=False)
    centered_correlation = correlate(M, G)
    uncentered_correlation = correlate(M, G2)
    return init_correlation, centered_correlation, uncentered_correlation


def reference_main(saved, saved_init, trainloader, width, depth, dim, num_classes, idxs=(0, 1, 2)):
    init, centered, uncentered = [], [], []
    for idx in idxs:
        i, c, u = verify_NFA(saved, saved_init, trainloader, width, depth, dim, num_classes, layer_idx=idx)
        init.append(float(i))
        centered.append(float(c))
        uncentered.append(float(u))
    return init, centered, uncentered


# --- a small network: d = 20, width 32, depth 3 (four Linear layers), PyTorch's default initialisation ---------

DIM, WIDTH, DEPTH, CLASSES, N = 20, 32, 3, 5, 60


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(WIDTH, DIM)] + [(WIDTH, WIDTH)] * (DEPTH - 1) + [(CLASSES, WIDTH)]
    init = [rng.uniform(-1, 1, s) / np.sqrt(s[1]) for s in shapes]           # kaiming_uniform(a=sqrt(5)) bound
    trained = [w + 0.6 * rng.uniform(-1, 1, w.shape) / np.sqrt(w.shape[1]) for w in init]   # a perturbed copy
    X = rng.uniform(0.0, 1.0, (N, DIM))                                      # ToTensor() pixels in [0, 1]
    perm = rng.permutation(N)                                                # the loader's shuffle=True
    loader = [(X[perm[i:i + 16]], None) for i in range(0, N, 16)]
    return trained, init, X, loader


@pytest.fixture(scope="module")
def setup():
    return _setup()


@pytest.fixture(scope="module")
def port(setup):
    trained, init, X, loader = setup
    return reference_main(trained, init, loader, WIDTH, DEPTH, DIM, CLASSES)


def _ours_w0(trained, init, X, layer, centered=False):
    """nfa_correlation(W, agop(J), W0=W0) with J from sigprop's network_features of the trained network."""
    J = network_features(MLP(list(trained)), X)[layer].jac_input
    return nfa_correlation(trained[layer], agop(J, centered=centered), W0=init[layer])


# --- the port really has the file's two behaviours ------------------------------------------------------------


def test_port_subtracts_w0_in_place_in_its_network_and_reloads_per_layer(setup):
    trained, init, X, loader = setup
    for layer in range(3):
        net, _ = load_nn(trained, init, WIDTH, DEPTH, DIM, CLASSES, layer_idx=layer, remove_init=True)
        params = [p.data for p in net.parameters()]
        for i in range(4):
            want = trained[i] - init[i] if i == layer else trained[i]
            np.testing.assert_array_equal(params[i], want)       # only this call's layer: nothing accumulates


def test_port_layer_output_is_one_layer_too_far_from_layer_two_on(setup):
    trained, init, X, loader = setup
    relu = Nonlinearity()
    h = [X, relu(X @ trained[0].T)]
    h.append(relu(h[1] @ trained[1].T))
    net, _ = load_nn(trained, init, WIDTH, DEPTH, DIM, CLASSES, layer_idx=2, remove_init=True)
    xs = np.concatenate([b[0] for b in loader])
    order = np.argsort([np.flatnonzero((X == x).all(axis=1))[0] for x in xs])
    got = get_layer_output(net, loader, layer_idx=2)[order]
    np.testing.assert_allclose(got, relu(h[2] @ (trained[2] - init[2]).T), rtol=1e-14, atol=1e-14)
    assert not np.allclose(got, h[2])                              # not the layer input h_2
    net1, _ = load_nn(trained, init, WIDTH, DEPTH, DIM, CLASSES, layer_idx=1, remove_init=True)
    np.testing.assert_allclose(get_layer_output(net1, loader, layer_idx=1)[order], h[1], rtol=1e-14, atol=1e-14)


# --- reference_file_nfa == the port ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_reference_file_nfa_equals_the_port_of_verify_deep_NFA(setup, port, layer):
    trained, init, X, loader = setup
    _, centered, uncentered = port
    assert reference_file_nfa(trained, init, X, layer) == pytest.approx(uncentered[layer], abs=1e-10)
    assert reference_file_nfa(trained, init, X, layer, centered=True) == pytest.approx(centered[layer], abs=1e-10)


def test_reference_file_nfa_matches_the_port_on_a_depth_one_network():
    rng = np.random.default_rng(3)
    init = [rng.uniform(-1, 1, (16, 8)) / 8 ** 0.5, rng.uniform(-1, 1, (3, 16)) / 4.0]
    trained = [w + 0.5 * rng.uniform(-1, 1, w.shape) / w.shape[1] ** 0.5 for w in init]
    X = rng.uniform(0, 1, (25, 8))
    _, c, u = reference_main(trained, init, [(X, None)], 16, 1, 8, 3, idxs=(0,))
    assert reference_file_nfa(trained, init, X, 0) == pytest.approx(u[0], abs=1e-10)
    assert reference_file_nfa(trained, init, X, 0, centered=True) == pytest.approx(c[0], abs=1e-10)


# --- ... and not nfa_correlation(W, agop(J), W0=W0), except with the behaviours switched off ------------------


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_the_file_number_differs_from_nfa_correlation_with_w0(setup, port, layer):
    trained, init, X, _ = setup
    ours = _ours_w0(trained, init, X, layer)
    assert abs(port[2][layer] - ours) > 1e-2                      # generic network: a real difference
    plain = reference_file_nfa(trained, init, X, layer, in_place=False, off_by_one=False)
    assert plain == pytest.approx(ours, abs=1e-12)
    plain_c = reference_file_nfa(trained, init, X, layer, in_place=False, off_by_one=False, centered=True)
    assert plain_c == pytest.approx(_ours_w0(trained, init, X, layer, centered=True), abs=1e-12)


def test_each_switch_changes_the_number_where_it_applies(setup):
    trained, init, X, _ = setup
    full = reference_file_nfa(trained, init, X, 2)
    no_shift = reference_file_nfa(trained, init, X, 2, off_by_one=False)
    no_inplace = reference_file_nfa(trained, init, X, 2, in_place=False)
    assert min(abs(full - no_shift), abs(full - no_inplace), abs(no_shift - no_inplace)) > 1e-3
    for layer in (0, 1):                                           # the off-by-one starts at layer 2
        assert reference_file_nfa(trained, init, X, layer, off_by_one=False) == reference_file_nfa(
            trained, init, X, layer)
        assert abs(reference_file_nfa(trained, init, X, layer, in_place=False)
                   - reference_file_nfa(trained, init, X, layer)) > 1e-3


def test_nfa_quantities_are_the_paper_sigprop_and_file_numbers(setup, port):
    trained, init, X, _ = setup
    for layer in range(3):
        q = nfa_quantities(trained, init, X, layer)
        assert isinstance(q, NFAQuantities)
        J = network_features(MLP(list(trained)), X)[layer].jac_input
        np.testing.assert_allclose(layer_input_agop(trained, X, layer), agop(J), rtol=1e-12, atol=1e-14)
        assert q.paper == pytest.approx(nfa_correlation(trained[layer], agop(J)), abs=1e-12)
        assert q.sigprop_w0 == pytest.approx(_ours_w0(trained, init, X, layer), abs=1e-12)
        assert q.reference_file == pytest.approx(port[2][layer], abs=1e-10)


def test_inputs_are_not_modified(setup):
    trained, init, X, _ = setup
    before = [w.copy() for w in trained], [w.copy() for w in init], X.copy()
    for layer in range(3):
        reference_file_nfa(trained, init, X, layer)
        nfa_quantities(trained, init, X, layer, centered=True)
    for a, b in zip(before[0] + before[1] + [before[2]], list(trained) + list(init) + [X]):
        np.testing.assert_array_equal(a, b)


# --- bad input: one clear error, before any work ----------------------------------------------------------------


@pytest.mark.parametrize("change, err, match", [
    (dict(layer=3), InputError, r"layer must be in \[0, 2\].*readout"),
    (dict(layer=-1), InputError, r"layer must be in \[0, 2\]"),
    (dict(layer=True), InputTypeError, "layer must be an int"),
    (dict(layer=1.0), InputTypeError, "layer must be an int"),
    (dict(in_place=1), InputTypeError, "in_place must be True or False"),
    (dict(centered="yes"), InputTypeError, "centered must be True or False"),
    (dict(X=np.ones((5, 7))), InputError, "X must have 20 columns"),
    (dict(X=np.full((5, 20), np.nan)), InputError, "X must be finite"),
    (dict(X=np.ones((1, 20)), centered=True), InputError, "at least 2 samples"),
    (dict(weights=np.ones((3, 3))), InputTypeError, "weights must be a list"),
    (dict(weights="W"), InputTypeError, "weights must be a list"),
])
def test_bad_arguments_are_named(setup, change, err, match):
    trained, init, X, _ = setup
    kw = dict(weights=trained, initial_weights=init, X=X, layer=1)
    kw.update(change)
    with pytest.raises(err, match=match):
        reference_file_nfa(**kw)


def test_bad_shapes_and_undefined_cosines_are_named(setup):
    trained, init, X, _ = setup
    with pytest.raises(InputError, match=r"weights\[2\] must have 32 columns"):
        reference_file_nfa([trained[0], trained[1], np.ones((32, 5)), trained[3]], init, X, 0)
    with pytest.raises(InputError, match="initial_weights must hold 4 matrices"):
        reference_file_nfa(trained, init[:3], X, 0)
    with pytest.raises(InputError, match=r"initial_weights\[0\] must have the shape of weights\[0\]"):
        reference_file_nfa(trained, [np.ones((32, 19))] + init[1:], X, 0)
    with pytest.raises(InputError, match="at least 2 weight matrices"):
        reference_file_nfa(trained[:1], init[:1], X, 0)
    with pytest.raises(InputError, match="undefined"):                      # W = W0 at the layer: D^T D = 0
        reference_file_nfa(trained, [trained[0]] + init[1:], X, 0)
    rng = np.random.default_rng(0)
    wide = [rng.standard_normal((6, 4)), rng.standard_normal((6, 6)), rng.standard_normal((5, 6)),
            rng.standard_normal((2, 5))]
    w0 = [0.5 * w for w in wide]
    Xw = rng.standard_normal((10, 4))
    with pytest.raises(InputError, match=r"weights\[2\] must be square"):
        reference_file_nfa(wide, w0, Xw, 2)
    assert 0.0 <= reference_file_nfa(wide, w0, Xw, 2, off_by_one=False) <= 1.0


def test_overflow_is_an_error_not_a_number(setup):
    trained, init, X, _ = setup
    huge = [w * 1e120 for w in trained]
    with pytest.raises(InputError, match="overflowed"):
        reference_file_nfa(huge, init, X, 2)
    with pytest.raises(InputError, match="overflow"):            # the AGOP itself (squares of 1e240)
        layer_input_agop(huge, X, 2)
