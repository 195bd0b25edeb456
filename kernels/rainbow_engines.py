"""The engines of the rainbow covariance model behind :func:`sigprop.kernels.simulate` (its table ``RAINBOW_ENGINES``).

The construction, the generator streams and the three methods are described in :mod:`sigprop.kernels.rainbow`:
:func:`rainbow_numpy` is the vectorised NumPy reference (``method='numpy'``); ``rainbow_explicit_*`` and
``rainbow_gram_*`` adapt the compiled engines (:mod:`sigprop.kernels.rainbow_cpu`,
:mod:`sigprop.kernels.rainbow_cuda`) to ``simulate``'s engine signature; :func:`rainbow_range_convention` applies the
overflow/underflow convention of :mod:`sigprop.kernels.float_range` to their statistics; and
:func:`rainbow_layer_weights` forms the explicit rows of a layer from the same random numbers, for checks.
"""
from __future__ import annotations

import math

import numpy as np

from sigprop.theory.activations import Activation
from sigprop.theory.arguments import integer_in_range
from sigprop.theory.rainbow import first_layer_gram, psd_sqrt

from .covariance import RainbowCovariance
from .float_range import RangeReport, check_statistics
from .rainbow_device import STREAM_RAINBOW_ANCHOR, STREAM_RAINBOW_BIAS, STREAM_RAINBOW_WHITE
from .rng import normals

__all__ = ["rainbow_layer_weights", "rainbow_range_convention", "rainbow_numpy", "rainbow_explicit_cpu",
           "rainbow_explicit_cuda", "rainbow_gram_cpu", "rainbow_gram_cuda"]


def _first_layer_inputs(Y: np.ndarray, C1) -> np.ndarray:
    """``Y C_1^(1/2)`` (validated ``C1``)."""
    if np.ndim(C1) == 0:
        return math.sqrt(C1) * Y
    return Y @ psd_sqrt(C1)


def _bias(seed: int, net: int, layer: int, n: int, C_b: float) -> np.ndarray | float:
    if C_b == 0.0:
        return 0.0
    return math.sqrt(C_b) * normals(seed, STREAM_RAINBOW_BIAS, net, layer, 1, n)[0]


def _preact(h: np.ndarray, layer: int, n_out: int, a: float, b: np.ndarray, P: int, seed: int, net: int,
            C_b: float) -> np.ndarray:
    """``z^(layer)`` (N, n_out) from ``h^(layer-1)`` (N, n) for a hidden layer (layer >= 2)."""
    n = h.shape[1]
    z = np.zeros((h.shape[0], n_out))
    if a > 0:
        G = normals(seed, STREAM_RAINBOW_WHITE, net, layer, n_out, n)
        z += math.sqrt(a / n) * (h @ G.T)
    if b.size and np.any(b > 0):
        Xi = normals(seed, STREAM_RAINBOW_ANCHOR, net, layer, n_out, b.size)
        H_A = h @ h[P:].T / n                         # (N, m): Hhat(x, z_k)
        z += (H_A * np.sqrt(b)) @ Xi.T
    return z + _bias(seed, net, layer, n_out, C_b)


def _engine_inputs(X: np.ndarray, covariance: RainbowCovariance) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(Y, a, b, P)`` of validated inputs and model: ``Y = [X; anchors]`` and writable copies of ``a``, ``b``."""
    return covariance.rows(X), np.array(covariance.a), np.array(covariance.b), X.shape[0]


def rainbow_numpy(X: np.ndarray, widths: tuple[int, ...], act: Activation, covariance: RainbowCovariance, C_b: float,
                  n_networks: int, seed: int, *, first_network: int = 0, keep_activations: bool = False) -> dict:
    """The NumPy reference (module docstring) of networks ``first_network ..``: ``preact_gram``, ``postact_gram``
    ``(S, L, N, N)`` and, with ``keep_activations``, ``activations``; the engine's raw numbers (arguments validated
    by :func:`sigprop.kernels.simulate.check_request`)."""
    Y, a, b, P = _engine_inputs(X, covariance)
    Y1 = _first_layer_inputs(Y, covariance.C1)
    return _run_numpy(act, Y1, a, b, P, C_b, widths, n_networks, seed, first_network, keep_activations)


def _explicit(backend: str, X, widths, act, covariance, C_b, n_networks, seed, first_network, keep) -> dict:
    if backend == "cuda":
        from .rainbow_cuda import run_rainbow_explicit_cuda as engine
    else:
        from .rainbow_cpu import run_rainbow_explicit_cpu as engine
    Y, a, b, P = _engine_inputs(X, covariance)
    Y1 = _first_layer_inputs(Y, covariance.C1)
    return engine(Y1, widths, act, a, b, P, C_b, keep_activations=keep, n_networks=n_networks, seed=seed,
                  network0=first_network)


def _gram(backend: str, X, widths, act, covariance, C_b, n_networks, seed, first_network) -> dict:
    if backend == "cuda":
        from .rainbow_cuda import run_rainbow_gram_cuda as engine
    else:
        from .rainbow_cpu import run_rainbow_gram_cpu as engine
    Y, a, b, P = _engine_inputs(X, covariance)
    K1 = first_layer_gram(Y, covariance.C1, C_b)
    return engine(K1, widths, act, a, b, P, C_b, n_networks=n_networks, seed=seed, network0=first_network)


def rainbow_explicit_cpu(X, widths, act, covariance, C_b, n_networks, seed, *, first_network=0,
                         keep_activations=False) -> dict:
    """The compiled explicit engine on the CPU (:func:`sigprop.kernels.rainbow_cpu.run_rainbow_explicit_cpu`), with
    the arguments of :func:`rainbow_numpy`."""
    return _explicit("cpu", X, widths, act, covariance, C_b, n_networks, seed, first_network, keep_activations)


def rainbow_explicit_cuda(X, widths, act, covariance, C_b, n_networks, seed, *, first_network=0,
                          keep_activations=False) -> dict:
    """The compiled explicit engine on the GPU (:func:`sigprop.kernels.rainbow_cuda.run_rainbow_explicit_cuda`),
    with the arguments of :func:`rainbow_numpy`."""
    return _explicit("cuda", X, widths, act, covariance, C_b, n_networks, seed, first_network, keep_activations)


def rainbow_gram_cpu(X, widths, act, covariance, C_b, n_networks, seed, *, first_network=0,
                     keep_activations=False) -> dict:
    """The exact Gram chain on the CPU (:func:`sigprop.kernels.rainbow_cpu.run_rainbow_gram_cpu`), with the
    arguments of :func:`rainbow_numpy` (``keep_activations`` is refused by ``simulate`` before any work)."""
    return _gram("cpu", X, widths, act, covariance, C_b, n_networks, seed, first_network)


def rainbow_gram_cuda(X, widths, act, covariance, C_b, n_networks, seed, *, first_network=0,
                      keep_activations=False) -> dict:
    """The exact Gram chain on the GPU (:func:`sigprop.kernels.rainbow_cuda.run_rainbow_gram_cuda`), with the
    arguments of :func:`rainbow_numpy`."""
    return _gram("cuda", X, widths, act, covariance, C_b, n_networks, seed, first_network)


def _run_numpy(act: Activation, Y1: np.ndarray, a: np.ndarray, b: np.ndarray, P: int, C_b: float,
               widths: tuple[int, ...], S: int, seed: int, network0: int, keep: bool) -> dict:
    """The NumPy reference (module docstring) on the first-layer inputs ``Y1 = Y C_1^(1/2)``: the engines' dict."""
    N, d = Y1.shape
    L = len(widths)
    pre = np.empty((S, L, N, N))
    post = np.empty((S, L, N, N))
    kept = [np.empty((S, N, n)) for n in widths] if keep else None
    for s in range(S):
        net = network0 + s
        G = normals(seed, STREAM_RAINBOW_WHITE, net, 1, widths[0], d)
        z = Y1 @ G.T / math.sqrt(d) + _bias(seed, net, 1, widths[0], C_b)
        for layer in range(L):
            h = act(z)
            n = widths[layer]
            pre[s, layer] = z @ z.T / n
            post[s, layer] = h @ h.T / n
            if kept is not None:
                kept[layer][s] = h
            if layer + 1 < L:  # array index layer + 1 is the 1-based layer layer + 2
                z = _preact(h, layer + 2, widths[layer + 1], float(a[layer]), b[layer], P, seed, net, C_b)
    out = {"preact_gram": pre, "postact_gram": post}
    if kept is not None:
        out["activations"] = tuple(kept)
    return out


def _zero_covariance(post: np.ndarray, a: np.ndarray, b: np.ndarray, P: int, C_b: float) -> np.ndarray:
    """``(S, L)``: the covariance ``C_b + a_l Hhat + Hhat[:, A] diag(b_l) Hhat[A, :]`` of hidden layer ``l >= 2`` is
    exactly 0 whatever ``Hhat`` (the previous post-activation Gram): ``C_b = 0``, ``a_l = 0`` and every anchor with
    ``b_lk > 0`` has a zero feature.  Its pre-activations are then exactly 0 by construction, not by underflow."""
    S, L = post.shape[:2]
    zero = np.zeros((S, L), dtype=bool)
    if C_b > 0:
        return zero
    for l in range(1, L):
        if a[l - 1] == 0:
            anchor_cols = post[:, l - 1, :, P:][:, :, b[l - 1] > 0]
            zero[:, l] = ~np.any(anchor_cols != 0, axis=(1, 2))
    return zero


def rainbow_range_convention(out: dict, X: np.ndarray, covariance: RainbowCovariance, C_b: float, method: str,
                             warn: bool = True, stacklevel: int = 2) -> RangeReport:
    """The overflow/underflow convention of :func:`sigprop.kernels.simulate`
    (:func:`sigprop.kernels.float_range.check_statistics`), in place on a rainbow engine's ``out``, with at most one
    warning of each kind (``stacklevel`` counted from the caller of this function); the report.

    The rainbow engines keep Gram matrices only: the moments ``check_statistics`` also reads stand in as the
    pre-activation Gram's diagonal (the second moments; a non-finite or subnormal diagonal entry is one of the Gram
    already, so they add no finding).  A layer whose covariance is exactly 0 (:func:`_zero_covariance`) has exactly
    zero pre-activations, which the convention would take for an underflow: they stand in as 1 during the check.
    The first layer's input covariance is that of ``Y C_1^(1/2)`` (``Y = [X; anchors]``)."""
    Y, a, b, P = _engine_inputs(X, covariance)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        Y1 = _first_layer_inputs(Y, covariance.C1)
        pre, post = out["preact_gram"], out["postact_gram"]
        exact = _zero_covariance(post, a, b, P, C_b) & ~np.any(pre != 0, axis=(2, 3))
        pre[exact] = 1.0
        m2 = np.diagonal(pre, axis1=2, axis2=3).copy()
        rep = check_statistics({"preact_gram": pre, "postact_gram": post, "preact_m2": m2, "preact_m4": m2.copy()},
                               Y1, C_b, method, warn=warn, stacklevel=stacklevel + 1)
        pre[exact & ~np.isnan(pre[:, :, 0, 0])] = 0.0  # NaN: an earlier overflow of the network
    return rep


def rainbow_layer_weights(h_anchors, a: float, b, n_out: int, *, seed: int, network: int, layer: int) -> np.ndarray:
    """The explicit ``(n_out, n)`` weight matrix of a hidden layer, from the same numbers as :func:`simulate_rainbow`.

    ``W = sqrt(a / n) G + Xi diag(sqrt(b)) h_anchors / n`` (``G``, ``Xi`` on streams 16, 17 at ``(seed, network,
    layer)``), so that ``z = h W^T + beta`` reproduces the simulation's pre-activations.  Forms the matrix: for
    checks only.

    Parameters
    ----------
    h_anchors : array_like
        ``(m, n)`` finite-width anchor features ``hhat_k`` of the previous layer.
    a : float
        White part ``>= 0``.
    b : array_like
        ``(m,)`` anchor weights ``>= 0``.
    n_out : int
        Rows.
    seed, network, layer : int
        Generator coordinates (``layer >= 2``).

    Returns
    -------
    numpy.ndarray
        ``(n_out, n)``; each row has covariance ``(a I + sum_k b_k hhat_k hhat_k^T / n) / n``.

    Raises
    ------
    InputError
        Negative or non-finite ``a``, ``b``, ``h_anchors``; mismatched ``b`` and ``h_anchors``; bad coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> W = rainbow_layer_weights(np.ones((1, 4)), 1.0, [0.5], 3, seed=0, network=0, layer=2)
    >>> W.shape
    (3, 4)
    """
    from sigprop.theory.rainbow import anchor_covariance

    who = "rainbow_layer_weights"
    anchor_covariance(a, b, h_anchors)  # validates a, b, h_anchors (a small n x n matrix: checks only)
    F = np.asarray(h_anchors, dtype=float)
    bv = np.asarray(b, dtype=float)
    n_out = integer_in_range("n_out", n_out, 1, who=who)
    layer = integer_in_range("layer", layer, 2, who=who)
    n = F.shape[1]
    W = math.sqrt(a / n) * normals(seed, STREAM_RAINBOW_WHITE, network, layer, n_out, n)
    if bv.size:
        Xi = normals(seed, STREAM_RAINBOW_ANCHOR, network, layer, n_out, bv.size)
        W = W + (Xi * np.sqrt(bv)) @ F / n
    return W
