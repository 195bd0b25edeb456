"""Compiled rainbow engines on the CPU (numba): the explicit-weight network and the exact Gram chain.

The model, the generator streams and the returned statistics are those of :mod:`sigprop.kernels.rainbow`
(``simulate_rainbow``, which dispatches here for ``method='explicit'`` and ``method='gram'``).  ``N = P + m`` points
(inputs, then anchors), ``L`` layers of widths ``n_1..n_L``.

**Explicit** (:func:`run_rainbow_explicit_cpu`): the same numbers as the NumPy simulation.  Network ``s``, layer
``l``, row ``i``::

    layer 1:   z_i(x) = (1/sqrt(d)) sum_j G_ij y1_j(x) + sqrt(C_b) beta_i          (y1 = rows of Y C_1^(1/2))
    layer l:   z_i(x) = sqrt(a_l/n) sum_j G_ij h_j(x) + sum_k (Hhat[x, P+k] sqrt(b_lk)) Xi_ik + sqrt(C_b) beta_i

with ``G``, ``Xi``, ``beta`` on streams 16, 17, 18 at the same keys as the NumPy path (``Hhat`` the previous layer's
post-activation Gram, computed by the engine itself).  ``O(n (n_prev + m) N)`` per layer, no ``n x n`` matrix stored:
the white weights are regenerated block by block (:func:`sigprop.kernels.layer_ops.matvec_rows_buffered`, the explicit
engine's row product of :mod:`sigprop.kernels.explicit_cpu`, on stream 16), the anchor part is
:func:`sigprop.kernels.rainbow_device.add_anchor_row`.  Parallel over (network, block of 128 rows) for the products,
over networks for the Grams; every sum is one thread's, in a fixed order (increasing ``j``, then ``k``; Gram entries in
increasing ``i``, the sums of :func:`sigprop.kernels.layer_ops.column_dot` that the CUDA kernels run), so the result
does not depend on the thread count and equals the CUDA simulator's bit for bit.  It differs from the NumPy path only by
the summation order of BLAS (relative differences ~1e-15 per layer).

**Gram chain** (:func:`run_rainbow_gram_cpu`): the one CPU Gram chain of :mod:`sigprop.kernels.gram_cpu`
(:func:`~sigprop.kernels.gram_cpu.make_chain_kernel`) with the covariance step
:func:`sigprop.kernels.rainbow_device.anchored_covariance_into` (its rows: :func:`anchored_covariance_rows`).  Given the
previous post-activation Gram ``Hhat`` of the ``N`` points, the rows of layer ``l`` are exactly i.i.d. ``N(0, Sigma_l)``
with ``Sigma_1 = C_b + Y C_1 Y^T / d`` and ``Sigma_l = C_b + a_l Hhat + Hhat[:, A] diag(b_l) Hhat[A, :]``
(:func:`sigprop.theory.rainbow.anchored_gram`: the explicit rows' covariance given the previous layer, which enters only
through ``Hhat``).  So each layer factors ``Sigma_l`` once (:func:`sigprop.kernels.gram_device.factor_psd`, exact for
singular ``Sigma``), draws ``n_l`` rows (:func:`sigprop.kernels.gram_device.sample_rows`), applies ``phi`` and reduces
to the next Gram: ``O(n_l N^2)`` per layer, independent of the previous width; same distribution as the explicit engine,
different numbers.  Its random numbers are those of the Gram chain of :mod:`sigprop.kernels.gram_cpu` (stream 4,
``STREAM_GRAM``, keyed by ``(seed, network, layer, row, column pair)``), so with a white covariance (``C_1 = c``,
``a_l = c``, ``b = 0``) it reproduces that engine's numbers bit for bit (a test), and, like it, it shares no numbers
with the explicit engine.

Every disk-cached kernel here is named with the fingerprint of the device sources it inlines
(:func:`sigprop.kernels.device_activations.fingerprinted`), so an edit of any of them compiles it afresh.  Built-in
activations share one cached pair of kernels (the explicit engine's statistics kernel and the chain's kernel, both
with this module as their namespace: ``_phi`` the activation switch, ``_covariance`` the anchored step); a custom
activation with a numba scalar gets its own (not cached).

Examples
--------
>>> import numpy as np
>>> from sigprop.theory.activations import activation
>>> Y1 = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])     # Y C_1^(1/2): 2 inputs, 1 anchor
>>> out = run_rainbow_explicit_cpu(Y1, [8, 8], activation("relu"), np.array([1.0]), np.array([[0.5]]), 2, 0.0,
...                                n_networks=2, seed=1)
>>> out["preact_gram"].shape
(2, 2, 3, 3)
"""
from __future__ import annotations

import math
import sys
import types
from functools import partial

import numba
import numpy as np
from numba import prange

from sigprop.theory.errors import InputTypeError

from ..theory.activations import Activation
from . import gram_cpu
from .backend import kernel_for_scalar
from .device_activations import SWITCH_FINGERPRINT, device_activation, fingerprinted
from .explicit_cpu import matvec_rows  # the explicit engines' one row product (layer_ops.matvec_rows_buffered)
from .layer_ops import add_bias_row
from .rainbow_device import (
    STREAM_RAINBOW_ANCHOR,
    STREAM_RAINBOW_BIAS,
    STREAM_RAINBOW_WHITE,
    add_anchor_row,
    anchored_covariance_into,
)

__all__ = ["run_rainbow_explicit_cpu", "run_rainbow_gram_cpu", "anchor_weights", "anchored_covariance_rows",
           "explicit_start", "explicit_layers", "layer_scales"]

# Every cached kernel here inlines device code of other modules (the generator, the rainbow and gram device code,
# the row operations), which numba's disk cache does not watch: each is a copy named with the fingerprint of all
# inlined device sources (device_activations.fingerprinted), compiled afresh whenever any of them changes.
_serial = partial(fingerprinted, error_model="numpy")
_parallel = partial(fingerprinted, parallel=True, error_model="numpy")
_BLOCK = 128  # rows of one network per parallel work item of the explicit products

# the Gram chain's row sampler (the chain of sigprop.kernels.gram_cpu, which the rainbow chain runs)
_sample_rows = gram_cpu._sample_rows


@_serial
def _linear_block(seed, net0, layer, H, n_in, n, Z, w_scale, G, lp, P, m, sqrtb, b_scale, c):
    """Rows i0 .. i0 + 127 of network s (work item c) of the explicit layer: the white product, the anchor part
    (m > 0), the bias (b_scale != 0)."""
    nblocks = (n + _BLOCK - 1) // _BLOCK
    s = c // nblocks
    i0 = (c - s * nblocks) * _BLOCK
    nrows = min(_BLOCK, n - i0)
    net = net0 + s
    N = Z.shape[2]
    if w_scale != 0.0:
        E = np.empty((4, _BLOCK))
        O = np.empty((4, _BLOCK))
        acc = np.empty((N, _BLOCK))
        matvec_rows(0, seed, STREAM_RAINBOW_WHITE, net, layer, H, s, n_in, i0, nrows, Z, w_scale, E, O, acc)
    else:
        for i in range(i0, i0 + nrows):
            for x in range(N):
                Z[s, i, x] = 0.0
    if m > 0:
        for i in range(i0, i0 + nrows):
            add_anchor_row(seed, STREAM_RAINBOW_ANCHOR, net, layer, i, G, s, lp, P, m, sqrtb, Z)
    if b_scale != 0.0:
        for i in range(i0, i0 + nrows):
            add_bias_row(seed, STREAM_RAINBOW_BIAS, net, layer, i, Z, s, b_scale)


@_parallel
def _k_linear(seed, net0, layer, H, n_in, n, Z, w_scale, G, lp, P, m, sqrtb, b_scale):
    """Z[s, i, :] for every network s and row i < n (module docstring); G[s, lp] is the previous post Gram."""
    for c in prange(Z.shape[0] * ((n + _BLOCK - 1) // _BLOCK)):
        _linear_block(seed, net0, layer, H, n_in, n, Z, w_scale, G, lp, P, m, sqrtb, b_scale, c)


@_serial
def _gram_into(Z, s, n, l, out):
    """out[s, l, x, y] = sum_{i < n} Z[s, i, x] Z[s, i, y] / n, mirrored: each entry summed from 0.0 in increasing
    i, the sums of :func:`sigprop.kernels.layer_ops.column_dot` (the CUDA kernel's), but row by row so that the
    N(N+1)/2 independent sums advance together (vectorised over y) instead of one dependency chain at a time."""
    N = Z.shape[2]
    acc = np.zeros((N, N))
    for i in range(n):
        for x in range(N):
            v = Z[s, i, x]
            for y in range(N):  # the whole row (a fixed trip count vectorises better; y < x is not used)
                acc[x, y] += v * Z[s, i, y]
    for x in range(N):
        for y in range(x, N):
            g = acc[x, y] / n
            out[s, l, x, y] = g
            out[s, l, y, x] = g


def _make_kernels(ns: types.ModuleType, tag: str, cache: bool):
    """The explicit engine's activation-and-Gram kernel and the Gram chain's kernel (built by
    :func:`sigprop.kernels.gram_cpu.make_chain_kernel`) for the activation switch ``ns._phi(code, x, p0, p1)`` and
    the covariance step ``ns._covariance`` (the per-network functions live in the namespace ``ns``, a module, so that
    numba's disk cache keys on its name; ``tag`` names the compiled functions, with the switch's fingerprint for the
    built-ins)."""

    def stats_network(Z, A, n, l, code, p0, p1, pre, post, s):
        """Network s: pre Gram of Z, A = phi(Z), post Gram of A (layer index l)."""
        N = Z.shape[2]
        _gram_into(Z, s, n, l, pre)
        for i in range(n):
            for x in range(N):
                A[s, i, x] = ns._phi(code, Z[s, i, x], p0, p1)
        _gram_into(A, s, n, l, post)

    stats_network.__qualname__ = stats_network.__name__ = f"rainbow_stats_network_{tag}"
    ns._rainbow_stats_network = numba.njit(cache=cache, error_model="numpy")(stats_network)

    def stats_kernel(Z, A, n, l, code, p0, p1, pre, post):
        for s in prange(Z.shape[0]):
            ns._rainbow_stats_network(Z, A, n, l, code, p0, p1, pre, post, s)

    stats_kernel.__qualname__ = stats_kernel.__name__ = f"rainbow_stats_kernel_{tag}"
    return (numba.njit(parallel=True, cache=cache, error_model="numpy")(stats_kernel),
            gram_cpu.make_chain_kernel(ns, f"rainbow_{tag}", cache))


# The built-in activations: this module is the namespace, _phi the shared device switch, _covariance the anchored
# covariance step of the Gram chain.
_phi = device_activation
_covariance = anchored_covariance_into
_BUILTIN = _make_kernels(sys.modules[__name__], f"builtin_{SWITCH_FINGERPRINT}", cache=True)


def _kernels(act: Activation):
    """(stats kernel, gram kernel) for ``act``: the cached built-in pair, or one pair per custom scalar."""
    if not act.is_builtin and act.scalar is None:
        raise InputTypeError(f"activation {act.label}: a custom activation needs a numba scalar (act.scalar) for the "
                             "compiled rainbow engines")
    return _BUILTIN if act.is_builtin else kernel_for_scalar("rainbow_cpu", act, _build_custom)


def _build_custom(act: Activation):
    ns = gram_cpu.chain_namespace(f"{__name__}.custom", gram_cpu.activation_device_fn(act), anchored_covariance_into)
    return _make_kernels(ns, "custom", cache=False)


def layer_scales(l: int, d: int, n_in: int, a, used: np.ndarray) -> tuple[float, int]:
    """Layer ``l`` (0-based) of the explicit engines: the white weights' scale and the number of anchors used.

    Layer 0 multiplies the (``C_1^(1/2)``-transformed) inputs by ``1/sqrt(d)`` and uses no anchors; layer ``l >= 1``
    scales its white part by ``sqrt(a_l / n_in)`` (0 when ``a_l = 0``) and uses ``used[l - 1]`` anchors.

    Examples
    --------
    >>> layer_scales(0, 4, 4, [2.0], np.array([3])), layer_scales(1, 4, 8, [2.0], np.array([3]))
    ((0.5, 0), (0.5, 3))
    """
    if l == 0:
        return 1.0 / math.sqrt(d), 0
    return (math.sqrt(a[l - 1] / n_in) if a[l - 1] > 0 else 0.0), int(used[l - 1])


def anchor_weights(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per hidden layer of the explicit engines: the anchors used and ``sqrt(b)``.

    A layer uses its ``m`` anchors if any ``b_lk > 0`` and none otherwise (the NumPy path then draws no ``Xi``).

    Parameters
    ----------
    b : numpy.ndarray
        ``(L - 1, m)`` validated anchor weights (``>= 0``).

    Returns
    -------
    used : numpy.ndarray
        ``(L - 1,)`` int64: ``m`` or 0 per layer.
    sqrt_b : numpy.ndarray
        ``(L - 1, m)``: ``sqrt(b)``.

    Examples
    --------
    >>> used, sb = anchor_weights(np.array([[4.0, 1.0], [0.0, 0.0]]))
    >>> used.tolist(), sb[0].tolist()
    ([2, 0], [2.0, 1.0])
    """
    used = np.array([b.shape[1] if (b.shape[1] and np.any(row > 0)) else 0 for row in b], dtype=np.int64)
    return used, np.ascontiguousarray(np.sqrt(b), dtype=np.float64).reshape(b.shape)


def anchored_covariance_rows(a, b, C_b: float, depth: int, n_anchors: int) -> np.ndarray:
    """The rows ``cov[l] = (a_l, C_b, b_l1 .. b_lm)`` of :func:`sigprop.kernels.rainbow_device.anchored_covariance_into`
    for the Gram chain of ``depth`` layers with ``m = n_anchors`` anchors: row 0 (the first layer, whose covariance
    ``K1`` starts the chain) holds ``(0, C_b, 0 ..)``, row ``l >= 1`` the weights ``a``, ``b`` of layer ``l + 1``.

    Examples
    --------
    >>> anchored_covariance_rows([2.0], [[0.5]], 0.1, 2, 1).tolist()
    [[0.0, 0.1, 0.0], [2.0, 0.1, 0.5]]
    """
    cov = np.zeros((depth, 2 + n_anchors))
    cov[:, 1] = float(C_b)
    cov[1:, 0] = np.asarray(a, dtype=np.float64).reshape(depth - 1)
    cov[1:, 2:] = np.asarray(b, dtype=np.float64).reshape(depth - 1, n_anchors)
    return cov


def explicit_layers(widths: tuple[int, ...], d: int, a, used: np.ndarray, sqrt_b, first):
    """The layers of the explicit engines: ``(l, n_in, n, w_scale, m, sqrt_b row)`` per layer (0-based ``l``), with
    :func:`layer_scales` and ``first`` as the (unused) anchor row of layer 0.

    Examples
    --------
    >>> [t[:5] for t in explicit_layers((8, 16), 4, [2.0], np.array([3]), [None], None)]
    [(0, 4, 8, 0.5, 0), (1, 8, 16, 0.5, 3)]
    """
    n_in = d
    for l, n in enumerate(widths):
        w_scale, m = layer_scales(l, d, n_in, a, used)
        yield l, n_in, n, w_scale, m, (first if l == 0 else sqrt_b[l - 1])
        n_in = n


def explicit_start(Y1: np.ndarray, widths, b: np.ndarray, P: int,
                   n_networks: int) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """The explicit engines' set-up: ``(widths, used, sqrt_b, H0)``, the widths as ints, :func:`anchor_weights` of
    ``b``, and the first layer's input ``H0`` (S, max(widths, d), N) holding ``Y1^T`` (N, d) in its first d rows.

    Examples
    --------
    >>> widths, used, sqrt_b, H0 = explicit_start(np.ones((3, 2)), [4, 5], np.array([[4.0]]), 2, 6)
    >>> widths, used.tolist(), sqrt_b.tolist(), H0.shape
    ((4, 5), [1], [[2.0]], (6, 5, 3))
    """
    Y1 = np.ascontiguousarray(Y1, dtype=np.float64)
    N, d = Y1.shape
    widths = tuple(int(w) for w in widths)
    used, sqrt_b = anchor_weights(np.asarray(b, dtype=np.float64).reshape(len(widths) - 1, N - P))
    H0 = np.zeros((int(n_networks), max(widths + (d,)), N))
    H0[:, :d, :] = Y1.T
    return widths, used, sqrt_b, H0


def run_rainbow_explicit_cpu(Y1: np.ndarray, widths, act: Activation, a: np.ndarray, b: np.ndarray, P: int,
                             C_b: float, *, n_networks: int, seed: int, network0: int = 0,
                             keep_activations: bool = False) -> dict:
    """Explicit-weight rainbow networks (module docstring) on the first-layer inputs ``Y1 = Y C_1^(1/2)``.

    Parameters
    ----------
    Y1 : numpy.ndarray
        ``(N, d)``: inputs then anchors, already multiplied by ``C_1^(1/2)``.
    widths : sequence of int
        ``n_1..n_L``.
    act : Activation
        Built-in, or custom with a numba scalar.
    a, b : numpy.ndarray
        ``(L - 1,)`` white parts and ``(L - 1, m)`` anchor weights of layers ``2..L`` (validated, ``>= 0``).
    P : int
        Number of inputs (the anchors are the last ``N - P`` points).
    C_b : float
        Bias variance.
    n_networks, seed, network0 : int
        Networks ``network0 .. network0 + n_networks - 1`` of generator key ``seed``.
    keep_activations : bool
        Also return ``activations``: per layer an ``(S, N, n_l)`` array.

    Returns
    -------
    dict
        ``preact_gram``, ``postact_gram`` ``(S, L, N, N)`` and, with ``keep_activations``, ``activations``.

    Raises
    ------
    InputTypeError
        A custom activation without a numba scalar.
    """
    stats_kernel, _ = _kernels(act)
    widths, used, sqrtb, H = explicit_start(Y1, widths, b, P, n_networks)
    S, L, (N, d) = H.shape[0], len(widths), np.shape(Y1)
    pre = np.zeros((S, L, N, N))
    post = np.zeros((S, L, N, N))
    Z = np.zeros(H.shape)
    seed_u = np.uint64(seed)
    code = np.int64(act.code)
    p0, p1 = (float(v) for v in act.device_params)
    b_scale = math.sqrt(C_b)
    empty = np.zeros(max(N - P, 1))
    kept = []
    for l, n_in, n, w_scale, m, sb in explicit_layers(widths, d, a, used, sqrtb, empty):
        _k_linear(seed_u, np.int64(network0), np.int64(l + 1), H, np.int64(n_in), np.int64(n), Z, w_scale, post,
                  np.int64(max(l - 1, 0)), np.int64(P), np.int64(m), np.ascontiguousarray(sb), b_scale)
        stats_kernel(Z, H, np.int64(n), np.int64(l), code, p0, p1, pre, post)  # H <- phi(Z): the next input
        if keep_activations:
            kept.append(np.ascontiguousarray(H[:, :n, :].transpose(0, 2, 1)))
    out = {"preact_gram": pre, "postact_gram": post}
    if keep_activations:
        out["activations"] = tuple(kept)
    return out


def run_rainbow_gram_cpu(K1: np.ndarray, widths, act: Activation, a: np.ndarray, b: np.ndarray, P: int, C_b: float,
                         *, n_networks: int, seed: int, network0: int = 0) -> dict:
    """The exact Gram chain of rainbow networks (module docstring) from the first-layer covariance ``K1``.

    Parameters
    ----------
    K1 : numpy.ndarray
        ``(N, N)``: ``C_b + Y C_1 Y^T / d`` (:func:`sigprop.theory.rainbow.first_layer_gram`), symmetric.
    widths, act, a, b, P, C_b, n_networks, seed, network0
        As :func:`run_rainbow_explicit_cpu`.

    Returns
    -------
    dict
        ``preact_gram``, ``postact_gram`` ``(S, L, N, N)`` (a network whose covariance became non-finite is NaN
        from that layer on).

    Raises
    ------
    FloatingPointError
        A layer covariance that is not PSD beyond ``gram_device.PSD_RTOL`` (a numerical breakdown).
    InputTypeError
        A custom activation without a numba scalar.

    Examples
    --------
    >>> import numpy as np
    >>> from sigprop.theory.activations import activation
    >>> out = run_rainbow_gram_cpu(np.array([[1.0, 0.5], [0.5, 1.0]]), [16, 16], activation("tanh"),
    ...                            np.array([1.0]), np.array([[2.0]]), 1, 0.0, n_networks=3, seed=2)
    >>> out["postact_gram"].shape
    (3, 2, 2, 2)
    """
    _, gram_kernel = _kernels(act)
    K1 = np.ascontiguousarray(K1, dtype=np.float64)
    cov = anchored_covariance_rows(a, b, C_b, len(widths), K1.shape[0] - P)
    pre, post, _ = gram_cpu.run_chain_cpu(gram_kernel, K1, widths, act, cov, n_networks, seed, network0, with_m4=False)
    return {"preact_gram": pre, "postact_gram": post}
