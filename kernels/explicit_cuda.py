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

import math
import threading

import numba
import numpy as np
from numba import cuda as _cuda
from numba import types

from sigprop.kernels.device_activations import device_activation, device_derivative
from sigprop.theory.errors import InputError

from . import layer_ops, rng
from .backend import cuda_available, custom_scalar_derivative, device_helper, kernel_for_scalar
from .reference import check_explicit_args, tangent_from_backward

__all__ = ["run_explicit_cuda", "PTX_TARGETS", "cuda_kernels"]

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


def run_explicit_cuda(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0, norm=None,
                      backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Same contract as :func:`sigprop.kernels.explicit_cpu.run_explicit`, computed on the GPU."""
    if not cuda_available():
        raise InputError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False) "
                         "or the simulator (NUMBA_ENABLE_CUDASIM=1)")
    X, widths = check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                                    first_network, act)
    if act.code < 0 and act.scalar is None:
        raise InputError(f"activation {act.label!r} has no numba scalar version (act.scalar)")
    C_W, C_b, r = float(C_W), float(C_b), float(residual)
    S, kind, net0 = int(n_networks), rng.WEIGHT_KINDS[weights], int(first_network)
    seed_u = np.uint64(seed)
    P, n0 = X.shape
    L = len(widths)
    nmax = max((n0,) + widths)
    where, centre = layer_ops.NORM_CODES[norm]
    d = _cuda.device_array
    pre_gram, post_gram = d((S, L, P, P)), d((S, L, P, P))
    m2, m4 = d((S, L, P)), d((S, L, P))
    H0 = np.zeros((S, nmax, P))
    H0[:, :n0, :] = X.T
    H, Hn = _cuda.to_device(H0), _cuda.to_device(np.zeros((S, nmax, P)))
    Z, A = _cuda.to_device(np.zeros((S, nmax, P))), _cuda.to_device(np.zeros((S, nmax, P)))
    U = _cuda.to_device(np.zeros((S, nmax, P))) if where != 0 else Z
    R = _cuda.to_device(np.zeros((S, nmax, P))) if r != 0.0 else Z
    DP = _cuda.to_device(np.zeros((L, S, nmax, P))) if backward else None

    def act_apply(deriv: int, x, out) -> None:
        xf, of = x.reshape(x.size), out.reshape(out.size)
        blocks = (x.size + _TPB - 1) // _TPB
        if act.code >= 0:
            p0, p1 = act.device_params
            _kernel("k_act_builtin")[blocks, _TPB](int(act.code), float(p0), float(p1), deriv, xf, of)
        else:
            _custom_kernel(act)[blocks, _TPB](deriv, xf, of)

    main_scale = math.sqrt(1.0 - r * r)
    n_in = n0
    for l in range(1, L + 1):
        n = widths[l - 1]
        skip_scale = r / math.sqrt(n_in) if r != 0.0 else 0.0
        _launch("k_linear", S * n, kind, seed_u, net0, l, H, n_in, n, Z, math.sqrt(C_W / n_in), math.sqrt(C_b),
                R, skip_scale)
        _launch("k_moments", S * P, Z, n, l - 1, m2, m4)
        _launch("k_gram", S * P * P, Z, n, l - 1, float(n), pre_gram)
        src = Z
        if where == 1:
            _launch("k_normalize", S * P, Z, n, centre, U)
            src = U
        act_apply(0, src, A)
        if backward:
            act_apply(1, Z, DP[l - 1])
        if where == 2:
            _launch("k_normalize", S * P, A, n, centre, U)
            _launch("k_combine", S * n, U, n, main_scale, R, int(r != 0.0), Hn)
        else:
            _launch("k_combine", S * n, A, n, main_scale, R, int(r != 0.0), Hn)
        _launch("k_gram", S * P * P, Hn, n, l - 1, float(n), post_gram)
        H, Hn = Hn, H
        n_in = n
    out = {"preact_gram": pre_gram.copy_to_host(), "postact_gram": post_gram.copy_to_host(),
           "preact_m2": m2.copy_to_host(), "preact_m4": m4.copy_to_host()}
    if backward:
        bgram = d((S, L, P, P))
        D, Dn = _cuda.to_device(np.zeros((S, nmax, P))), _cuda.to_device(np.zeros((S, nmax, P)))
        nL = widths[-1]
        _launch("k_readout", S * nL, seed_u, net0, L + 1, nL, DP[L - 1], D, 1.0 / math.sqrt(nL))
        _launch("k_gram", S * P * P, D, nL, L - 1, 1.0, bgram)
        for l in range(L - 1, 0, -1):
            n_l, n_next = widths[l - 1], widths[l]
            _launch("k_backprop", S * ((n_l + 1) // 2), kind, seed_u, net0, l + 1, D, n_next, n_l, DP[l - 1], Dn,
                    math.sqrt(C_W / n_l))
            _launch("k_gram", S * P * P, Dn, n_l, l - 1, 1.0, bgram)
            D, Dn = Dn, D
        out["backward_gram"] = bgram.copy_to_host()
        out["tangent_gram"] = tangent_from_backward(out["backward_gram"], out["postact_gram"], X, C_W, C_b)
    return out
