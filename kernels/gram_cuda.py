"""The Gram chain on a CUDA GPU (numba-cuda): the same chain as :mod:`sigprop.kernels.gram_cpu`.

One thread block per network.  Per layer: thread 0 makes the layer covariance (the covariance step the kernel was
built with) and factors the covariances (``factor_psd``, P x P); the block's threads draw the rows
``i = t, t + T, ...`` (``sample_row``); then the threads share the reductions, one Gram entry / moment / column
normalisation per thread, each summed over ``i`` in the same fixed order as the CPU kernel (``gram_device.lane_sum``:
eight lane sums in registers).  All of it is the shared device code of :mod:`sigprop.kernels.gram_device` (njit,
inline='always'), so the same seed gives the CPU numbers up to rounding (fused multiply-adds).  Working buffers live
in global memory: O(S_batch n P).

One kernel source for every covariance model: :func:`make_chain_kernel` closes over the activation switch and the
covariance step, :func:`run_chain_cuda` launches a chain kernel.  The plain ``gram`` method (:func:`run_gram_cuda`,
``k_gram_network``) uses :func:`gram_device.covariance_into`; the rainbow networks' chain
(:func:`sigprop.kernels.rainbow_cuda.run_rainbow_gram_cuda`, ``k_rainbow_gram_network``) uses
:func:`sigprop.kernels.rainbow_device.anchored_covariance_into`.

``PTX_TARGETS`` lists ``(name, python function, signature, threads per block)`` for ``python -m sigprop.kernels.ptx``;
``CHAIN_SIGNATURE`` is the signature of every chain kernel.
Under the simulator (``NUMBA_ENABLE_CUDASIM=1``) the array helpers run as plain Python (``py_func``).
"""
from __future__ import annotations

import math
import threading

import numba
import numpy as np
from numba import cuda as _cuda
from numba import types

from ..theory.activations import Activation
from . import gram_device
from .backend import device_helper, kernel_for_scalar
from .device_activations import device_activation
from .gram_cpu import activation_device_fn, gram_outputs_from_status, input_gram, plain_covariance_rows
from .gram_device import NORM_CODES, PSD_RTOL, STATUS_NONFINITE, STATUS_NOT_PSD, STATUS_OK

__all__ = ["run_gram_cuda", "run_chain_cuda", "make_chain_kernel", "jit_chain_kernel", "PTX_TARGETS",
           "CHAIN_SIGNATURE"]

_SIM = bool(numba.config.ENABLE_CUDASIM)
_dev = device_helper  # shared simulator shim (kernels.backend): py_func under the simulator

factor_psd, sample_row, lane_sum, norm_coefficients = (
    _dev(f) for f in (gram_device.factor_psd, gram_device.sample_row, gram_device.lane_sum,
                      gram_device.norm_coefficients))
pair_of_task = gram_device.pair_of_task  # scalars only


@numba.njit(inline="always")
def _factor_layer_impl(K, H, A, B, Wk, perm, P, tol, with_skip, rk):
    """Thread 0: the factor A of the layer covariance K (rank rk[0]) and, with a skip, the factor B of H (rank
    rk[1]); a negative rank reports a breakdown (gram_device.factor_psd)."""
    rz = factor_psd(K, A, Wk, perm, P, tol)
    rs = 0
    if with_skip and rz >= 0:
        rs = factor_psd(H, B, Wk, perm, P, tol)
    rk[0] = rz
    rk[1] = rs


@numba.njit(inline="always")
def _nan_from_layer_impl(pre, post, m4, s, l, with_m4):
    """Thread 0: NaN statistics of network s from layer index l on."""
    P = pre.shape[2]
    for l2 in range(l, pre.shape[1]):
        for a in range(P):
            if with_m4:
                m4[s, l2, a] = math.nan
            for b in range(P):
                pre[s, l2, a, b] = math.nan
                post[s, l2, a, b] = math.nan


@numba.njit(inline="always")
def _pre_statistics_impl(Z, n, P, s, l, t, T, norm, with_m4, pre, m4, cf):
    """Thread t of T: its share of the pre-activation Gram entries (a <= b), the fourth moments (with ``with_m4``)
    and the PRE normalisation coefficients (shift, scale; (0, 1) without PRE) per column into cf; all read Z only."""
    ntri = P * (P + 1) // 2
    nm4 = P if with_m4 else 0
    for task in range(t, ntri + nm4 + P, T):
        if task < ntri:
            a, b = pair_of_task(task, P)
            v = lane_sum(Z, a, Z, b, n, False) / n
            pre[s, l, a, b] = v
            pre[s, l, b, a] = v
        elif task < ntri + nm4:
            a = task - ntri
            m4[s, l, a] = lane_sum(Z, a, Z, a, n, True) / n
        else:
            a = task - ntri - nm4
            shift = 0.0
            scale = 1.0
            if norm == 1 or norm == 2:
                shift, scale = norm_coefficients(Z, a, n, norm == 2)
            cf[a, 0] = shift
            cf[a, 1] = scale


@numba.njit(inline="always")
def _post_statistics_impl(Z, n, P, s, l, t, T, post, H):
    """Thread t of T: its share of the post-activation Gram entries, into post and into H (the next layer's input)."""
    for task in range(t, P * (P + 1) // 2, T):
        a, b = pair_of_task(task, P)
        v = lane_sum(Z, a, Z, b, n, False) / n
        post[s, l, a, b] = v
        post[s, l, b, a] = v
        H[a, b] = v
        H[b, a] = v


@numba.njit(inline="always")
def _normalise_elements_impl(Z, n, P, t, T, cf):
    """Thread t of T: its elements of Z[a, i] <- (Z[a, i] - shift_a) * scale_a (POST normalisation)."""
    for e in range(t, P * n, T):
        a = e // n
        i = e - a * n
        Z[a, i] = (Z[a, i] - cf[a, 0]) * cf[a, 1]


@numba.njit(inline="always")
def _mix_elements_impl(Z, Sk, n, P, t, T, cz, resid):
    """Thread t of T: its elements of the residual mix Z <- cz Z + resid Sk."""
    for e in range(t, P * n, T):
        a = e // n
        i = e - a * n
        Z[a, i] = cz * Z[a, i] + resid * Sk[a, i]


_factor_layer = _dev(_factor_layer_impl)
_normalise_elements = _dev(_normalise_elements_impl)
_mix_elements = _dev(_mix_elements_impl)
_nan_from_layer = _dev(_nan_from_layer_impl)
_pre_statistics = _dev(_pre_statistics_impl)
_post_statistics = _dev(_post_statistics_impl)


def make_chain_kernel(phi, covariance):
    """The Gram chain's kernel (a plain Python function, for ``cuda.jit`` or ``compile_ptx``) with the activation
    switch ``phi(code, x, p0, p1)`` (the shared device switch for the built-ins, a custom scalar wrapped by
    :func:`gram_cpu.activation_device_fn` otherwise) and the covariance step ``covariance(K, H, l, P, cov)``
    (:func:`gram_device.covariance_into` or :func:`sigprop.kernels.rainbow_device.anchored_covariance_into`).  One
    source for all activations and covariance models: the kernel is a closure over both, which numba compiles in as
    constants.  (No numba disk cache here, so unlike the CPU factory this one can close over the functions
    themselves.)  The arguments are those of :func:`sigprop.kernels.gram_cpu.make_chain_kernel`'s kernel, then the
    scratch arrays of :func:`run_chain_cuda`."""
    step = _dev(covariance)

    def k_gram_chain(X0, widths, code, p0, p1, cov, resid, norm, with_m4, seed, first, tol, pre, post, m4, status,
                     Zs, Sks, Hs, Ks, As, Bs, Wks, perms, coef, ranks):
        """Block s simulates network ``first + s``; scratch arrays are indexed by s (see the module docstring)."""
        s = _cuda.blockIdx.x
        if s >= pre.shape[0]:
            return
        t = _cuda.threadIdx.x
        T = _cuda.blockDim.x
        L = widths.shape[0]
        P = X0.shape[0]
        net = first + s
        q = (P + 1) // 2
        cz = math.sqrt(1.0 - resid * resid)
        with_skip = resid > 0.0
        Z = Zs[s]
        Sk = Sks[s]
        H = Hs[s]
        K = Ks[s]
        A = As[s]
        B = Bs[s]
        Wk = Wks[s]
        perm = perms[s]
        cf = coef[s]
        rk = ranks[s]
        for e in range(t, P * P, T):
            H[e // P, e % P] = X0[e // P, e % P]
        if t == 0:
            status[s] = STATUS_OK
        _cuda.syncthreads()
        for l in range(L):
            n = widths[l]
            if t == 0:
                step(K, H, l, P, cov)
                _factor_layer(K, H, A, B, Wk, perm, P, tol, with_skip, rk)
            _cuda.syncthreads()
            rz = rk[0]
            rs = rk[1]
            if rz < 0 or rs < 0:  # the same decision in every thread of the block
                if t == 0:
                    status[s] = STATUS_NONFINITE if (rz == -2 or rs == -2) else STATUS_NOT_PSD
                    _nan_from_layer(pre, post, m4, s, l, with_m4)
                return
            for i in range(t, n, T):
                sample_row(seed, net, l + 1, i, A, rz, P, 0, Z, i)
                if with_skip:
                    sample_row(seed, net, l + 1, i, B, rs, P, q, Sk, i)
            _cuda.syncthreads()
            _pre_statistics(Z, n, P, s, l, t, T, norm, with_m4, pre, m4, cf)
            _cuda.syncthreads()
            for e in range(t, P * n, T):
                a = e // n
                i = e - a * n
                Z[a, i] = phi(code, (Z[a, i] - cf[a, 0]) * cf[a, 1], p0, p1)
            _cuda.syncthreads()
            if norm == 3 or norm == 4:
                for a in range(t, P, T):
                    shift, scale = norm_coefficients(Z, a, n, norm == 4)
                    cf[a, 0] = shift
                    cf[a, 1] = scale
                _cuda.syncthreads()
                _normalise_elements(Z, n, P, t, T, cf)
                _cuda.syncthreads()
            if with_skip:
                _mix_elements(Z, Sk, n, P, t, T, cz, resid)
                _cuda.syncthreads()
            _post_statistics(Z, n, P, s, l, t, T, post, H)
            _cuda.syncthreads()

    return k_gram_chain


k_gram_network = make_chain_kernel(device_activation, gram_device.covariance_into)  # built-ins (and PTX target)


_i, _f, _u, _b = types.int64, types.float64, types.uint64, types.boolean
_I1, _I2 = (types.Array(types.int64, k, "C") for k in (1, 2))
_A2, _A3, _A4 = (types.Array(types.float64, k, "C") for k in (2, 3, 4))
CHAIN_SIGNATURE = (_A2, _I1, _i, _f, _f, _A2, _f, _i, _b, _u, _i, _f, _A4, _A4, _A3, _I1,
                   _A3, _A3, _A3, _A3, _A3, _A3, _A3, _I2, _A3, _I2)

GPU_THREADS_PER_BLOCK = 128  # threads per network (block) on a GPU

# (name, python function, signature, threads per block it is launched with on a GPU)
PTX_TARGETS: list[tuple[str, object, tuple, int]] = [
    ("k_gram_network", k_gram_network, CHAIN_SIGNATURE, GPU_THREADS_PER_BLOCK)]

_JIT: dict = {}
_JIT_LOCK = threading.Lock()


def jit_chain_kernel(act: Activation, name: str, builtin, covariance):
    """``cuda.jit`` chain kernel for ``act``: ``builtin`` (the built-ins' kernel function) compiled once under
    ``name``, or, for a custom scalar, :func:`make_chain_kernel` with it and ``covariance`` (once per scalar)."""
    if act.is_builtin:
        with _JIT_LOCK:
            if _JIT.get(name) is None:
                _JIT[name] = _cuda.jit(builtin)
            return _JIT[name]
    return kernel_for_scalar(f"gram_cuda.{name}", act,
                             lambda ac: _cuda.jit(make_chain_kernel(activation_device_fn(ac), covariance)))


def threads_per_block(nmax: int) -> int:
    """Threads per network: 128 on a GPU (8 under the simulator, which runs each thread in Python)."""
    return 8 if _SIM else GPU_THREADS_PER_BLOCK


def run_chain_cuda(kernel, X0: np.ndarray, widths, act: Activation, cov: np.ndarray, n_networks: int, seed: int,
                   first_network: int = 0, residual: float = 0.0, norm: str | None = None,
                   with_m4: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Launch a ``cuda.jit`` chain kernel: the contract of :func:`sigprop.kernels.gram_cpu.run_chain_cpu` (host
    arrays ``(pre, post, m4)``), computed on the GPU."""
    X0 = np.ascontiguousarray(X0, dtype=np.float64)
    P = X0.shape[0]
    w = np.ascontiguousarray(widths, dtype=np.int64)
    L = w.shape[0]
    S = int(n_networks)
    nmax = int(w.max())
    with_skip = residual > 0.0
    d = _cuda.to_device
    pre = _cuda.device_array((S, L, P, P))
    post = _cuda.device_array((S, L, P, P))
    m4 = _cuda.device_array((S, L, P) if with_m4 else (S, 1, 1))
    status = _cuda.device_array(S, dtype=np.int64)
    Zs = _cuda.device_array((S, P, nmax))
    Sks = _cuda.device_array((S, P, nmax if with_skip else 1))
    Bs = _cuda.device_array((S, P, P) if with_skip else (S, 1, 1))
    Hs, Ks, As, Wks = (_cuda.device_array((S, P, P)) for _ in range(4))
    perms = _cuda.device_array((S, P), dtype=np.int64)
    coef = _cuda.device_array((S, P, 2))
    ranks = _cuda.device_array((S, 2), dtype=np.int64)
    p0, p1 = act.device_params
    kernel[S, threads_per_block(nmax)](d(X0), d(w), np.int64(act.code), float(p0), float(p1),
                                       d(np.ascontiguousarray(cov, dtype=np.float64)), float(residual),
                                       np.int64(NORM_CODES[norm]), bool(with_m4), np.uint64(seed),
                                       np.int64(first_network), float(PSD_RTOL), pre, post, m4, status, Zs, Sks, Hs,
                                       Ks, As, Bs, Wks, perms, coef, ranks)
    gram_outputs_from_status(status.copy_to_host(), first_network)
    return pre.copy_to_host(), post.copy_to_host(), m4.copy_to_host()


def run_gram_cuda(X: np.ndarray, widths, act: Activation, C_W: float, C_b: float, n_networks: int, seed: int,
                  residual: float = 0.0, norm: str | None = None, first_network: int = 0) -> dict[str, np.ndarray]:
    """Same contract as :func:`sigprop.kernels.gram_cpu.run_gram_cpu`, computed on the GPU."""
    kernel = jit_chain_kernel(act, "k_gram_network", k_gram_network, gram_device.covariance_into)
    pre, post, m4 = run_chain_cuda(kernel, input_gram(X), widths, act, plain_covariance_rows(C_W, C_b, len(widths)),
                                   n_networks, seed, first_network, residual, norm)
    m2 = np.diagonal(pre, axis1=2, axis2=3).copy()  # a writable copy (a view when P = 1)
    return {"preact_gram": pre, "postact_gram": post, "preact_m2": m2, "preact_m4": m4}
