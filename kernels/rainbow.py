"""Finite-width rainbow networks with data-defined weight covariances: a vectorised NumPy (float64) simulation.

The network of :mod:`sigprop.theory.rainbow` (docs/rainbow.md) at widths ``n_1..n_L``, on ``P`` inputs and ``m``
anchors propagated together (``Y = [X; Z]``, ``N = P + m`` rows, anchors last).  Network ``s``, layer ``l``
(1-based), every random number from the counter-based generator (:func:`sigprop.kernels.rng.normals`, keyed by
``(seed, network0 + s, l, row, column)``) on streams of this module's own, used by no other engine:

    STREAM_RAINBOW_WHITE  = 16:  G^(l)   (n_l, n_{l-1}) standard normals (the white part of the rows)
    STREAM_RAINBOW_ANCHOR = 17:  Xi^(l)  (n_l, m)       standard normals (the anchor coefficients; layers l >= 2)
    STREAM_RAINBOW_BIAS   = 18:  beta^(l) = sqrt(C_b) * normals(seed, 18, net, l, 1, n_l)[0]

Layer 1 (covariance shape ``C_1``, a scalar ``c`` meaning ``c I``)::

    z^(1) = Y C_1^(1/2) G^(1)T / sqrt(d) + beta^(1)        (C_1^(1/2) symmetric, by eigendecomposition, once)

i.e. row ``i`` is ``w_i = C_1^(1/2) g_i / sqrt(d)``, covariance exactly ``C_1 / d``.  Layers ``l >= 2``, with
``h = h^(l-1)`` the ``(N, n)`` activations (``n = n_{l-1}``), ``Hhat = h h^T / n`` their Gram and
``hhat_k = h[P + k]`` the finite-width feature of anchor ``k``, row ``i`` is::

    w_i = sqrt(a_l / n) g_i + sum_k sqrt(b_lk) Xi_ik hhat_k / n

whose covariance given the previous layers is exactly
``(1/n) (a_l I + sum_k b_lk hhat_k hhat_k^T / n) = C_l / n`` (docs/rainbow.md), the convention of
:mod:`sigprop.theory.rainbow`.  The pre-activations are computed without forming ``w_i`` or ``C_l``::

    z^(l)(x) = sqrt(a_l / n) G^(l) h(x) + Xi^(l) diag(sqrt(b_l)) Hhat[A, x] + beta^(l)      (A = anchor rows)

which is ``O(n (P + m))`` per row (the only ``n_l x n_{l-1}`` array is ``G^(l)``, the white weights themselves).
:func:`rainbow_layer_weights` forms the explicit rows from the same numbers, for checks.

Returned per network and layer (as in docs/conventions.md): ``preact_gram[s, l] = z^T z / n_l`` and
``postact_gram[s, l] = h^T h / n_l``, ``(N, N)`` on inputs and anchors together.  Costs about 2.5 ns per white
normal plus the matrix products (a 1024-wide layer on 10 points in ~4 ms on one core).

Engines (``simulate_rainbow(..., method=, backend=)``): this NumPy code is ``method='numpy'``, the default and the
reference.  ``method='explicit'`` runs the same construction compiled (:mod:`sigprop.kernels.rainbow_cpu`, numba,
parallel; :mod:`sigprop.kernels.rainbow_cuda` with ``backend='cuda'``) on the same random numbers: the same Grams up
to summation order.  ``method='gram'`` is the exact Gram chain: given the previous post-activation Gram, the rows of
a layer are i.i.d. ``N(0, C_b + a_l Hhat + Hhat[:, A] diag(b_l) Hhat[A, :])``
(:func:`sigprop.theory.rainbow.anchored_gram`; layer 1 ``N(0, C_b + Y C_1 Y^T / d)``), so it draws them from one
factorisation per layer at ``O(n_l N^2)``, independent of the previous width: the same distribution, other numbers
(those of the Gram chain of :mod:`sigprop.kernels.gram_cpu`, stream 4).  The device code they share is
:mod:`sigprop.kernels.rainbow_device`.

Arguments are checked before any work (:func:`sigprop.theory.rainbow.check_rainbow_arguments`):
:class:`~sigprop.theory.errors.InputError` names the argument; ``C_1`` not symmetric PSD beyond rounding reports its
most negative eigenvalue; nothing is symmetrised or clipped silently.  The memory a run needs is planned before any
work, as :func:`sigprop.kernels.simulate` plans it, and statistics that leave float64's normal range follow its
convention (:mod:`sigprop.kernels.float_range`): NaN from the first non-finite one on, subnormal ones 0, at most one
warning of each kind.

Examples
--------
>>> import numpy as np
>>> X = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> sim = simulate_rainbow("relu", X, C1=2.0, a=[2.0], b=[[1.0]], anchors=np.array([[0.0, 1.0]]),
...                        widths=(64, 64), n_networks=3, seed=1)
>>> sim.preact_gram.shape, sim.postact_gram.shape
((3, 2, 3, 3), (3, 2, 3, 3))
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sigprop.theory.activations import Activation, as_activation
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import check_rainbow_arguments, psd_sqrt

from .float_range import check_statistics
from .rainbow_device import STREAM_RAINBOW_ANCHOR, STREAM_RAINBOW_BIAS, STREAM_RAINBOW_WHITE
from .rng import normals

__all__ = [
    "STREAM_RAINBOW_WHITE",
    "STREAM_RAINBOW_ANCHOR",
    "STREAM_RAINBOW_BIAS",
    "METHODS",
    "BACKENDS",
    "RainbowSimulation",
    "rainbow_layer_weights",
    "simulate_rainbow",
]



@dataclass(frozen=True)
class RainbowSimulation:
    """Result of :func:`simulate_rainbow`.

    Attributes
    ----------
    preact_gram : numpy.ndarray
        ``(S, L, N, N)``: ``z^T z / n_l`` of network ``s``, layer ``l + 1``, on inputs then anchors.
    postact_gram : numpy.ndarray
        ``(S, L, N, N)``: ``h^T h / n_l``.
    n_inputs : int
        ``P``.
    widths : tuple of int
        ``n_1..n_L``.
    activations : tuple of numpy.ndarray or None
        With ``keep_activations``: per layer an ``(S, N, n_l)`` array of ``h^(l)``; else None.
    """

    preact_gram: np.ndarray
    postact_gram: np.ndarray
    n_inputs: int
    widths: tuple[int, ...]
    activations: tuple[np.ndarray, ...] | None = None


# The generator's coordinates (sigprop.kernels.rng): rows 0 .. 2^32 - 1 (the neurons of a layer), layers below 2^24.
_MAX_WIDTH = 2**32
_MAX_LAYERS = 2**24 - 1


def _check_int(v, name: str, who: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise InputTypeError(f"{who}: {name} must be an integer, got {type(v).__name__}")
    if v < lo:
        raise InputError(f"{who}: {name} must be >= {lo}, got {v}")
    return int(v)


def _check_widths(widths, L: int, who: str) -> tuple[int, ...]:
    """``n_1..n_L``: ``L`` integers in ``[1, 2^32]`` (the generator's rows; ``L <= 2^24 - 1``, its layers)."""
    if L > _MAX_LAYERS:
        raise InputError(f"{who}: a must have at most {_MAX_LAYERS - 1} entries (L = len(a) + 1 layers, at most "
                         f"2^24 - 1, the random generator's range of layers), got {L - 1}")
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise InputTypeError(f"{who}: widths must be a sequence of L = len(a) + 1 = {L} integers")
    if len(widths) != L:
        raise InputError(f"{who}: widths must have L = len(a) + 1 = {L} entries, got {len(widths)}")
    ws = tuple(_check_int(w, f"widths[{i}]", who, 1) for i, w in enumerate(widths))
    for i, w in enumerate(ws):
        if w > _MAX_WIDTH:
            raise InputError(f"{who}: widths[{i}] must be in [1, 2^32] (the random generator's range of rows), "
                             f"got {w}")
    return ws


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


METHODS = ("numpy", "explicit", "gram")
BACKENDS = ("cpu", "cuda")


def simulate_rainbow(act: str | Activation, X, C1, a, b=None, anchors=None, *, widths, n_networks: int = 1,
                     seed: int = 0, network0: int = 0, C_b: float = 0.0, keep_activations: bool = False,
                     method: str = "numpy", backend: str = "cpu") -> RainbowSimulation:
    """Simulate ``n_networks`` independent finite-width rainbow networks (module docstring for the construction).

    Three engines (``method``), all on the same model:

    * ``'numpy'`` (default): the vectorised NumPy reference of this module (CPU only);
    * ``'explicit'``: the compiled explicit-weight engine (:mod:`sigprop.kernels.rainbow_cpu`,
      :mod:`sigprop.kernels.rainbow_cuda`): the same random numbers as ``'numpy'``, so the same Grams up to
      summation order (relative differences ~1e-15);
    * ``'gram'``: the exact Gram chain: rows of layer ``l`` drawn i.i.d. from ``N(0, Sigma_l)``,
      ``Sigma_l = C_b + a_l Hhat + Hhat[:, A] diag(b_l) Hhat[A, :]`` (``C_b + Y C_1 Y^T / d`` for layer 1), cost
      ``O(n_l N^2)`` per layer independent of the previous width; the same distribution, other random numbers
      (stream 4 of the Gram chain, :mod:`sigprop.kernels.rainbow_cpu`).

    Parameters
    ----------
    act : str or Activation
        The activation.
    X : array_like
        ``(P, d)`` inputs.
    C1 : float or array_like
        First-layer covariance shape (scalar ``c`` = ``c I``, or ``(d, d)`` symmetric PSD); rows ``N(0, C1 / d)``.
    a : array_like
        ``(L - 1,)`` white parts of layers ``2..L``, ``>= 0``.
    b : array_like, optional
        ``(L - 1, m)`` anchor weights ``>= 0``; default zeros.
    anchors : array_like, optional
        ``(m, d)`` anchor inputs; default none.
    widths : sequence of int
        ``n_1..n_L`` (``L = len(a) + 1 <= 2^24 - 1``), each in ``[1, 2^32]`` (the generator's rows).
    n_networks : int
        ``S >= 1``; network ``s`` uses generator coordinate ``network0 + s``.
    seed, network0 : int
        Generator key and first network index (``0 <= seed < 2^64``, ``network0 + S <= 2^32``).
    C_b : float
        Bias variance ``>= 0``.
    keep_activations : bool
        Also return the activations ``h^(l)`` of every layer (memory ``S N sum n_l`` floats); not with
        ``method='gram'``.
    method : {'numpy', 'explicit', 'gram'}
        The engine (above).
    backend : {'cpu', 'cuda'}
        Where the compiled engines run (``'numpy'`` runs on the CPU only).

    Returns
    -------
    RainbowSimulation
        Per network and layer the pre- and post-activation Gram matrices of inputs and anchors, after the
        overflow/underflow convention of :func:`sigprop.kernels.simulate` (:mod:`sigprop.kernels.float_range`,
        the same for every method and backend): a network's statistics are NaN from the first non-finite one on
        (layer by layer, the pre- before the post-activation Gram), never inf; a subnormal statistic is 0.  The
        kept activations are the engine's raw numbers.

    Raises
    ------
    InputError
        As :func:`sigprop.theory.rainbow.rainbow_kernels`, and bad ``widths``, ``n_networks``, ``seed``,
        ``network0``, ``method``, ``backend``; ``backend='cuda'`` without a GPU (or numba's simulator);
        ``keep_activations`` with ``method='gram'``.
    InputTypeError
        A compiled engine with a custom activation that has no numba scalar.
    MemoryError
        Before any work, when one network does not fit in the memory available (the planner of
        :func:`sigprop.kernels.simulate`, which also splits the networks into batches that fit; the split changes
        no number), naming the widths and the bytes needed and available.

    Warns
    -----
    SimulationOverflowWarning, SimulationUnderflowWarning
        At most one of each per call (:mod:`sigprop.kernels.float_range`), instead of NumPy's floating-point
        warnings.

    Examples
    --------
    One anchored layer on top of a white first layer; the simulated Gram of the inputs at width 2048 is near the
    rainbow kernel:

    >>> import numpy as np
    >>> from sigprop.theory.rainbow import rainbow_kernels
    >>> X = np.array([[1.0, 0.0], [0.6, 0.8]]); Z = np.array([[0.0, 1.0]])
    >>> sim = simulate_rainbow("tanh", X, 1.0, [1.0], [[2.0]], Z, widths=(2048, 2048), n_networks=4, seed=3)
    >>> K = rainbow_kernels("tanh", X, 1.0, [1.0], [[2.0]], Z).preact[1]
    >>> bool(np.max(np.abs(sim.preact_gram[:, 1].mean(axis=0) - K)) < 0.1)
    True

    The compiled explicit engine draws the same numbers:

    >>> fast = simulate_rainbow("tanh", X, 1.0, [1.0], [[2.0]], Z, widths=(2048, 2048), n_networks=4, seed=3,
    ...                         method="explicit")
    >>> bool(np.allclose(fast.postact_gram, sim.postact_gram, rtol=1e-12, atol=0))
    True
    """
    who = "simulate_rainbow"
    act = as_activation(act)
    Y, C1, a_arr, b_arr, P, C_b = check_rainbow_arguments(X, C1, a, b, anchors, C_b, who)
    L = a_arr.size + 1
    widths = _check_widths(widths, L, who)
    S = _check_int(n_networks, "n_networks", who, 1)
    seed = _check_int(seed, "seed", who, 0)
    network0 = _check_int(network0, "network0", who, 0)
    if seed >= 2**64 or network0 + S > 2**32:
        raise InputError(f"{who}: need seed < 2^64 and network0 + n_networks <= 2^32, got {seed}, {network0 + S}")
    if not isinstance(keep_activations, (bool, np.bool_)):
        raise InputTypeError(f"{who}: keep_activations must be True or False, got {keep_activations!r}")
    _check_engine(method, backend, keep_activations, act, who)
    keep = bool(keep_activations)
    batch = _plan_memory(Y.shape, widths, S, method, keep, backend, who)
    # NumPy's own floating-point warnings (overflow in exp, ...) are replaced by the one warning of
    # float_range.check_statistics per run, which names the networks and the layer (as in simulate)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        Y1 = _first_layer_inputs(Y, C1)
        run = _engine(method, backend, act, Y, Y1, C1, a_arr, b_arr, P, C_b, widths, seed, keep)
        out = _join([run(network0 + first, min(batch, S - first)) for first in range(0, S, batch)])
        _apply_range_convention(out, Y1, a_arr, b_arr, P, C_b, method)
    return RainbowSimulation(preact_gram=out["preact_gram"], postact_gram=out["postact_gram"], n_inputs=P,
                             widths=widths, activations=out.get("activations"))


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


def _plan_memory(shape: tuple[int, int], widths: tuple[int, ...], S: int, method: str, keep: bool, backend: str,
                 who: str) -> int:
    """Networks per batch from :func:`sigprop.kernels.simulate`'s memory planner, on the ``N`` inputs and anchors
    (``shape = (N, d)``; the kept activations are counted as the backward pass's buffers); a MemoryError naming the
    widths, the bytes needed and the bytes available when one network does not fit."""
    from .simulate import plan_batches

    N, d = shape
    return plan_batches(N, d, widths, S, method, keep, backend,
                        who=f"{who} (widths={list(widths)}, n_networks={S}, {N} inputs and anchors of dimension {d})")


def _join(parts: list[dict]) -> dict:
    """The engine outputs of consecutive batches of networks, joined in network order."""
    if len(parts) == 1:
        return parts[0]
    out = {k: np.concatenate([p[k] for p in parts]) for k in ("preact_gram", "postact_gram")}
    if "activations" in parts[0]:
        out["activations"] = tuple(np.concatenate(layer) for layer in zip(*(p["activations"] for p in parts)))
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


def _apply_range_convention(out: dict, Y1: np.ndarray, a: np.ndarray, b: np.ndarray, P: int, C_b: float,
                            method: str) -> None:
    """The overflow/underflow convention of :func:`sigprop.kernels.simulate`
    (:func:`sigprop.kernels.float_range.check_statistics`), in place, with at most one warning of each kind.

    The rainbow engines keep Gram matrices only: the moments ``check_statistics`` also reads stand in as the
    pre-activation Gram's diagonal (the second moments; a non-finite or subnormal diagonal entry is one of the Gram
    already, so they add no finding).  A layer whose covariance is exactly 0 (:func:`_zero_covariance`) has exactly
    zero pre-activations, which the convention would take for an underflow: they stand in as 1 during the check."""
    pre, post = out["preact_gram"], out["postact_gram"]
    exact = _zero_covariance(post, a, b, P, C_b) & ~np.any(pre != 0, axis=(2, 3))
    pre[exact] = 1.0
    m2 = np.diagonal(pre, axis1=2, axis2=3).copy()
    check_statistics({"preact_gram": pre, "postact_gram": post, "preact_m2": m2, "preact_m4": m2.copy()}, Y1, C_b,
                     method, stacklevel=3)
    pre[exact & ~np.isnan(pre[:, :, 0, 0])] = 0.0  # NaN: an earlier overflow of the network


def _check_engine(method, backend, keep_activations, act: Activation, who: str) -> None:
    from .backend import cuda_available

    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"{who}: method must be one of {METHODS}, got {method!r}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InputError(f"{who}: backend must be one of {BACKENDS}, got {backend!r}")
    if method == "numpy" and backend != "cpu":
        raise InputError(f"{who}: method='numpy' (the NumPy reference) runs on backend='cpu' only, got {backend!r}")
    if method == "gram" and keep_activations:
        raise InputError(f"{who}: keep_activations needs method 'numpy' or 'explicit' (the Gram chain keeps Grams)")
    if method != "numpy" and not act.is_builtin and act.scalar is None:
        raise InputTypeError(f"{who}: method={method!r} needs a built-in activation or a custom one with a numba "
                             f"scalar (act.scalar); {act.label!r} has none")
    if backend == "cuda" and not cuda_available():
        raise InputError(f"{who}: backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False) or numba's "
                         "simulator (NUMBA_ENABLE_CUDASIM=1); use backend='cpu'")


def _engine(method: str, backend: str, act: Activation, Y: np.ndarray, Y1: np.ndarray, C1, a: np.ndarray,
            b: np.ndarray, P: int, C_b: float, widths: tuple[int, ...], seed: int, keep: bool):
    """``run(network0, n_networks) -> dict`` of the chosen engine (validated arguments): ``preact_gram``,
    ``postact_gram`` and, with ``keep``, ``activations``, the engine's raw numbers."""
    if method == "numpy":
        return lambda net0, count: _run_numpy(act, Y1, a, b, P, C_b, widths, count, seed, net0, keep)
    if backend == "cuda":
        from . import rainbow_cuda as eng

        explicit, gram = eng.run_rainbow_explicit_cuda, eng.run_rainbow_gram_cuda
    else:
        from . import rainbow_cpu as eng

        explicit, gram = eng.run_rainbow_explicit_cpu, eng.run_rainbow_gram_cpu
    if method == "explicit":
        return lambda net0, count: explicit(Y1, widths, act, a, b, P, C_b, keep_activations=keep, n_networks=count,
                                            seed=seed, network0=net0)
    from sigprop.theory.rainbow import first_layer_gram

    K1 = first_layer_gram(Y, C1, C_b)
    return lambda net0, count: gram(K1, widths, act, a, b, P, C_b, n_networks=count, seed=seed, network0=net0)


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
    n_out = _check_int(n_out, "n_out", who, 1)
    layer = _check_int(layer, "layer", who, 2)
    n = F.shape[1]
    W = math.sqrt(a / n) * normals(seed, STREAM_RAINBOW_WHITE, network, layer, n_out, n)
    if bv.size:
        Xi = normals(seed, STREAM_RAINBOW_ANCHOR, network, layer, n_out, bv.size)
        W = W + (Xi * np.sqrt(bv)) @ F / n
    return W
