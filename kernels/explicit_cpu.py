"""Explicit-weight Monte-Carlo of finite-width networks on the CPU (numba, parallel over rows).

Weights are regenerated from the counter-based RNG (:mod:`sigprop.kernels.rng`) wherever they are used,
never stored: memory is O(S n P) for the forward statistics (O(L S n P) with ``backward=True``, which keeps
phi'(z^(l)) of every layer), independent of the number of weights.  Each weight W_ij is drawn once per layer
and applied to all P inputs.  Every sum is accumulated by one thread in a fixed order (the row and column
operations of :mod:`sigprop.kernels.layer_ops`), so results do not depend on the number of threads, and agree
with the CUDA kernels (:mod:`sigprop.kernels.explicit_cuda`) to rounding.  The model and the statistics
returned are defined in :mod:`sigprop.kernels.reference`.

Entry point: :func:`run_explicit` (the CUDA twin is :func:`sigprop.kernels.explicit_cuda.run_explicit_cuda`; the
dispatch between them is :func:`sigprop.kernels.simulate`'s).
"""
from __future__ import annotations

from functools import partial

import numba
import numpy as np
from numba import prange

from sigprop.kernels.device_activations import device_activation, device_derivative, fingerprinted

from . import rng
from .backend import custom_scalar_derivative, kernel_for_scalar
from .explicit_driver import ExplicitSteps, run_explicit_steps
from .layer_ops import (
    add_bias_row,
    column_dot,
    column_moments,
    matvec_rows_buffered,
    matvec_t_colpairs_buffered,
    normalize_column,
)
from .simd import prefer_wide_vectors

__all__ = ["run_explicit", "CPU_STEPS"]



# --------------------------------------------------------------------------------------------
# Layer kernels.  Each parallel kernel is a thin prange loop over work items calling a serial,
# separately compiled (and cached) function for one item: the parfor pass then stays small, which
# keeps the first compilation short.  Each output element is owned by exactly one item.
# --------------------------------------------------------------------------------------------
# Every kernel here is disk-cached and named with the fingerprint of the device code it inlines (rng, layer_ops, simd,
# the activation switch): see device_activations.fingerprinted.
_serial = partial(fingerprinted, error_model="numpy")
_parallel = partial(fingerprinted, parallel=True, error_model="numpy")

# The row/column helpers compiled once as ordinary (not inlined) CPU functions: the weight and skip
# products share one copy, which roughly halves the first compilation.  (CUDA kernels inline the
# unbuffered versions.)  The buffered versions draw a block of rows' (column pairs') weights in
# vectorised passes into scratch arrays, then multiply-accumulate the whole block at once: the same
# numbers and the same sums, in the same order, as the CUDA kernels.
matvec_rows = _serial(matvec_rows_buffered.py_func)
matvec_t_colpairs = _serial(matvec_t_colpairs_buffered.py_func)

_BLOCK = 128  # rows (column pairs) of one network per parallel work item


@_serial
def _linear_block(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale, c):
    nblocks = (n + _BLOCK - 1) // _BLOCK
    s = c // nblocks
    i0 = (c - s * nblocks) * _BLOCK
    nrows = min(_BLOCK, n - i0)
    net = net0 + s
    E = np.empty((4, _BLOCK))  # four column pairs' weights per pass (layer_ops.matvec_rows_buffered)
    O = np.empty((4, _BLOCK))
    acc = np.empty((Z.shape[2], _BLOCK))
    matvec_rows(kind, seed, rng.STREAM_WEIGHTS, net, layer, H, s, n_in, i0, nrows, Z, w_scale, E, O, acc)
    if b_scale != 0.0:
        for i in range(i0, i0 + nrows):
            add_bias_row(seed, rng.STREAM_BIAS, net, layer, i, Z, s, b_scale)
    if skip_scale != 0.0:
        matvec_rows(0, seed, rng.STREAM_SKIP, net, layer, H, s, n_in, i0, nrows, R, skip_scale, E, O, acc)


@_parallel
def _k_linear(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale):
    """Z[s, i] = w_scale * W_i . H[s] + b_scale * b_i;  R[s, i] = skip_scale * S_i . H[s] if skip_scale != 0."""
    for c in prange(Z.shape[0] * ((n + _BLOCK - 1) // _BLOCK)):
        _linear_block(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale, c)


@_serial
def _pre_network(Z, n, l, where, centre, U, pre_gram, m2, m4, s):
    P = Z.shape[2]
    for a in range(P):
        mm2, mm4 = column_moments(Z, s, n, a)
        m2[s, l, a] = mm2
        m4[s, l, a] = mm4
        for b in range(a, P):
            g = column_dot(Z, s, n, a, b) / n
            pre_gram[s, l, a, b] = g
            pre_gram[s, l, b, a] = g
        if where == 1:
            normalize_column(Z, s, n, a, centre, U)


@_parallel
def _k_pre(Z, n, l, where, centre, U, pre_gram, m2, m4):
    """Pre-activation statistics of layer index l, and U = PRE(Z) (RMS/LayerNorm per column) if where == 1."""
    for s in prange(Z.shape[0]):
        _pre_network(Z, n, l, where, centre, U, pre_gram, m2, m4, s)


@_serial
def _post_network(A, n, l, where, centre, main_scale, R, use_skip, Hout, post_gram, s):
    P = A.shape[2]
    for a in range(P):
        if where == 2:
            normalize_column(A, s, n, a, centre, Hout)
            for i in range(n):
                Hout[s, i, a] *= main_scale
        else:
            for i in range(n):
                Hout[s, i, a] = main_scale * A[s, i, a]
        if use_skip:
            for i in range(n):
                Hout[s, i, a] += R[s, i, a]
    for a in range(P):
        for b in range(a, P):
            g = column_dot(Hout, s, n, a, b) / n
            post_gram[s, l, a, b] = g
            post_gram[s, l, b, a] = g


@_parallel
def _k_post(A, n, l, where, centre, main_scale, R, use_skip, Hout, post_gram):
    """Hout = main_scale * POST(A) (+ R if use_skip), and its Gram statistics at layer index l."""
    for s in prange(A.shape[0]):
        _post_network(A, n, l, where, centre, main_scale, R, use_skip, Hout, post_gram, s)


@_serial
def _readout_row(seed, net0, layer, n, DP, D, scale, k):
    s = k // n
    i = k - s * n
    v0, v1 = rng.normal_pair(seed, rng.STREAM_READOUT, net0 + s, layer, 0, i >> 1)
    v = v0 if (i & 1) == 0 else v1
    for a in range(D.shape[2]):
        D[s, i, a] = scale * v * DP[s, i, a]


@_parallel
def _k_readout(seed, net0, layer, n, DP, D, scale):
    """delta^(L)[s, i] = scale * v_i * phi'(z^(L))[s, i] with v_i the readout normal at (row 0, column i)."""
    for k in prange(D.shape[0] * n):
        _readout_row(seed, net0, layer, n, DP, D, scale, k)


@_serial
def _backprop_block(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale, c):
    npairs = (n_in + 1) // 2
    nblocks = (npairs + _BLOCK - 1) // _BLOCK
    s = c // nblocks
    jp0 = (c - s * nblocks) * _BLOCK
    ncp = min(_BLOCK, npairs - jp0)
    E = np.empty(_BLOCK)
    O = np.empty(_BLOCK)
    acc0 = np.empty((D.shape[2], _BLOCK))
    acc1 = np.empty((D.shape[2], _BLOCK))
    matvec_t_colpairs(kind, seed, rng.STREAM_WEIGHTS, net0 + s, layer, D, s, n_out, jp0, ncp, n_in, OUT, w_scale,
                      E, O, acc0, acc1)
    for j in range(2 * jp0, min(2 * (jp0 + ncp), n_in)):
        for a in range(D.shape[2]):
            OUT[s, j, a] *= DP[s, j, a]


@_parallel
def _k_backprop(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale):
    """OUT[s, j] = phi'(z)[s, j] * w_scale * sum_i W^(layer)_ij D[s, i]  (W regenerated, columns in pairs)."""
    for c in prange(D.shape[0] * (((n_in + 1) // 2 + _BLOCK - 1) // _BLOCK)):
        _backprop_block(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale, c)


@_serial
def _gram_network(D, n, l, out, s):
    P = D.shape[2]
    for a in range(P):
        for b in range(a, P):
            g = column_dot(D, s, n, a, b)
            out[s, l, a, b] = g
            out[s, l, b, a] = g


@_parallel
def _k_gram(D, n, l, out):
    """out[s, l] = D[s, :n]^T D[s, :n] (unnormalised)."""
    for s in prange(D.shape[0]):
        _gram_network(D, n, l, out, s)


# --------------------------------------------------------------------------------------------
# Activation kernels: one compiled switch for the built-ins, a closure per custom activation
# --------------------------------------------------------------------------------------------
_ACT_CHUNK = 4096  # elements per parallel work item


@_serial
def _act_builtin_span(code, p0, p1, deriv, x, out, c):
    prefer_wide_vectors()
    for k in range(c * _ACT_CHUNK, min(x.size, (c + 1) * _ACT_CHUNK)):
        if deriv:
            out[k] = device_derivative(code, x[k], p0, p1)
        else:
            out[k] = device_activation(code, x[k], p0, p1)


@_parallel
def _k_act_builtin(code, p0, p1, deriv, x, out):
    """out = phi(x) (deriv False) or phi'(x) of the built-in activation ``code``, elementwise on flat arrays."""
    for c in prange((x.size + _ACT_CHUNK - 1) // _ACT_CHUNK):
        _act_builtin_span(code, p0, p1, deriv, x, out, c)


def _custom_act_kernel(act):
    """Compiled elementwise kernel applying the custom activation (or its derivative); cached per activation."""
    return kernel_for_scalar("explicit_cpu.act", act, _build_custom_act_kernel)


def _build_custom_act_kernel(act):
    phi = act.scalar
    dphi = custom_scalar_derivative(act)

    @numba.njit(error_model="numpy")
    def span(deriv, x, out, c):
        prefer_wide_vectors()
        for k in range(c * _ACT_CHUNK, min(x.size, (c + 1) * _ACT_CHUNK)):
            if deriv:
                out[k] = dphi(x[k])
            else:
                out[k] = phi(x[k])

    @numba.njit(parallel=True, error_model="numpy")
    def kernel(deriv, x, out):
        for c in prange((x.size + _ACT_CHUNK - 1) // _ACT_CHUNK):
            span(deriv, x, out, c)

    return kernel


def _apply_activation(act, deriv: bool, x: np.ndarray, out: np.ndarray) -> None:
    xf, of = x.reshape(-1), out.reshape(-1)
    if act.code >= 0:
        p0, p1 = act.device_params
        _k_act_builtin(int(act.code), float(p0), float(p1), deriv, xf, of)
    else:
        _custom_act_kernel(act)(deriv, xf, of)


# --------------------------------------------------------------------------------------------
# Driver: the shared per-layer loop of explicit_driver with this backend's kernels
# --------------------------------------------------------------------------------------------
def _post(A, n, l, where, centre, main_scale, R, use_skip, U, Hout, post_gram):
    _k_post(A, n, l, where, centre, main_scale, R, use_skip, Hout, post_gram)  # POST writes Hout directly: no scratch


def _same(a):
    return a


CPU_STEPS = ExplicitSteps(zeros=np.zeros, to_device=_same, to_host=_same, linear=_k_linear, pre=_k_pre,
                          activation=_apply_activation, post=_post, readout=_k_readout, backprop=_k_backprop,
                          gram=_k_gram)


def run_explicit(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0, norm=None,
                 backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Statistics of ``n_networks`` random networks (ids first_network, ...) on the inputs X (P, n_0), on the CPU.

    Returns float64 arrays preact_gram, postact_gram (S, L, P, P), preact_m2, preact_m4 (S, L, P) and, with
    ``backward=True`` (needs residual=0, norm=None), backward_gram and tangent_gram (S, L, P, P); definitions
    in :mod:`sigprop.kernels.reference`.  Raw engine numbers (equal to the reference's);
    :func:`sigprop.kernels.simulate` applies the overflow/underflow convention of all methods
    (:func:`sigprop.kernels.float_range.check_statistics`).  The layer loop is
    :func:`sigprop.kernels.explicit_driver.run_explicit_steps` with :data:`CPU_STEPS`.
    """
    return run_explicit_steps(CPU_STEPS, X, widths, act, C_W, C_b, n_networks, seed, weights, residual, norm,
                              backward, first_network)
