"""Explicit-weight Monte-Carlo on a CUDA GPU (numba-cuda), the same computation as explicit_cpu.

The kernels call the shared ``@numba.njit(inline='always')`` scalar code (RNG: :mod:`sigprop.kernels.rng`,
rows/columns: :mod:`sigprop.kernels.layer_ops`, activations: ``device_activation``/``device_derivative``),
so no CUDA-specific device helpers exist.  Parallel layout, one thread per output:
    linear layer:   (network, row i)  computes z_i for all P inputs (each weight drawn once);
    statistics:     (network, a, b)   sums over neurons i in increasing order (no atomics, deterministic);
    normalisation:  (network, a);  activation: one element;  backward: (network, column pair).
Results agree with the CPU backend up to libm/FMA rounding for the same seed.

``PTX_TARGETS`` lists ``(name, python function, signature, threads per block)`` for every kernel, for the
PTX and ``ptxas`` checks of ``python -m sigprop.kernels.ptx``; :func:`run_explicit_cuda` is the entry point
(normally reached through ``simulate(..., method='explicit', backend='cuda')``).  Under the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) the array helpers run as plain Python (``py_func``), the RNG stays compiled.
"""
from __future__ import annotations

import threading

import numba
import numpy as np
from numba import cuda as _cuda
from numba import types

from sigprop.kernels.device_activations import device_activation, device_derivative
from sigprop.theory.errors import InputError

from . import layer_ops, rng
from .backend import cuda_available, custom_scalar_derivative, device_helper, kernel_for_scalar
from .explicit_driver import ExplicitSteps, run_explicit_steps

__all__ = ["run_explicit_cuda", "PTX_TARGETS", "cuda_kernels", "CUDA_STEPS"]

_SIM = bool(numba.config.ENABLE_CUDASIM)


_dev = device_helper  # shared simulator shim (kernels.backend)


matvec_row = _dev(layer_ops.matvec_row)
matvec_t_colpair = _dev(layer_ops.matvec_t_colpair)
add_bias_row = _dev(layer_ops.add_bias_row)
column_dot = _dev(layer_ops.column_dot)
column_moments = _dev(layer_ops.column_moments)
normalize_column = _dev(layer_ops.normalize_column)

_STREAM_W = rng.STREAM_WEIGHTS
_STREAM_B = rng.STREAM_BIAS
_STREAM_S = rng.STREAM_SKIP
_STREAM_V = rng.STREAM_READOUT
_TPB = 128


# --------------------------------------------------------------------------------------------
# Kernel bodies (plain functions; compiled with numba.cuda.jit on first use)
# --------------------------------------------------------------------------------------------
def k_linear(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale):
    """Thread (s, i): Z[s, i] = w_scale W_i . H[s] + b_scale b_i;  R[s, i] = skip_scale S_i . H[s]."""
    k = _cuda.grid(1)
    if k < Z.shape[0] * n:
        s = k // n
        i = k - s * n
        net = net0 + s
        matvec_row(kind, seed, _STREAM_W, net, layer, H, s, n_in, i, Z, w_scale)
        if b_scale != 0.0:
            add_bias_row(seed, _STREAM_B, net, layer, i, Z, s, b_scale)
        if skip_scale != 0.0:
            matvec_row(0, seed, _STREAM_S, net, layer, H, s, n_in, i, R, skip_scale)


def k_moments(Z, n, l, m2, m4):
    """Thread (s, a): preact_m2/m4[s, l, a]."""
    k = _cuda.grid(1)
    P = Z.shape[2]
    if k < Z.shape[0] * P:
        s = k // P
        a = k - s * P
        mm2, mm4 = column_moments(Z, s, n, a)
        m2[s, l, a] = mm2
        m4[s, l, a] = mm4


def k_gram(A, n, l, div, out):
    """Thread (s, a, b): out[s, l, a, b] = sum_{i<n} A[s, i, a] A[s, i, b] / div."""
    k = _cuda.grid(1)
    P = A.shape[2]
    if k < A.shape[0] * P * P:
        s = k // (P * P)
        r = k - s * P * P
        a = r // P
        b = r - a * P
        lo = min(a, b)
        hi = max(a, b)
        out[s, l, a, b] = column_dot(A, s, n, lo, hi) / div


def k_normalize(A, n, centre, OUT):
    """Thread (s, a): OUT[s, :n, a] = RMSNorm (centre=0) or LayerNorm (centre=1) of A[s, :n, a]."""
    k = _cuda.grid(1)
    P = A.shape[2]
    if k < A.shape[0] * P:
        s = k // P
        a = k - s * P
        normalize_column(A, s, n, a, centre, OUT)


def k_combine(A, n, main_scale, R, use_skip, Hout):
    """Thread (s, i): Hout[s, i] = main_scale * A[s, i] (+ R[s, i])."""
    k = _cuda.grid(1)
    P = A.shape[2]
    if k < A.shape[0] * n:
        s = k // n
        i = k - s * n
        for a in range(P):
            v = main_scale * A[s, i, a]
            if use_skip != 0:
                v += R[s, i, a]
            Hout[s, i, a] = v


def k_act_builtin(code, p0, p1, deriv, x, out):
    """Thread k: out[k] = phi(x[k]) (deriv=0) or phi'(x[k]) (deriv=1) for the built-in activation ``code``."""
    k = _cuda.grid(1)
    if k < x.shape[0]:
        if deriv != 0:
            out[k] = device_derivative(code, x[k], p0, p1)
        else:
            out[k] = device_activation(code, x[k], p0, p1)


def k_readout(seed, net0, layer, n, DP, D, scale):
    """Thread (s, i): D[s, i] = scale * v_i * DP[s, i] (delta of the last layer)."""
    k = _cuda.grid(1)
    P = D.shape[2]
    if k < D.shape[0] * n:
        s = k // n
        i = k - s * n
        v0, v1 = rng.normal_pair(seed, _STREAM_V, net0 + s, layer, 0, i >> 1)
        v = v0 if (i & 1) == 0 else v1
        for a in range(P):
            D[s, i, a] = scale * v * DP[s, i, a]


def k_backprop(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale):
    """Thread (s, column pair jp): OUT[s, j] = DP[s, j] * w_scale * sum_i W_ij D[s, i], j in {2jp, 2jp+1}."""
    k = _cuda.grid(1)
    P = D.shape[2]
    npairs = (n_in + 1) // 2
    if k < D.shape[0] * npairs:
        s = k // npairs
        jp = k - s * npairs
        matvec_t_colpair(kind, seed, _STREAM_W, net0 + s, layer, D, s, n_out, jp, n_in, OUT, w_scale)
        for j in range(2 * jp, min(2 * jp + 2, n_in)):
            for a in range(P):
                OUT[s, j, a] *= DP[s, j, a]


_i = types.int64
_f = types.float64
_u = types.uint64
_A1 = types.Array(types.float64, 1, "C")
_A3 = types.Array(types.float64, 3, "C")
_A4 = types.Array(types.float64, 4, "C")

PTX_TARGETS: list[tuple[str, object, tuple, int]] = [  # (name, function, signature, threads per block)
    ("k_linear", k_linear, (_i, _u, _i, _i, _A3, _i, _i, _A3, _f, _f, _A3, _f), _TPB),
    ("k_moments", k_moments, (_A3, _i, _i, _A3, _A3), _TPB),
    ("k_gram", k_gram, (_A3, _i, _i, _f, _A4), _TPB),
    ("k_normalize", k_normalize, (_A3, _i, _i, _A3), _TPB),
    ("k_combine", k_combine, (_A3, _i, _f, _A3, _i, _A3), _TPB),
    ("k_act_builtin", k_act_builtin, (_i, _f, _f, _i, _A1, _A1), _TPB),
    ("k_readout", k_readout, (_u, _i, _i, _i, _A3, _A3, _f), _TPB),
    ("k_backprop", k_backprop, (_i, _u, _i, _i, _A3, _i, _i, _A3, _A3, _f), _TPB),
]


def cuda_kernels() -> list[tuple[str, object, tuple, int]]:
    """(name, python function, signature, threads per block) of every CUDA kernel (for ``python -m
    sigprop.kernels.ptx``)."""
    return list(PTX_TARGETS)


_JIT: dict[str, object] = {}
_JIT_LOCK = threading.Lock()


def _kernel(name: str):
    with _JIT_LOCK:
        if name not in _JIT:
            fn = {n: f for n, f, _, _ in PTX_TARGETS}[name]
            _JIT[name] = _cuda.jit(fn)
        return _JIT[name]


def _custom_kernel(act):
    """cuda.jit elementwise kernel applying a custom activation (act.scalar) or its derivative; cached."""
    def build(act):
        phi = act.scalar
        dphi = custom_scalar_derivative(act)

        def k_act_custom(deriv, x, out):
            k = _cuda.grid(1)
            if k < x.shape[0]:
                if deriv != 0:
                    out[k] = dphi(x[k])
                else:
                    out[k] = phi(x[k])

        return _cuda.jit(k_act_custom)

    return kernel_for_scalar("explicit_cuda.act", act, build)


def _launch(name: str, total: int, *args) -> None:
    if total > 0:
        _kernel(name)[(total + _TPB - 1) // _TPB, _TPB](*args)


# --------------------------------------------------------------------------------------------
# The steps of the shared driver (explicit_driver.run_explicit_steps) as kernel launches, one thread per output
# --------------------------------------------------------------------------------------------
def _linear(kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale) -> None:
    _launch("k_linear", Z.shape[0] * n, kind, seed, net0, layer, H, n_in, n, Z, w_scale, b_scale, R, skip_scale)


def _pre(Z, n, l, where, centre, U, pre_gram, m2, m4) -> None:
    S, P = Z.shape[0], Z.shape[2]
    _launch("k_moments", S * P, Z, n, l, m2, m4)
    _launch("k_gram", S * P * P, Z, n, l, float(n), pre_gram)
    if where == 1:
        _launch("k_normalize", S * P, Z, n, centre, U)


def _activation(act, deriv: bool, x, out) -> None:
    xf, of = x.reshape(x.size), out.reshape(out.size)
    blocks = (x.size + _TPB - 1) // _TPB
    if act.code >= 0:
        p0, p1 = act.device_params
        _kernel("k_act_builtin")[blocks, _TPB](int(act.code), float(p0), float(p1), int(deriv), xf, of)
    else:
        _custom_kernel(act)[blocks, _TPB](int(deriv), xf, of)


def _post(A, n, l, where, centre, main_scale, R, use_skip, U, Hout, post_gram) -> None:
    S, P = A.shape[0], A.shape[2]
    if where == 2:
        _launch("k_normalize", S * P, A, n, centre, U)
        _launch("k_combine", S * n, U, n, main_scale, R, int(use_skip), Hout)
    else:
        _launch("k_combine", S * n, A, n, main_scale, R, int(use_skip), Hout)
    _launch("k_gram", S * P * P, Hout, n, l, float(n), post_gram)


def _readout(seed, net0, layer, n, DP, D, scale) -> None:
    _launch("k_readout", D.shape[0] * n, seed, net0, layer, n, DP, D, scale)


def _backprop(kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale) -> None:
    _launch("k_backprop", D.shape[0] * ((n_in + 1) // 2), kind, seed, net0, layer, D, n_out, n_in, DP, OUT, w_scale)


def _gram(D, n, l, out) -> None:
    _launch("k_gram", D.shape[0] * D.shape[2] * D.shape[2], D, n, l, 1.0, out)


def _zeros(shape: tuple[int, ...]):
    return _cuda.to_device(np.zeros(shape))


def _to_host(a) -> np.ndarray:
    return a.copy_to_host()


CUDA_STEPS = ExplicitSteps(zeros=_zeros, to_device=_cuda.to_device, to_host=_to_host, linear=_linear, pre=_pre,
                           activation=_activation, post=_post, readout=_readout, backprop=_backprop, gram=_gram)


def run_explicit_cuda(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0, norm=None,
                      backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Same contract as :func:`sigprop.kernels.explicit_cpu.run_explicit`, computed on the GPU (the shared layer loop
    :func:`sigprop.kernels.explicit_driver.run_explicit_steps` with :data:`CUDA_STEPS`)."""
    if not cuda_available():
        raise InputError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False) "
                         "or the simulator (NUMBA_ENABLE_CUDASIM=1)")
    return run_explicit_steps(CUDA_STEPS, X, widths, act, C_W, C_b, n_networks, seed, weights, residual, norm,
                              backward, first_network)
