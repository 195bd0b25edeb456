"""The per-layer driver of the explicit-weight engine, written once for the CPU and the CUDA backend.

Network (docs/conventions.md): ``z^(l) = W^(l) h^(l-1) + b^(l)`` with ``W_ij = sqrt(C_W / n_{l-1}) w_ij``,
``h^(l) = sqrt(1 - r^2) POST(phi(PRE(z^(l)))) + r S^(l) h^(l-1) / sqrt(n_{l-1})``, ``h^(0) = x``; backward
``delta^(L) = phi'(z^(L)) v / sqrt(n_L)``, ``delta^(l) = phi'(z^(l)) W^(l+1)^T delta^(l+1)``.  Per layer the driver
runs the same steps in the same order on either backend -- linear layer, pre-activation statistics (and PRE),
activation (and phi' for the backward pass), POST, residual mix and post-activation statistics -- then, with
``backward=True``, the readout and the backward recursion.  Each backend supplies its steps as an
:class:`ExplicitSteps` (``explicit_cpu``: numba prange kernels; ``explicit_cuda``: CUDA launches), so the loop, the
buffers and the scale factors exist once, and each backend's numbers are the ones its own kernels give.

Buffers, all (S, max(n_0, n_1, ...), P) on the device: ``H``/``Hn`` (input and output of a layer, swapped each
layer), ``Z`` (pre-activations), ``U`` (PRE(Z) or POST scratch; ``Z`` itself without normalisation), ``A``
(activations), ``R`` (the skip product; ``Z`` itself without a residual), and with ``backward=True`` ``DP``
(phi'(z) of every layer, L of them) and ``D``/``Dn`` (the backward signal).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from sigprop.theory.errors import InputError

from . import rng
from .engine_arguments import check_explicit_args
from .layer_ops import NORM_CODES
from .reference import tangent_from_backward

__all__ = ["ExplicitSteps", "run_explicit_steps"]


@dataclass(frozen=True)
class ExplicitSteps:
    """One backend's steps of the explicit engine (arrays are the backend's: NumPy or CUDA device arrays).

    Attributes
    ----------
    zeros : callable
        ``zeros(shape)``: a zero-filled float64 array on the device.
    to_device, to_host : callable
        Copy a NumPy array to the device; a device array to a NumPy array.
    linear : callable
        ``linear(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale)``: ``Z[s, i] = w_scale
        W_i . H[s] + b_scale b_i`` and, when ``skip_scale != 0``, ``R[s, i] = skip_scale S_i . H[s]`` (rows
        ``i < n``, weights regenerated from the counter-based generator).
    pre : callable
        ``pre(Z, n, l, where, centre, U, pre_gram, m2, m4)``: statistics at layer index ``l`` (``Z^T Z / n``, mean
        ``z^2``, mean ``z^4`` per column) and, when ``where == 1``, ``U = PRE(Z)`` (RMS/LayerNorm per column).
    activation : callable
        ``activation(act, deriv, x, out)``: ``out = phi(x)`` (``deriv`` False) or ``phi'(x)``, elementwise.
    post : callable
        ``post(A, n, l, where, centre, main_scale, R, use_skip, U, Hout, post_gram)``: ``Hout = main_scale
        POST(A) (+ R if use_skip)`` (POST when ``where == 2``; ``U`` is free scratch) and ``Hout^T Hout / n`` at
        layer index ``l``.
    readout : callable
        ``readout(seed, net0, layer, n, DP, D, scale)``: ``D[s, i] = scale v_i DP[s, i]``, ``v`` the readout
        normals.
    backprop : callable
        ``backprop(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale)``: ``OUT[s, j] = DP[s, j] w_scale
        sum_i W_ij D[s, i]``.
    gram : callable
        ``gram(D, n, l, out)``: ``out[s, l] = D[s, :n]^T D[s, :n]`` (unnormalised).

    Examples
    --------
    >>> [f for f in ExplicitSteps.__dataclass_fields__][:3]
    ['zeros', 'to_device', 'to_host']
    """

    zeros: Callable[[tuple[int, ...]], Any]
    to_device: Callable[[np.ndarray], Any]
    to_host: Callable[[Any], np.ndarray]
    linear: Callable[..., None]
    pre: Callable[..., None]
    activation: Callable[..., None]
    post: Callable[..., None]
    readout: Callable[..., None]
    backprop: Callable[..., None]
    gram: Callable[..., None]


def run_explicit_steps(steps: ExplicitSteps, X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian",
                       residual=0.0, norm=None, backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Statistics of ``n_networks`` random networks (ids ``first_network, ...``) on the inputs X (P, n_0).

    The contract of :func:`sigprop.kernels.explicit_cpu.run_explicit`, computed with the backend's ``steps``.

    Parameters
    ----------
    steps : ExplicitSteps
        The backend's per-layer steps.
    X, widths, act, C_W, C_b, n_networks, seed, weights, residual, norm, backward, first_network
        As for :func:`sigprop.kernels.simulate` (checked here once more by
        :func:`sigprop.kernels.engine_arguments.check_explicit_args`).

    Returns
    -------
    dict of str to ndarray
        float64 ``preact_gram``, ``postact_gram`` (S, L, P, P), ``preact_m2``, ``preact_m4`` (S, L, P) and, with
        ``backward=True``, ``backward_gram`` and ``tangent_gram`` (S, L, P, P); definitions in
        :mod:`sigprop.kernels.reference`.

    Raises
    ------
    InputError
        For bad arguments, or a custom activation without a numba scalar.

    Examples
    --------
    The CPU backend's steps on a two-layer network:

    >>> import numpy as np
    >>> from sigprop.kernels.explicit_cpu import CPU_STEPS
    >>> from sigprop.theory import activation
    >>> out = run_explicit_steps(CPU_STEPS, np.eye(2, 4), (8, 8), activation("relu"), 2.0, 0.0, 3, seed=1)
    >>> out["preact_gram"].shape, out["preact_m2"].shape
    ((3, 2, 2, 2), (3, 2, 2))
    """
    X, widths = check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                                    first_network, act)
    if act.code < 0 and act.scalar is None:
        raise InputError(f"activation {act.label!r} has no numba scalar version (act.scalar)")
    setup = _Setup(X, widths, act, float(C_W), float(C_b), int(n_networks), np.uint64(seed), rng.WEIGHT_KINDS[weights],
                   float(residual), norm, bool(backward), int(first_network))
    out, DP = _forward(steps, setup)
    if setup.backward:
        bgram = _backward(steps, setup, DP)
        out["backward_gram"] = bgram
        out["tangent_gram"] = tangent_from_backward(bgram, out["postact_gram"], X, setup.C_W, setup.C_b)
    return out


@dataclass(frozen=True)
class _Setup:
    """The checked arguments of one run, as the kernels take them."""

    X: np.ndarray
    widths: tuple[int, ...]
    act: Any
    C_W: float
    C_b: float
    S: int
    seed: np.uint64
    kind: int
    r: float
    norm: str | None
    backward: bool
    net0: int


def _forward(steps: ExplicitSteps, c: _Setup) -> tuple[dict[str, np.ndarray], Any]:
    """The forward pass: the four forward statistics (on the host) and phi'(z) of every layer (on the device)."""
    P, n0 = c.X.shape
    S, L = c.S, len(c.widths)
    nmax = max((n0,) + c.widths)
    where, centre = NORM_CODES[c.norm]
    zeros = steps.zeros
    pre_gram, post_gram = zeros((S, L, P, P)), zeros((S, L, P, P))
    m2, m4 = zeros((S, L, P)), zeros((S, L, P))
    H0 = np.zeros((S, nmax, P))
    H0[:, :n0, :] = c.X.T
    H, Hn = steps.to_device(H0), zeros((S, nmax, P))
    Z, A = zeros((S, nmax, P)), zeros((S, nmax, P))
    U = zeros((S, nmax, P)) if where != 0 else Z
    R = zeros((S, nmax, P)) if c.r != 0.0 else Z
    DP = zeros((L, S, nmax, P)) if c.backward else None
    main_scale = math.sqrt(1.0 - c.r * c.r)
    b_scale = math.sqrt(c.C_b)
    n_in = n0
    for l in range(1, L + 1):
        n = c.widths[l - 1]
        skip_scale = c.r / math.sqrt(n_in) if c.r != 0.0 else 0.0
        steps.linear(c.kind, c.seed, c.net0, l, H, n_in, n, Z, math.sqrt(c.C_W / n_in), b_scale, R, skip_scale)
        steps.pre(Z, n, l - 1, where, centre, U, pre_gram, m2, m4)
        steps.activation(c.act, False, U if where == 1 else Z, A)
        if c.backward:
            steps.activation(c.act, True, Z, DP[l - 1])
        steps.post(A, n, l - 1, where, centre, main_scale, R, c.r != 0.0, U, Hn, post_gram)
        H, Hn = Hn, H
        n_in = n
    out = {"preact_gram": steps.to_host(pre_gram), "postact_gram": steps.to_host(post_gram),
           "preact_m2": steps.to_host(m2), "preact_m4": steps.to_host(m4)}
    return out, DP


def _backward(steps: ExplicitSteps, c: _Setup, DP) -> np.ndarray:
    """backward_gram[s, l] = delta^(l)^T delta^(l) (on the host), from phi'(z) of every layer ``DP``."""
    P, n0 = c.X.shape
    S, L = c.S, len(c.widths)
    nmax = max((n0,) + c.widths)
    bgram = steps.zeros((S, L, P, P))
    D, Dn = steps.zeros((S, nmax, P)), steps.zeros((S, nmax, P))
    nL = c.widths[-1]
    steps.readout(c.seed, c.net0, L + 1, nL, DP[L - 1], D, 1.0 / math.sqrt(nL))
    steps.gram(D, nL, L - 1, bgram)
    for l in range(L - 1, 0, -1):  # delta^(l) = phi'(z^(l)) * W^(l+1)^T delta^(l+1)
        n_l, n_next = c.widths[l - 1], c.widths[l]
        steps.backprop(c.kind, c.seed, c.net0, l + 1, D, n_next, n_l, DP[l - 1], Dn, math.sqrt(c.C_W / n_l))
        steps.gram(Dn, n_l, l - 1, bgram)
        D, Dn = Dn, D
    return steps.to_host(bgram)
