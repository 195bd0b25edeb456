"""Plain NumPy reference of the explicit-weight network (small and obviously correct; slow).

It draws each layer's full weight matrix (and the bias, skip and readout vectors) with the same
counter-based numbers as the compiled kernels, but from the plain NumPy twin of the generator
(:func:`sigprop.kernels.rng_numpy.draws_numpy`, written here ``draws``/``normals``) instead of the compiled
:func:`sigprop.kernels.rng.draws`: the reference is NumPy only, and ``run_explicit == run_reference`` up to
rounding checks the compiled generator as well as the compiled engines (uniform and Rademacher weights are
bit-identical, Gaussian numbers equal to rounding).  Definitions (docs/conventions.md), for network id
``net`` and layer ``l = 1..L`` (``n_0`` = input dimension):

    W^(l)  = sqrt(C_W / n_{l-1}) * draws(weights, seed, STREAM_WEIGHTS, net, l, n_l, n_{l-1})
    b^(l)  = sqrt(C_b) * normals(seed, STREAM_BIAS, net, l, 1, n_l)[0]
    S^(l)  = normals(seed, STREAM_SKIP, net, l, n_l, n_{l-1})
    z^(l)  = W^(l) h^(l-1) + b^(l),   h^(0) = x
    h^(l)  = sqrt(1 - r^2) POST(phi(PRE(z^(l)))) + r S^(l) h^(l-1) / sqrt(n_{l-1})
    v      = normals(seed, STREAM_READOUT, net, L + 1, 1, n_L)[0],   f = v . phi(z^(L)) / sqrt(n_L)
    delta^(L) = v * phi'(z^(L)) / sqrt(n_L),   delta^(l) = phi'(z^(l)) * (W^(l+1)^T delta^(l+1))

Statistics (float64; S networks, L layers, P inputs; array index l <-> layer l + 1):
    preact_gram[s, l] = z^T z / n,  postact_gram[s, l] = h^T h / n,  preact_m2/m4[s, l, a] = mean_i z_ia^2 / z_ia^4,
    backward_gram[s, l] = delta^T delta,  tangent_gram[s, l] = (C_b + C_W H^(l)) o backward_gram[s, l],
    H^(0) = X X^T / n_0, H^(l) = postact_gram[s, l - 1].

Order of operations.  Every sum and product is evaluated in the compiled engine's order
(:mod:`sigprop.kernels.layer_ops`), with NumPy elementwise operations only, never BLAS (``@``) or ``np.sum``:

- ``W h`` is ``scale * sum_jp (w_i,2jp h_2jp + w_i,2jp+1 h_2jp+1)`` over the column pairs in increasing order,
  on the unit-variance draws ``w``, the scale applied last (:func:`_matvec_engine_order`); ``W^T delta`` is
  ``scale * sum_i w_ij delta_i`` in increasing ``i`` (:func:`_matvec_t_engine_order`); the skip product is
  ``W h``'s with ``scale = r / sqrt(n_{l-1})``;
- the Gram sums, moments and normalisations add their terms one at a time in increasing neuron index
  (:func:`_sequential_sum`), as ``column_dot``, ``column_moments`` and ``normalize_column`` do.

Why: BLAS chooses its blocking and its use of fused multiply-adds per CPU, so ``W @ h`` rounds differently
on different machines, and an exact tie such as ``c h_0 - c h_1`` with ``h_0 = h_1`` (common with Rademacher
weights) is exactly 0 in the engine but ``fma(c, h_0, -c h_1)``, the rounding error of ``c h_1``, through a
fused multiply-add.  At a kink of phi (relu, selu, ...) phi' then takes different one-sided values.  In the
engine's order, and with + - * / sqrt correctly rounded (IEEE 754) in NumPy and in numba, which emits no
fused multiply-add without fastmath, the reference reproduces the engine bit for bit whenever the random
numbers and the activation agree bit for bit: uniform or Rademacher weights, ``C_b = 0``, ``r = 0``, and
an activation and derivative made of those operations and comparisons (identity, relu, leaky_relu) -- on
every x86-64 and ARM CPU.
Gaussian numbers (``np.log``/``np.cos``/``np.sin`` in the NumPy twin) and transcendental activations
(tanh, expm1 in selu, sin) agree only to rounding, since NumPy's and numba's libm (and NumPy's SIMD loops)
may round differently; then the statistics agree to rounding, except where a pre-activation lies within
rounding of a kink of phi (see :func:`reference_preactivations`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from sigprop.theory.activations import Activation

from . import rng
from .engine_arguments import check_explicit_args as _check_explicit_args
from .layer_ops import NORM_CODES
from .rng_numpy import draws_numpy, normals_numpy

__all__ = ["run_reference", "reference_preactivations", "reference_backward_gram", "tangent_from_backward",
           "STAT_KEYS", "BACKWARD_KEYS"]

def __getattr__(name: str):
    """``check_explicit_args``, moved to :mod:`sigprop.kernels.engine_arguments`: handed on with a warning for one
    release."""
    if name == "check_explicit_args":
        warnings.warn("sigprop.kernels.reference.check_explicit_args is now "
                      "sigprop.kernels.engine_arguments.check_explicit_args; the old path goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return _check_explicit_args
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


STAT_KEYS = ("preact_gram", "postact_gram", "preact_m2", "preact_m4")
BACKWARD_KEYS = ("backward_gram", "tangent_gram")


def _matvec_engine_order(w_unit: np.ndarray, h: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (w_unit @ h)`` summed in the engine's order (:func:`~sigprop.kernels.layer_ops.matvec_row`).

    Parameters
    ----------
    w_unit : (n_out, n_in) unit-variance draws (the weights before scaling).
    h : (n_in, P) inputs of the layer.
    scale : applied to the finished sums, as in the engine (not to ``w_unit`` first).

    Returns
    -------
    (n_out, P) array: ``acc = 0``, then for the column pairs ``jp = 0, 1, ...`` in order
    ``acc += w[:, 2jp] h[2jp] + w[:, 2jp+1] h[2jp+1]``, for an odd ``n_in`` last ``acc += w[:, -1] h[-1]``;
    ``acc * scale``.  Each step is a separately rounded NumPy multiply or add (no BLAS, no fused
    multiply-add), hence the engine's numbers bit for bit when ``w_unit`` and ``h`` are (module docstring).
    """
    n_in = w_unit.shape[1]
    cols = w_unit.T  # cols[j] = column j of w_unit, shape (n_out,)
    acc = np.zeros((w_unit.shape[0], h.shape[1]))
    for j in range(0, n_in - 1, 2):
        acc += cols[j][:, None] * h[j] + cols[j + 1][:, None] * h[j + 1]
    if n_in % 2 == 1:
        acc += cols[n_in - 1][:, None] * h[n_in - 1]
    return acc * scale


def _matvec_t_engine_order(w_unit: np.ndarray, d: np.ndarray, scale: float) -> np.ndarray:
    """``scale * (w_unit.T @ d)`` summed in the engine's order (:func:`~sigprop.kernels.layer_ops.matvec_t_colpair`).

    ``w_unit``: (n_out, n_in) unit-variance draws; ``d``: (n_out, P).  Returns the (n_in, P) array
    ``acc = 0``, ``acc += w_unit[i] d[i]`` for ``i = 0, 1, ...`` in order, then ``acc * scale``.
    """
    acc = np.zeros((w_unit.shape[1], d.shape[1]))
    for i in range(w_unit.shape[0]):
        acc += w_unit[i][:, None] * d[i]
    return acc * scale


def _sequential_sum(terms: np.ndarray) -> np.ndarray:
    """Sum of ``terms`` over axis 0, added one at a time in increasing index starting from 0.0.

    This is how the engine's loops (``column_dot``, ``column_moments``, ``normalize_column``) sum over the
    neurons; ``np.sum`` would use pairwise summation (and BLAS its own blocking), which rounds differently.
    """
    acc = np.zeros(terms.shape[1:])
    for t in terms:
        acc += t
    return acc


def _gram(a: np.ndarray) -> np.ndarray:
    """``a^T a`` for ``a`` of shape (n, P), summed over the n rows in increasing order (``column_dot``)."""
    return _sequential_sum(a[:, :, None] * a[:, None, :])


def _normalize(a: np.ndarray, centre: bool) -> np.ndarray:
    """Normalise each column (input) across the neurons (rows): (a - mu) / sqrt(mean (a - mu)^2).

    ``mu`` is the column mean (LayerNorm, ``centre``) or 0 (RMSNorm); evaluated as ``normalize_column``:
    ``(a - mu) * (1 / sqrt(v / n))`` with ``mu`` and ``v`` sequential sums.  A constant column gives 0/0 = NaN.
    """
    n = a.shape[0]
    mu = _sequential_sum(a) / n if centre else 0.0
    d = a - mu
    with np.errstate(divide="ignore"):  # a constant column: 1/0 here, then 0 * inf = NaN (warned as invalid)
        inv = 1.0 / np.sqrt(_sequential_sum(d * d) / n)
    return d * inv


def _preactivation(h: np.ndarray, l: int, n: int, C_W: float, C_b: float, seed: int, weights: str | int, net: int,
                   with_bound: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """z^(l) = W^(l) h + b^(l) in the engine's order; with ``with_bound`` also the sum of the terms' magnitudes.

    The bound ``sqrt(C_W / n_prev) sum_j |w_ij h_j| + sqrt(C_b) |b_i|`` (same shape as z) bounds the size of
    every partial sum, so any summation order changes z by at most a few ulp of it per term."""
    n_prev = h.shape[0]
    w = draws_numpy(weights, seed, rng.STREAM_WEIGHTS, net, l, n, n_prev)
    scale = math.sqrt(C_W / n_prev)
    z = _matvec_engine_order(w, h, scale)
    b_scale = math.sqrt(C_b)
    if b_scale != 0.0:  # as the engine: no bias added at all for C_b = 0 (keeps the sign of a zero)
        b = normals_numpy(seed, rng.STREAM_BIAS, net, l, 1, n)[0]
        z += (b_scale * b)[:, None]
    if not with_bound:
        return z, None
    bound = _matvec_engine_order(np.abs(w), np.abs(h), scale)
    if b_scale != 0.0:
        bound += (b_scale * np.abs(b))[:, None]
    return z, bound


def _forward_network(X: np.ndarray, widths: tuple[int, ...], act: Activation, C_W: float, C_b: float, seed: int,
                     weights: str | int, r: float, norm: str | None, net: int,
                     stats: dict[str, np.ndarray] | None = None, s: int = 0,
                     with_bound: bool = False) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Run network ``net`` forward; fill ``stats[key][s]`` if given; return ``[(z^(l), bound or None), ...]``."""
    where, centre = NORM_CODES[norm]
    main_scale = math.sqrt(1.0 - r * r)
    h = X.T.copy()  # (n_prev, P)
    zs = []
    for l in range(1, len(widths) + 1):
        n_prev, n = h.shape[0], widths[l - 1]
        z, bound = _preactivation(h, l, n, C_W, C_b, seed, weights, net, with_bound)
        zs.append((z, bound))
        if stats is not None:
            x2 = z * z
            stats["preact_gram"][s, l - 1] = _gram(z) / n
            stats["preact_m2"][s, l - 1] = _sequential_sum(x2) / n
            stats["preact_m4"][s, l - 1] = _sequential_sum(x2 * x2) / n
        u = _normalize(z, centre) if where == 1 else z
        a = act.fn(u)
        p = _normalize(a, centre) if where == 2 else a
        h_new = main_scale * p
        if r != 0.0:
            skip = normals_numpy(seed, rng.STREAM_SKIP, net, l, n, n_prev)
            h_new = h_new + _matvec_engine_order(skip, h, r / math.sqrt(n_prev))
        h = h_new
        if stats is not None:
            stats["postact_gram"][s, l - 1] = _gram(h) / n
    return zs


def reference_backward_gram(widths, C_W: float, seed: int, weights: str | int, network: int,
                            derivatives: list[np.ndarray]) -> np.ndarray:
    """backward_gram (L, P, P) of network ``network`` given ``derivatives[l - 1]`` = phi'(z^(l)), (n_l, P).

    ``run_reference`` uses ``derivatives = [act.deriv(z) for z in pre-activations]``; passing other values
    (e.g. the other one-sided derivative at a pre-activation on a kink of phi) lets a test ask what the
    statistics would be with that choice.  Sums in the engine's order (module docstring).
    """
    widths = tuple(int(w) for w in widths)
    L = len(widths)
    P = derivatives[-1].shape[1]
    out = np.zeros((L, P, P))
    nL = widths[-1]
    v = normals_numpy(seed, rng.STREAM_READOUT, network, L + 1, 1, nL)[0]
    delta = ((1.0 / math.sqrt(nL)) * v)[:, None] * derivatives[L - 1]
    out[L - 1] = _gram(delta)
    for l in range(L - 1, 0, -1):  # delta^(l) from delta^(l+1), W^(l+1) regenerated
        n_l, n_next = widths[l - 1], widths[l]
        w = draws_numpy(weights, seed, rng.STREAM_WEIGHTS, network, l + 1, n_next, n_l)
        delta = _matvec_t_engine_order(w, delta, math.sqrt(C_W / n_l)) * derivatives[l - 1]
        out[l - 1] = _gram(delta)
    return out


def run_reference(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0, norm=None,
                  backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Explicit-weight statistics with plain NumPy, summed in the compiled engine's order (module docstring).

    Same arguments and results as :func:`sigprop.kernels.explicit_cpu.run_explicit` (without ``backend``).
    """
    X, widths = _check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                                    first_network, act)
    P = X.shape[0]
    L = len(widths)
    S = int(n_networks)
    out = {"preact_gram": np.zeros((S, L, P, P)), "postact_gram": np.zeros((S, L, P, P)),
           "preact_m2": np.zeros((S, L, P)), "preact_m4": np.zeros((S, L, P))}
    if backward:
        out["backward_gram"] = np.zeros((S, L, P, P))
    for s in range(S):
        net = int(first_network) + s
        zs = _forward_network(X, widths, act, float(C_W), float(C_b), seed, weights, float(residual), norm, net,
                              stats=out, s=s)
        if backward:
            out["backward_gram"][s] = reference_backward_gram(widths, float(C_W), seed, weights, net,
                                                              [act.deriv(z) for z, _ in zs])
    if backward:
        out["tangent_gram"] = tangent_from_backward(out["backward_gram"], out["postact_gram"], X, C_W, C_b)
    return out


def reference_preactivations(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0,
                             norm=None, first_network=0) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """The pre-activations of every network and layer, as :func:`run_reference` computes them, with bounds.

    Returns
    -------
    ``out[s][l - 1] = (z, bound)``, both (n_l, P): ``z = z^(l)`` of network ``first_network + s`` and
    ``bound = sqrt(C_W / n_{l-1}) sum_j |w_ij h_j| + sqrt(C_b) |b_i|``, the sum of the magnitudes of the
    terms added into ``z``.  Two computations of ``z`` that differ only by rounding (another summation
    order, a fused multiply-add, a libm that rounds differently upstream) differ by a small multiple of
    ``eps * bound``: a test uses it to find the pre-activations that may lie on either side of a kink of phi.
    """
    X, widths = _check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, False,
                                    first_network, act)
    return [_forward_network(X, widths, act, float(C_W), float(C_b), seed, weights, float(residual), norm,
                             int(first_network) + s, with_bound=True)
            for s in range(int(n_networks))]


def tangent_from_backward(backward_gram: np.ndarray, postact_gram: np.ndarray, X: np.ndarray, C_W: float,
                          C_b: float) -> np.ndarray:
    """tangent_gram[s, l] = (C_b + C_W H^(l)) o backward_gram[s, l], H^(0) = X X^T / n_0, H^(l) = postact_gram[s, l-1].

    Shared by every engine and the reference, so ``X X^T`` (BLAS) is the same number in all of them.
    """
    G0 = X @ X.T / X.shape[1]
    H = np.concatenate([np.broadcast_to(G0, (postact_gram.shape[0], 1) + G0.shape), postact_gram[:, :-1]], axis=1)
    return (C_b + C_W * H) * backward_gram
