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
* Gram chain: ``k_rainbow_gram_network``, the one CUDA chain of :mod:`sigprop.kernels.gram_cuda`
  (:func:`~sigprop.kernels.gram_cuda.make_chain_kernel`) built with the anchored covariance step
  (:func:`sigprop.kernels.rainbow_device.anchored_covariance_into`): one thread block per network, thread 0 forms
  the covariance and factors it, the threads draw rows (``sample_row``: the CPU's numbers) and share the Gram entries
  (``lane_sum``: the CPU's 8-lane order).

``PTX_TARGETS`` lists ``(name, python function, signature, threads per block)`` for ``python -m sigprop.kernels.ptx``.
Under the simulator (``NUMBA_ENABLE_CUDASIM=1``) the array helpers run as plain Python (``py_func``).
"""
from __future__ import annotations

import math
import threading

import numpy as np
from numba import cuda as _cuda
from numba import types

from sigprop.theory.errors import InputError

from ..theory.activations import Activation
from . import gram_cuda, gram_device, layer_ops, rainbow_device
from .backend import cuda_available, device_helper, kernel_for_scalar
from .device_activations import device_activation
from .gram_cpu import activation_device_fn
from .rainbow_device import STREAM_RAINBOW_ANCHOR, STREAM_RAINBOW_BIAS, STREAM_RAINBOW_WHITE

__all__ = ["run_rainbow_explicit_cuda", "run_rainbow_gram_cuda", "PTX_TARGETS"]

# the shared device code as a kernel calls it (kernels.backend.device_helper: py_func under the simulator)
matvec_row, add_bias_row, column_dot, add_anchor_row = (
    device_helper(f) for f in (layer_ops.matvec_row, layer_ops.add_bias_row, layer_ops.column_dot,
                               rainbow_device.add_anchor_row))
pair_of_task = gram_device.pair_of_task  # scalars only

_TPB = 128  # threads per block of the explicit kernels


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
# Gram chain: the chain of gram_cuda with the anchored covariance step
# --------------------------------------------------------------------------------------------
k_rainbow_gram_network = gram_cuda.make_chain_kernel(device_activation, rainbow_device.anchored_covariance_into)


_i, _f, _u = types.int64, types.float64, types.uint64
_F1, _F3, _F4 = (types.Array(types.float64, k, "C") for k in (1, 3, 4))

PTX_TARGETS: list[tuple[str, object, tuple, int]] = [  # (name, function, signature, threads per block)
    ("k_rainbow_linear", k_rainbow_linear, (_u, _i, _i, _F3, _i, _i, _F3, _f, _F4, _i, _i, _i, _F1, _f), _TPB),
    ("k_rainbow_act", k_rainbow_act, (_i, _f, _f, _F3, _F3, _i), _TPB),
    ("k_rainbow_gram", k_rainbow_gram, (_F3, _i, _i, _F4), _TPB),
    ("k_rainbow_gram_network", k_rainbow_gram_network, gram_cuda.CHAIN_SIGNATURE, gram_cuda.GPU_THREADS_PER_BLOCK),
]

_JIT: dict = {}
_JIT_LOCK = threading.Lock()


def _kernel(name: str, act: Activation | None = None):
    """cuda.jit kernel ``name`` of the explicit engine (the activation kernel: one for the built-ins, one per custom
    scalar; cached)."""
    if act is not None and not act.is_builtin:
        return kernel_for_scalar(f"rainbow_cuda.{name}", act,
                                 lambda ac: _cuda.jit(_make_act_kernel(activation_device_fn(ac))))
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
    from .rainbow_cpu import explicit_layers, explicit_start

    _check_cuda()
    widths, used, sqrtb, H0 = explicit_start(Y1, widths, b, P, n_networks)
    S, L, (N, d) = H0.shape[0], len(widths), np.shape(Y1)
    pre = _cuda.device_array((S, L, N, N))
    post = _cuda.to_device(np.zeros((S, L, N, N)))
    H = _cuda.to_device(H0)
    Z = _cuda.to_device(np.zeros(H0.shape))
    seed_u = np.uint64(seed)
    p0, p1 = (float(v) for v in act.device_params)
    empty = _cuda.to_device(np.zeros(max(N - P, 1)))
    sqrtb_d = [_cuda.to_device(np.ascontiguousarray(row)) if row.size else empty for row in sqrtb]
    kept = []
    for l, n_in, n, w_scale, m, sb in explicit_layers(widths, d, a, used, sqrtb_d, empty):
        _launch("k_rainbow_linear", S * n, seed_u, int(network0), l + 1, H, n_in, n, Z, w_scale, post, max(l - 1, 0),
                int(P), m, sb, math.sqrt(C_b))
        _launch("k_rainbow_gram", S * N * (N + 1) // 2, Z, n, l, pre)
        _launch("k_rainbow_act", S * n, int(act.code), p0, p1, Z, H, n, act=act)
        _launch("k_rainbow_gram", S * N * (N + 1) // 2, H, n, l, post)
        if keep_activations:
            kept.append(np.ascontiguousarray(H.copy_to_host()[:, :n, :].transpose(0, 2, 1)))
    out = {"preact_gram": pre.copy_to_host(), "postact_gram": post.copy_to_host()}
    if keep_activations:
        out["activations"] = tuple(kept)
    return out


def run_rainbow_gram_cuda(K1: np.ndarray, widths, act: Activation, a: np.ndarray, b: np.ndarray, P: int,
                          C_b: float, *, n_networks: int, seed: int, network0: int = 0) -> dict:
    """Same contract as :func:`sigprop.kernels.rainbow_cpu.run_rainbow_gram_cpu`, computed on the GPU."""
    from .rainbow_cpu import anchored_covariance_rows

    _check_cuda()
    kernel = gram_cuda.jit_chain_kernel(act, "k_rainbow_gram_network", k_rainbow_gram_network,
                                        rainbow_device.anchored_covariance_into)
    K1 = np.ascontiguousarray(K1, dtype=np.float64)
    cov = anchored_covariance_rows(a, b, C_b, len(widths), K1.shape[0] - P)
    pre, post, _ = gram_cuda.run_chain_cuda(kernel, K1, widths, act, cov, n_networks, seed, network0, with_m4=False)
    return {"preact_gram": pre, "postact_gram": post}
