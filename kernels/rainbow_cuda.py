"""Compiled rainbow engines on a CUDA GPU (numba-cuda): the same computations as :mod:`sigprop.kernels.rainbow_cpu`.

The kernels call the shared ``@numba.njit(inline='always')`` scalar code (:mod:`sigprop.kernels.rng`,
:mod:`sigprop.kernels.layer_ops`, :mod:`sigprop.kernels.gram_device`, :mod:`sigprop.kernels.rainbow_device`, the
activation switch), so the same seed gives the CPU numbers up to rounding (fused multiply-adds on a GPU; bit for bit
in numba's simulator).

* Explicit: per layer ``k_rainbow_linear`` (one thread per (network, row i): the white product
  :func:`layer_ops.matvec_row`, whose sums are those of the CPU's buffered version, the anchor part, the bias),
  ``k_rainbow_act`` (one thread per (network, row): ``phi``), ``k_rainbow_gram`` (one thread per (network, x, y):
  ``column_dot``, increasing ``i``) for the pre- and post-activation Grams.  The next layer's anchor part reads the
  post-activation Gram on the device.
* Gram chain: ``k_rainbow_gram_network``, one thread block per network as :mod:`sigprop.kernels.gram_cuda`: thread 0
  forms the anchored covariance and factors it, the threads draw rows (``sample_row``: the CPU's numbers) and share
  the Gram entries (``lane_sum``: the CPU's 8-lane order).

``PTX_TARGETS`` lists ``(name, python function, signature, threads per block)`` for ``python -m sigprop.kernels.ptx``.
Under the simulator (``NUMBA_ENABLE_CUDASIM=1``) the array helpers run as plain Python (``py_func``).
"""
from __future__ import annotations

import math
import threading

import numba
import numpy as np
from numba import cuda as _cuda
from numba import types

from sigprop.theory.errors import InputError

from ..theory.activations import Activation
from . import gram_device, layer_ops, rainbow_device
from .backend import cuda_available, device_helper, kernel_for_scalar
from .device_activations import device_activation
from .gram_cpu import activation_device_fn, gram_outputs_from_status
from .gram_device import PSD_RTOL, STATUS_NONFINITE, STATUS_NOT_PSD, STATUS_OK
from .rainbow_device import STREAM_RAINBOW_ANCHOR, STREAM_RAINBOW_BIAS, STREAM_RAINBOW_WHITE

__all__ = ["run_rainbow_explicit_cuda", "run_rainbow_gram_cuda", "PTX_TARGETS"]

_SIM = bool(numba.config.ENABLE_CUDASIM)
_dev = device_helper

matvec_row = _dev(layer_ops.matvec_row)
add_bias_row = _dev(layer_ops.add_bias_row)
column_dot = _dev(layer_ops.column_dot)
add_anchor_row = _dev(rainbow_device.add_anchor_row)
anchored_covariance_into = _dev(rainbow_device.anchored_covariance_into)
factor_psd = _dev(gram_device.factor_psd)
sample_row = _dev(gram_device.sample_row)
lane_sum = _dev(gram_device.lane_sum)
pair_of_task = gram_device.pair_of_task  # scalars only

_TPB = 128  # threads per block of the explicit kernels
GRAM_THREADS_PER_BLOCK = 128  # threads per network (block) of the Gram chain on a GPU


# --------------------------------------------------------------------------------------------
# Explicit engine
# --------------------------------------------------------------------------------------------
def k_rainbow_linear(seed, net0, layer, H, n_in, n, Z, w_scale, G, lp, P, m, sqrtb, b_scale):
    """Thread (s, i): Z[s, i, :] = w_scale G_i . H[s] + anchor part (m > 0) + b_scale beta_i."""
    k = _cuda.grid(1)
    if k < Z.shape[0] * n:
        s = k // n
        i = k - s * n
        net = net0 + s
        if w_scale != 0.0:
            matvec_row(0, seed, STREAM_RAINBOW_WHITE, net, layer, H, s, n_in, i, Z, w_scale)
        else:
            for x in range(Z.shape[2]):
                Z[s, i, x] = 0.0
        if m > 0:
            add_anchor_row(seed, STREAM_RAINBOW_ANCHOR, net, layer, i, G, s, lp, P, m, sqrtb, Z)
        if b_scale != 0.0:
            add_bias_row(seed, STREAM_RAINBOW_BIAS, net, layer, i, Z, s, b_scale)


def _make_act_kernel(phi):
    def k_rainbow_act(code, p0, p1, Z, A, n):
        """Thread (s, i): A[s, i, :] = phi(Z[s, i, :])."""
        k = _cuda.grid(1)
        if k < Z.shape[0] * n:
            s = k // n
            i = k - s * n
            for x in range(Z.shape[2]):
                A[s, i, x] = phi(code, Z[s, i, x], p0, p1)

    return k_rainbow_act


k_rainbow_act = _make_act_kernel(device_activation)


def k_rainbow_gram(Z, n, l, out):
    """Thread (s, x, y), x <= y: out[s, l, x, y] = out[s, l, y, x] = sum_{i < n} Z[s, i, x] Z[s, i, y] / n."""
    k = _cuda.grid(1)
    N = Z.shape[2]
    ntri = N * (N + 1) // 2
    if k < Z.shape[0] * ntri:
        s = k // ntri
        x, y = pair_of_task(k - s * ntri, N)
        v = column_dot(Z, s, n, x, y) / n
        out[s, l, x, y] = v
        out[s, l, y, x] = v


# --------------------------------------------------------------------------------------------
# Gram chain
# --------------------------------------------------------------------------------------------
def _make_gram_kernel(phi):
    """The Gram-chain kernel with the activation switch ``phi(code, x, p0, p1)`` (a closure, as gram_cuda's)."""

    def k_rainbow_gram_network(K1, widths, code, p0, p1, a, b, P, c_b, seed, first, tol, pre, post, status,
                               Zs, Hs, Ks, As, Wks, perms, ranks):
        """Block s simulates network ``first + s``; scratch arrays are indexed by s."""
        s = _cuda.blockIdx.x
        if s >= pre.shape[0]:
            return
        t = _cuda.threadIdx.x
        T = _cuda.blockDim.x
        L = widths.shape[0]
        N = K1.shape[0]
        net = first + s
        Z = Zs[s]
        H = Hs[s]
        K = Ks[s]
        A = As[s]
        Wk = Wks[s]
        perm = perms[s]
        rk = ranks[s]
        ntri = N * (N + 1) // 2
        for e in range(t, N * N, T):
            K[e // N, e % N] = K1[e // N, e % N]
        if t == 0:
            status[s] = STATUS_OK
        _cuda.syncthreads()
        for l in range(L):
            n = widths[l]
            if t == 0:
                if l > 0:
                    anchored_covariance_into(K, H, N, P, a[l - 1], b[l - 1], c_b)
                rk[0] = factor_psd(K, A, Wk, perm, N, tol)
            _cuda.syncthreads()
            r = rk[0]
            if r < 0:  # the same decision in every thread of the block
                if t == 0:
                    status[s] = STATUS_NONFINITE if r == -2 else STATUS_NOT_PSD
                    for l2 in range(l, L):
                        for x in range(N):
                            for y in range(N):
                                pre[s, l2, x, y] = math.nan
                                post[s, l2, x, y] = math.nan
                return
            for i in range(t, n, T):
                sample_row(seed, net, l + 1, i, A, r, N, 0, Z, i)
            _cuda.syncthreads()
            for task in range(t, ntri, T):
                x, y = pair_of_task(task, N)
                v = lane_sum(Z, x, Z, y, n, False) / n
                pre[s, l, x, y] = v
                pre[s, l, y, x] = v
            _cuda.syncthreads()
            for e in range(t, N * n, T):
                x = e // n
                i = e - x * n
                Z[x, i] = phi(code, Z[x, i], p0, p1)
            _cuda.syncthreads()
            for task in range(t, ntri, T):
                x, y = pair_of_task(task, N)
                v = lane_sum(Z, x, Z, y, n, False) / n
                post[s, l, x, y] = v
                post[s, l, y, x] = v
                H[x, y] = v
                H[y, x] = v
            _cuda.syncthreads()

    return k_rainbow_gram_network


k_rainbow_gram_network = _make_gram_kernel(device_activation)


_i = types.int64
_f = types.float64
_u = types.uint64
_I1 = types.Array(types.int64, 1, "C")
_I2 = types.Array(types.int64, 2, "C")
_F1 = types.Array(types.float64, 1, "C")
_F2 = types.Array(types.float64, 2, "C")
_F3 = types.Array(types.float64, 3, "C")
_F4 = types.Array(types.float64, 4, "C")

PTX_TARGETS: list[tuple[str, object, tuple, int]] = [  # (name, function, signature, threads per block)
    ("k_rainbow_linear", k_rainbow_linear, (_u, _i, _i, _F3, _i, _i, _F3, _f, _F4, _i, _i, _i, _F1, _f), _TPB),
    ("k_rainbow_act", k_rainbow_act, (_i, _f, _f, _F3, _F3, _i), _TPB),
    ("k_rainbow_gram", k_rainbow_gram, (_F3, _i, _i, _F4), _TPB),
    ("k_rainbow_gram_network", k_rainbow_gram_network,
     (_F2, _I1, _i, _f, _f, _F1, _F2, _i, _f, _u, _i, _f, _F4, _F4, _I1, _F3, _F3, _F3, _F3, _F3, _I2, _I2),
     GRAM_THREADS_PER_BLOCK),
]

_JIT: dict = {}
_JIT_LOCK = threading.Lock()


def _kernel(name: str, act: Activation | None = None):
    """cuda.jit kernel ``name`` (activation kernels: one for the built-ins, one per custom scalar; cached)."""
    if act is not None and not act.is_builtin:
        factory = _make_act_kernel if name == "k_rainbow_act" else _make_gram_kernel
        return kernel_for_scalar(f"rainbow_cuda.{name}", act,
                                 lambda ac: _cuda.jit(factory(activation_device_fn(ac))))
    with _JIT_LOCK:
        if name not in _JIT:
            _JIT[name] = _cuda.jit({n: f for n, f, _, _ in PTX_TARGETS}[name])
        return _JIT[name]


def _check_cuda() -> None:
    if not cuda_available():
        raise InputError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False) "
                         "or the simulator (NUMBA_ENABLE_CUDASIM=1); use backend='cpu'")


def _launch(name: str, total: int, *args, act: Activation | None = None) -> None:
    if total > 0:
        _kernel(name, act)[(total + _TPB - 1) // _TPB, _TPB](*args)


def run_rainbow_explicit_cuda(Y1: np.ndarray, widths, act: Activation, a: np.ndarray, b: np.ndarray, P: int,
                              C_b: float, *, n_networks: int, seed: int, network0: int = 0,
                              keep_activations: bool = False) -> dict:
    """Same contract as :func:`sigprop.kernels.rainbow_cpu.run_rainbow_explicit_cpu`, computed on the GPU."""
    from .rainbow_cpu import anchor_weights, layer_scales

    _check_cuda()
    Y1 = np.ascontiguousarray(Y1, dtype=np.float64)
    N, d = Y1.shape
    widths = tuple(int(w) for w in widths)
    L, S = len(widths), int(n_networks)
    nmax = max(widths + (d,))
    used, sqrtb = anchor_weights(np.asarray(b, dtype=np.float64).reshape(L - 1, N - P))
    pre = _cuda.device_array((S, L, N, N))
    post = _cuda.to_device(np.zeros((S, L, N, N)))
    H0 = np.zeros((S, nmax, N))
    H0[:, :d, :] = Y1.T
    H = _cuda.to_device(H0)
    Z = _cuda.to_device(np.zeros((S, nmax, N)))
    seed_u = np.uint64(seed)
    p0, p1 = (float(v) for v in act.device_params)
    empty = _cuda.to_device(np.zeros(max(N - P, 1)))
    sqrtb_d = [_cuda.to_device(np.ascontiguousarray(row)) if row.size else empty for row in sqrtb]
    kept = []
    n_in = d
    for l in range(L):
        n = widths[l]
        w_scale, m = layer_scales(l, d, n_in, a, used)
        sb = empty if l == 0 else sqrtb_d[l - 1]
        _launch("k_rainbow_linear", S * n, seed_u, int(network0), l + 1, H, n_in, n, Z, w_scale, post, max(l - 1, 0),
                int(P), m, sb, math.sqrt(C_b))
        _launch("k_rainbow_gram", S * N * (N + 1) // 2, Z, n, l, pre)
        _launch("k_rainbow_act", S * n, int(act.code), p0, p1, Z, H, n, act=act)
        _launch("k_rainbow_gram", S * N * (N + 1) // 2, H, n, l, post)
        if keep_activations:
            kept.append(np.ascontiguousarray(H.copy_to_host()[:, :n, :].transpose(0, 2, 1)))
        n_in = n
    out = {"preact_gram": pre.copy_to_host(), "postact_gram": post.copy_to_host()}
    if keep_activations:
        out["activations"] = tuple(kept)
    return out


def threads_per_block() -> int:
    """Threads per network of the Gram chain: 128 on a GPU (8 under the simulator, which runs threads in Python)."""
    return 8 if _SIM else GRAM_THREADS_PER_BLOCK


def run_rainbow_gram_cuda(K1: np.ndarray, widths, act: Activation, a: np.ndarray, b: np.ndarray, P: int,
                          C_b: float, *, n_networks: int, seed: int, network0: int = 0) -> dict:
    """Same contract as :func:`sigprop.kernels.rainbow_cpu.run_rainbow_gram_cpu`, computed on the GPU."""
    _check_cuda()
    K1 = np.ascontiguousarray(K1, dtype=np.float64)
    N = K1.shape[0]
    w = np.ascontiguousarray(widths, dtype=np.int64)
    L, S = w.shape[0], int(n_networks)
    nmax = int(w.max())
    b = np.ascontiguousarray(np.asarray(b, dtype=np.float64).reshape(L - 1, N - P))
    if b.size == 0:
        b = np.zeros((max(L - 1, 1), max(N - P, 1)))  # never read; a non-empty array for the device
    a = np.ascontiguousarray(a, dtype=np.float64).reshape(L - 1)
    if a.size == 0:
        a = np.zeros(1)
    to = _cuda.to_device
    pre = _cuda.device_array((S, L, N, N))
    post = _cuda.device_array((S, L, N, N))
    status = _cuda.device_array(S, dtype=np.int64)
    Zs = _cuda.device_array((S, N, nmax))
    mats = [_cuda.device_array((S, N, N)) for _ in range(4)]
    perms = _cuda.device_array((S, N), dtype=np.int64)
    ranks = _cuda.device_array((S, 1), dtype=np.int64)
    p0, p1 = (float(v) for v in act.device_params)
    kernel = _kernel("k_rainbow_gram_network", act)
    kernel[S, threads_per_block()](to(K1), to(w), np.int64(act.code), p0, p1, to(a), to(b), np.int64(P), float(C_b),
                                   np.uint64(seed), np.int64(network0), float(PSD_RTOL), pre, post, status, Zs,
                                   *mats, perms, ranks)
    gram_outputs_from_status(status.copy_to_host(), network0)
    return {"preact_gram": pre.copy_to_host(), "postact_gram": post.copy_to_host()}
