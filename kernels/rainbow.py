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

Engines (``simulate(..., covariance=RainbowCovariance(...), method=, backend=)``, :func:`sigprop.kernels.simulate`
dispatching through its table ``RAINBOW_ENGINES`` to the ``rainbow_*`` functions of
:mod:`sigprop.kernels.rainbow_engines`): its NumPy code is ``method='numpy'``, the reference. ``method='explicit'``
runs the same construction compiled (:mod:`sigprop.kernels.rainbow_cpu`, numba, parallel;
:mod:`sigprop.kernels.rainbow_cuda` with ``backend='cuda'``) on the same random numbers: the same Grams up to summation
order. ``method='gram'`` is the exact Gram chain: given the previous post-activation Gram, the rows of a layer are
i.i.d. ``N(0, C_b + a_l Hhat + Hhat[:, A] diag(b_l) Hhat[A, :])`` (:func:`sigprop.theory.rainbow.anchored_gram`; layer
1 ``N(0, C_b + Y C_1 Y^T / d)``), so it draws them from one factorisation per layer at ``O(n_l N^2)``, independent of
the previous width: the same distribution, other numbers (those of the Gram chain of :mod:`sigprop.kernels.gram_cpu`,
stream 4). The device code they share is :mod:`sigprop.kernels.rainbow_device`.

Arguments are checked before any work (:class:`sigprop.kernels.covariance.RainbowCovariance` with
:func:`sigprop.theory.rainbow.check_rainbow_arguments`, then :func:`sigprop.kernels.simulate.check_request`):
:class:`~sigprop.theory.errors.InputError` names the argument; ``C_1`` not symmetric PSD beyond rounding reports its
most negative eigenvalue; nothing is symmetrised or clipped silently.  The memory a run needs is planned before any
work by :func:`sigprop.kernels.simulate`'s planner, and statistics that leave float64's normal range follow its
convention (:func:`rainbow_range_convention`, :mod:`sigprop.kernels.float_range`): NaN from the first non-finite one
on, subnormal ones 0, at most one warning of each kind.

:func:`simulate_rainbow` is the former entry, kept for one release: it warns (DeprecationWarning) and calls
``simulate(..., covariance=...)``.

Examples
--------
>>> import numpy as np
>>> from sigprop.kernels import RainbowCovariance, simulate
>>> X = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> cov = RainbowCovariance(C1=2.0, a=[2.0], b=[[1.0]], anchors=[[0.0, 1.0]])
>>> sim = simulate(X, depth=2, width=64, activation="relu", covariance=cov, n_networks=3, seed=1, method="numpy")
>>> sim.preact_gram.shape, sim.postact_gram.shape
((3, 2, 3, 3), (3, 2, 3, 3))
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from sigprop.theory.activations import Activation, as_activation

from .covariance import RainbowCovariance
from .rainbow_device import STREAM_RAINBOW_ANCHOR, STREAM_RAINBOW_BIAS, STREAM_RAINBOW_WHITE
from .rainbow_engines import (
    rainbow_explicit_cpu,
    rainbow_explicit_cuda,
    rainbow_gram_cpu,
    rainbow_gram_cuda,
    rainbow_layer_weights,
    rainbow_numpy,
    rainbow_range_convention,
)

__all__ = [
    "STREAM_RAINBOW_WHITE",
    "STREAM_RAINBOW_ANCHOR",
    "STREAM_RAINBOW_BIAS",
    "METHODS",
    "BACKENDS",
    "RainbowSimulation",
    "rainbow_layer_weights",
    "rainbow_range_convention",
    "rainbow_numpy",
    "rainbow_explicit_cpu",
    "rainbow_explicit_cuda",
    "rainbow_gram_cpu",
    "rainbow_gram_cuda",
    "simulate_rainbow",
]


@dataclass(frozen=True)
class RainbowSimulation:
    """Result of the deprecated :func:`simulate_rainbow` (``simulate`` returns a
    :class:`~sigprop.kernels.result.SimulationResult` with the same arrays).

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


METHODS = ("numpy", "explicit", "gram")
BACKENDS = ("cpu", "cuda")


def simulate_rainbow(act: str | Activation, X, C1, a, b=None, anchors=None, *, widths, n_networks: int = 1,
                     seed: int = 0, network0: int = 0, C_b: float = 0.0, keep_activations: bool = False,
                     method: str = "numpy", backend: str = "cpu") -> RainbowSimulation:
    """Deprecated: ``simulate(X, depth=len(a) + 1, width=widths, activation=act, covariance=RainbowCovariance(C1, a,
    b, anchors), first_network=network0, ...)`` (:func:`sigprop.kernels.simulate`); kept for one release.

    Warns :class:`DeprecationWarning`, then returns what that call returns as a :class:`RainbowSimulation` (the same
    numbers, bit for bit; read-only arrays).  The default ``method`` here is ``'numpy'`` (``simulate``'s is
    ``'gram'``).  Errors are those of :class:`~sigprop.kernels.covariance.RainbowCovariance` and ``simulate``; the
    warnings of the overflow/underflow convention point at the caller of this function.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     sim = simulate_rainbow("relu", np.eye(2), 2.0, [2.0], widths=(8, 8), n_networks=2)
    >>> sim.preact_gram.shape, caught[0].category.__name__
    ((2, 2, 2, 2), 'DeprecationWarning')
    """
    from .simulate import simulate

    warnings.warn("sigprop.kernels.rainbow.simulate_rainbow is deprecated and goes in the next release; use "
                  "sigprop.kernels.simulate(X, depth=len(a) + 1, width=widths, activation=act, "
                  "covariance=RainbowCovariance(C1, a, b, anchors), first_network=network0, ...)",
                  DeprecationWarning, stacklevel=2)
    covariance = RainbowCovariance(C1, a, b, anchors)
    with warnings.catch_warnings(record=True) as caught:  # re-issued below, at the caller's line
        warnings.simplefilter("always")
        res = simulate(X, depth=covariance.depth, width=widths, activation=as_activation(act), C_b=C_b,
                       n_networks=n_networks, method=method, backend=backend, seed=seed, covariance=covariance,
                       first_network=network0, keep_activations=keep_activations)
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=2)
    return RainbowSimulation(preact_gram=res.preact_gram, postact_gram=res.postact_gram, n_inputs=res.n_inputs,
                             widths=res.widths, activations=res.activations)
