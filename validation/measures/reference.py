"""The Deep NFA number of the reference code ``aradha/deep_neural_feature_ansatz``, reproduced with its behaviour.

Radhakrishnan, Beaglehole, Pandit & Belkin (arXiv 2212.13881) state the Deep Neural Feature Ansatz for layer ``l``
of a trained network: ``W_l^T W_l`` is proportional to the AGOP ``(1/N) sum_x grad f_l(h_l(x)) grad f_l(h_l(x))^T``
of the map ``f_l`` from the layer's input ``h_l`` to the output.  Their verification script ``verify_deep_NFA.py``
computes a different number; :func:`reference_file_nfa` computes that number from arrays (the weights of a
bias-free ReLU MLP, its initial weights, the inputs), behaviour included.  Three quantities, side by side, for
layer ``l`` with trained weights ``W``, initial weights ``W0``, ``D = W - W0``, ``h_l`` the true layer input of the
trained network and ``cos`` the uncentred cosine of the flattened matrices:

* **the paper's ansatz**: ``cos(W^T W, AGOP_l)``, ``AGOP_l`` the trained network's AGOP w.r.t. ``h_l``:
  ``nfa_correlation(W, layer_input_agop(weights, X, l))`` (the defaults of
  :func:`~sigprop.validation.measures.nfa.nfa_correlation`);
* **sigprop's ``W0=`` variant**: ``cos(D^T D, AGOP_l)``, the same AGOP:
  ``nfa_correlation(W, layer_input_agop(weights, X, l), W0=W0)``;
* **the reference file's number**: ``cos(D^T D, AGOP'_l)`` with ``AGOP'_l`` the AGOP of the network whose layer
  ``l`` is ``D`` (the file subtracts ``W0`` in place), at the activation one layer too far for ``l >= 2``:
  :func:`reference_file_nfa`.

:func:`nfa_quantities` returns the three on the same arrays.  Layers are numbered as the file's ``layer_idx``:
``layer`` is the 0-based index into ``weights`` (0 = the input layer); the readout layer is not measured (the file
cannot measure it either).  Everything runs in float64; the file runs its network in float32.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> W0 = [rng.standard_normal((8, 5)) / 5 ** 0.5, rng.standard_normal((8, 8)) / 8 ** 0.5,
...       rng.standard_normal((8, 8)) / 8 ** 0.5, rng.standard_normal((2, 8)) / 8 ** 0.5]
>>> W = [w + 0.3 * rng.standard_normal(w.shape) / w.shape[1] ** 0.5 for w in W0]
>>> X = rng.standard_normal((40, 5))
>>> q = nfa_quantities(W, W0, X, 2)
>>> round(q.reference_file, 6) != round(q.sigprop_w0, 6)
True
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sigprop.kernels.learning.training import MLP, iter_layer_features
from sigprop.theory.errors import InputError, InputTypeError

from ._common import check_flag, finite_array
from .nfa import agop, nfa_correlation

__all__ = ["reference_file_nfa", "layer_input_agop", "NFAQuantities", "nfa_quantities"]


# --- argument checks (each runs before any work) ------------------------------------------------------------


def _weights(weights, name: str, who: str) -> list[np.ndarray]:
    """A list of >= 2 finite float64 matrices whose shapes chain (``W[i+1].shape[1] == W[i].shape[0]``)."""
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence) or isinstance(weights, (str, bytes)):
        raise InputTypeError(f"{who}: {name} must be a list of 2-D weight arrays (n_out, n_in), input layer first, "
                             f"got {type(weights).__name__}")
    if len(weights) < 2:
        raise InputError(f"{who}: {name} must hold at least 2 weight matrices (a hidden layer and the readout), "
                         f"got {len(weights)}")
    out = [finite_array(w, f"{name}[{i}]", who, 2) for i, w in enumerate(weights)]
    for i in range(1, len(out)):
        if out[i].shape[1] != out[i - 1].shape[0]:
            raise InputError(f"{who}: {name}[{i}] must have {out[i - 1].shape[0]} columns (the rows of "
                             f"{name}[{i - 1}]), got shape {out[i].shape}")
    return out


def _initial(initial_weights, weights: list[np.ndarray], who: str) -> list[np.ndarray]:
    W0 = _weights(initial_weights, "initial_weights", who)
    if len(W0) != len(weights):
        raise InputError(f"{who}: initial_weights must hold {len(weights)} matrices like weights, got {len(W0)}")
    for i, (w, w0) in enumerate(zip(weights, W0)):
        if w0.shape != w.shape:
            raise InputError(f"{who}: initial_weights[{i}] must have the shape of weights[{i}] {w.shape}, "
                             f"got {w0.shape}")
    return W0


def _layer(layer, n_weights: int, who: str) -> int:
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise InputTypeError(f"{who}: layer must be an int, got {type(layer).__name__}")
    if not 0 <= layer <= n_weights - 2:
        raise InputError(f"{who}: layer must be in [0, {n_weights - 2}] (a 0-based index into weights; the readout "
                         f"layer {n_weights - 1} is not measured), got {layer}")
    return int(layer)


def _inputs(X, weights: list[np.ndarray], centered: bool, who: str) -> np.ndarray:
    X = finite_array(X, "X", who, 2)
    if X.shape[1] != weights[0].shape[1]:
        raise InputError(f"{who}: X must have {weights[0].shape[1]} columns (the inputs of weights[0]), "
                         f"got shape {X.shape}")
    if centered and X.shape[0] < 2:
        raise InputError(f"{who}: centered=True needs at least 2 samples (X.shape[0] >= 2), got {X.shape[0]}")
    return X


# --- the computation ----------------------------------------------------------------------------------------


def _activations(weights: list[np.ndarray], X: np.ndarray, upto: int, who: str) -> np.ndarray:
    """relu(W_{upto-1} ... relu(W_0 x)) (N x n), bias-free; ``upto = 0`` returns X."""
    h = X
    with np.errstate(over="ignore", invalid="ignore"):
        for W in weights[:upto]:
            h = np.maximum(h @ W.T, 0.0)
    if not np.all(np.isfinite(h)):
        raise InputError(f"{who}: the forward pass overflowed float64 (non-finite activations); the weights or X "
                         "are too large")
    return h


def _input_agop(weights: list[np.ndarray], h: np.ndarray, centered: bool, who: str) -> np.ndarray:
    """AGOP of the bias-free ReLU network ``weights`` w.r.t. its input, on the inputs ``h`` (N x n_in)."""
    with np.errstate(over="ignore", invalid="ignore"):
        *_, first = iter_layer_features(MLP(list(weights)), h)   # top down: the last one is the input layer
    J = first.jac_input
    if not np.all(np.isfinite(J)):
        raise InputError(f"{who}: the Jacobians overflowed float64 (non-finite); the weights are too large")
    with np.errstate(over="ignore", invalid="ignore"):
        G = agop(J, centered=centered)
    if not np.all(np.isfinite(G)):
        raise InputError(f"{who}: the AGOP overflowed float64 (non-finite); the weights or X are too large")
    return G


def layer_input_agop(weights, X, layer: int, *, centered: bool = False) -> np.ndarray:
    """AGOP of a bias-free ReLU MLP with respect to the true input of layer ``layer``: the paper's ``AGOP_l``.

    ``(1/N) sum_x sum_k g_k(x) g_k(x)^T`` with ``g_k(x) = d f_k / d h_l`` at ``h_l(x) = relu(W_{l-1} ... relu(W_0
    x))`` (``h_0 = x``), ``f`` the network ``W_{L-1} relu(... relu(W_0 x))``.  Equal to
    ``agop(network_features(net, X)[layer].jac_input)`` for the same network as a
    :class:`~sigprop.kernels.learning.training.MLP`; this form takes plain arrays.

    Parameters
    ----------
    weights : list of array_like
        ``W_0, ..., W_{L-1}``, each ``(n_out, n_in)`` (``z = h W^T``), input layer first, readout last; ``L >= 2``.
    X : array_like, shape (N, n_0)
        Inputs.
    layer : int
        0-based index into ``weights``, in ``[0, L - 2]``.
    centered : bool, default False
        Centre each output's gradient over the samples (:func:`~sigprop.validation.measures.nfa.agop`).

    Returns
    -------
    numpy.ndarray
        ``(n_in, n_in)`` with ``n_in = weights[layer].shape[1]``.

    Raises
    ------
    InputError
        Fewer than 2 matrices, shapes that do not chain, non-finite entries, ``X`` of the wrong width, ``layer``
        out of range, ``centered`` with one sample, or an overflow in the forward or backward pass.
    InputTypeError
        ``weights`` not a list of arrays, ``layer`` not an int, ``centered`` not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> W = [np.eye(2), np.array([[1.0, 2.0]])]           # f(x) = relu(x_1) + 2 relu(x_2)
    >>> layer_input_agop(W, np.array([[1.0, 1.0], [1.0, -1.0]]), 0)
    array([[1., 1.],
           [1., 2.]])
    """
    who = "layer_input_agop"
    weights = _weights(weights, "weights", who)
    layer = _layer(layer, len(weights), who)
    centered = check_flag(centered, "centered", who)
    X = _inputs(X, weights, centered, who)
    return _input_agop(weights[layer:], _activations(weights, X, layer, who), centered, who)


def reference_file_nfa(weights, initial_weights, X, layer: int, *, in_place: bool = True, off_by_one: bool = True,
                       centered: bool = False) -> float:
    """The number ``verify_deep_NFA.py`` of ``aradha/deep_neural_feature_ansatz`` prints for layer ``layer``.

    That file (``verify_NFA(path, dataset_name, layer_idx)``, network class ``Net`` of ``neural_model.py``: a
    bias-free ReLU MLP ``first``, ``middle``, ``last``) does, for one ``layer_idx`` per call, on a network freshly
    loaded from disk in each call (so the modification below does not accumulate across layers):

    1. ``load_nn``: ``M = p.data.numpy()`` for the ``layer_idx``-th parameter, then ``M -= M0`` (``remove_init =
       True``).  ``numpy()`` shares memory with the parameter, so this subtracts ``W0`` **in place in the
       network**: from here on its layer ``l`` is ``D = W - W0``.  ``M = M.T @ M * 1/len(M)`` is ``D^T D / n_out``.
    2. ``build_subnetwork``: a ``Net`` of depth ``depth - layer_idx`` whose parameters are the (modified) network's
       parameters ``layer_idx, layer_idx + 1, ...``: the map ``f'_l(h) = W_{L-1} relu(... relu(W_{l+1} relu(D
       h)))``.
    3. ``get_layer_output``: the inputs at which the gradients are taken: ``x`` for ``layer_idx == 0``,
       ``relu(first(x))`` for 1, and for ``layer_idx >= 2`` the loop over ``net.middle`` stops after module
       ``layer_idx - 1``, whose Linear is parameter ``layer_idx`` itself, so it returns ``relu(D h_l)``: the
       activation **one layer too far** (computed with ``D``), not the layer input ``h_l``.  It has ``n_out``
       entries, which the subnetwork accepts because the file's middle layers are square.
    4. ``egop(subnet, out, centering)``: per-sample Jacobians of the subnetwork's outputs w.r.t. its input
       (``vmap(jacrev(net))``), optionally minus their mean over the samples (``centering=True``), then
       ``G = sum_x sum_k J_k(x)^T J_k(x) / N``: summed over outputs, averaged over samples.
    5. ``correlate``: the uncentred cosine ``<M, G>_F / (||M||_F ||G||_F)`` of the flattened matrices, in double,
       with ``G`` itself (no power, no square root).  ``main`` prints it for ``centering=True`` and ``False``.

    So, with ``u_l(x) = x`` (l = 0), ``h_1(x)`` (l = 1), ``relu(D h_l(x))`` (l >= 2) and ``G'`` the AGOP of
    ``f'_l`` w.r.t. its input at ``u_l``, the file's number is ``cos(vec(D^T D), vec(G'))``.  By the chain rule
    ``G' = D^T K' D`` with ``K'`` the pre-activation AGOP of the modified network: the file pairs ``D^T D`` with
    ``D^T K' D``, not with the trained network's AGOP ``W^T K W`` that
    ``nfa_correlation(W, agop(J), W0=W0)`` uses.  On a generic network the two numbers differ (by 0.17 to 0.22 per
    layer in the example of docs/feature_learning.md).

    Parameters
    ----------
    weights : list of array_like
        Trained ``W_0, ..., W_{L-1}``, each ``(n_out, n_in)``, input layer first, readout last; ``L >= 2``.  The file's
        ``Net(dim, depth=d)`` has ``L = d + 1``.  Left unmodified (the file modifies its own network).
    initial_weights : list of array_like
        ``W0``: the same shapes.
    X : array_like, shape (N, n_0)
        The inputs (for SVHN the file uses the training part, 80%, of the first 1,000 training images).
    layer : int
        The file's ``layer_idx``: 0-based index into ``weights``, in ``[0, L - 2]`` (its ``main`` measures 0, 1, 2
        of a depth-3 network; it fails on the readout).
    in_place : bool, default True
        Take the gradients through the network whose layer ``layer`` is ``W - W0`` (the file).  False: through the
        trained network.
    off_by_one : bool, default True
        For ``layer >= 2``, take them at ``relu(D h_l)`` (``relu(W h_l)`` if not ``in_place``), as the file does;
        needs ``weights[layer]`` square.  False: at the layer input ``h_l``.
    centered : bool, default False
        The file's ``centering``: gradients minus their mean over the samples.  False is its "Uncentered" line.

    Returns
    -------
    float
        In ``[0, 1]``.  With ``in_place=False, off_by_one=False`` it equals
        ``nfa_correlation(weights[layer], layer_input_agop(weights, X, layer, centered=centered),
        W0=initial_weights[layer])`` to rounding.

    Raises
    ------
    InputError
        Fewer than 2 matrices, shapes that do not chain or differ between ``weights`` and ``initial_weights``,
        non-finite entries, ``X`` of the wrong width, ``layer`` out of range, ``off_by_one`` on a non-square layer
        ``>= 2``, ``centered`` with one sample, an overflow, or a cosine that is undefined (``W = W0`` at
        ``layer``, or a zero AGOP).
    InputTypeError
        ``weights`` or ``initial_weights`` not a list of arrays, ``layer`` not an int, a switch not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> W0 = [rng.standard_normal((6, 4)), rng.standard_normal((6, 6)), rng.standard_normal((6, 6)),
    ...       rng.standard_normal((3, 6))]
    >>> W = [w + 0.5 * rng.standard_normal(w.shape) for w in W0]
    >>> X = rng.standard_normal((30, 4))
    >>> file_number = reference_file_nfa(W, W0, X, 2)
    >>> plain = reference_file_nfa(W, W0, X, 2, in_place=False, off_by_one=False)
    >>> ours = nfa_correlation(W[2], layer_input_agop(W, X, 2), W0=W0[2])
    >>> abs(plain - ours) < 1e-12, abs(file_number - ours) > 1e-3
    (True, True)
    """
    who = "reference_file_nfa"
    weights = _weights(weights, "weights", who)
    W0 = _initial(initial_weights, weights, who)
    layer = _layer(layer, len(weights), who)
    in_place = check_flag(in_place, "in_place", who)
    off_by_one = check_flag(off_by_one, "off_by_one", who)
    centered = check_flag(centered, "centered", who)
    X = _inputs(X, weights, centered, who)
    shifted = off_by_one and layer >= 2
    if shifted and weights[layer].shape[0] != weights[layer].shape[1]:
        raise InputError(f"{who}: off_by_one=True at layer {layer} >= 2 feeds relu(D h) ({weights[layer].shape[0]} "
                         f"entries) to a layer with {weights[layer].shape[1]} inputs; weights[{layer}] must be square "
                         f"(as the file's middle layers are), got shape {weights[layer].shape}, or pass "
                         "off_by_one=False")
    D = weights[layer] - W0[layer]
    net = list(weights)
    if in_place:
        net[layer] = D                                # the file's `M -= M0` on the network's own parameter
    h = _activations(net, X, layer + 1 if shifted else layer, who)
    G = _input_agop(net[layer:], h, centered, who)
    return nfa_correlation(D, G)                      # cos(D^T D, G); the file's 1/len(M) does not change it


@dataclass(frozen=True)
class NFAQuantities:
    """The three NFA numbers of one layer (uncentred cosines; see the module docstring).

    Attributes
    ----------
    paper : float
        ``cos(W^T W, AGOP_l)``: the ansatz as the paper states it.
    sigprop_w0 : float
        ``cos((W - W0)^T (W - W0), AGOP_l)``: ``nfa_correlation(W, AGOP_l, W0=W0)``.
    reference_file : float
        :func:`reference_file_nfa` with its defaults: what ``verify_deep_NFA.py`` prints.
    """

    paper: float
    sigprop_w0: float
    reference_file: float


def nfa_quantities(weights, initial_weights, X, layer: int, *, centered: bool = False) -> NFAQuantities:
    """The paper's, sigprop's ``W0=`` and the reference file's NFA number of layer ``layer``, on the same arrays.

    Parameters
    ----------
    weights, initial_weights, X, layer, centered
        As for :func:`reference_file_nfa` (``centered`` applies to all three AGOPs).

    Returns
    -------
    NFAQuantities

    Raises
    ------
    InputError, InputTypeError
        As :func:`reference_file_nfa`.

    Examples
    --------
    >>> import numpy as np
    >>> W = [np.array([[2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])]
    >>> W0 = [np.array([[0.0, 0.0], [0.0, 0.5]]), np.array([[1.0, 1.0]])]    # D = W - W0 = diag(2, 0.5)
    >>> q = nfa_quantities(W, W0, np.array([[1.0, 1.0], [2.0, 1.0]]), 0)  # all units active: J = (1, 1) W
    >>> round(q.paper, 6), round(q.sigprop_w0, 6), round(q.reference_file, 6)
    (0.824621, 0.810918, 0.943013)
    """
    who = "nfa_quantities"
    weights = _weights(weights, "weights", who)
    W0 = _initial(initial_weights, weights, who)
    layer = _layer(layer, len(weights), who)
    centered = check_flag(centered, "centered", who)
    X = _inputs(X, weights, centered, who)
    M = layer_input_agop(weights, X, layer, centered=centered)
    return NFAQuantities(paper=nfa_correlation(weights[layer], M),
                         sigprop_w0=nfa_correlation(weights[layer], M, W0=W0[layer]),
                         reference_file=reference_file_nfa(weights, W0, X, layer, centered=centered))
