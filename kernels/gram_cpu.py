"""The Gram chain on the CPU (numba): exact Markov chain on P x P Gram matrices (docs/derivations.md, section 4).

Given ``h^(l-1)`` (Gram ``H = h^T h / n_{l-1}``), the rows ``(z_i, s_i)`` of layer ``l`` are i.i.d. with
``z_i ~ N(0, K_l)`` (pre-activations) and, independently, ``s_i ~ N(0, H)`` (the random-projection
skip ``S h^(l-1) / sqrt(n_{l-1})``).  So each layer draws an ``n x P`` (and, with a residual, another
``n x P``) standard normal matrix from Philox stream 4, multiplies by exact factors of the two covariances
(:func:`gram_device.factor_psd`), applies PRE/phi/POST and the residual mix, and reduces to the new Gram:
``O(n P^2)`` per layer, exact in distribution for Gaussian weights.

This module holds the one CPU chain, for every covariance model: the kernel factory :func:`make_chain_kernel` is
built with an activation switch ``_phi`` and a covariance step ``_covariance(K, H, l, P, cov)`` that makes the layer
covariance ``K`` from ``H`` (the previous layer's post-activation Gram, the chain's start at ``l = 0``) and the
per-layer parameter rows ``cov``.  The plain ``gram`` method (:func:`run_gram_cpu`) uses
:func:`gram_device.covariance_into`, ``K = C_b + C_W H``; the rainbow networks' chain
(:func:`sigprop.kernels.rainbow_cpu.run_rainbow_gram_cpu`) uses
:func:`sigprop.kernels.rainbow_device.anchored_covariance_into`.  :func:`run_chain_cpu` runs a chain kernel.
The CUDA twin is :mod:`sigprop.kernels.gram_cuda`.

RNG keying: ``normal_pair(seed, 4, network, layer, row=i, col_pair)`` with ``layer = 1..L`` the hidden
layer (as for the explicit engines' streams), column pairs ``0 .. ceil(rank/2)-1`` for ``z`` and ``ceil(P/2) + k``
for the skip.
"""
from __future__ import annotations

import math
import sys
import types

import numba
import numpy as np

from sigprop.theory.errors import InputTypeError

from ..theory.activations import Activation
from .backend import kernel_for_scalar
from .device_activations import SWITCH_FINGERPRINT, device_activation, fingerprinted
from .gram_device import (
    NORM_CODES,
    PSD_RTOL,
    STATUS_NONFINITE,
    STATUS_NOT_PSD,
    STATUS_OK,
    covariance_into,
    factor_psd,
    norm_coefficients,
    sample_rows,
)
from .simd import aligned_rows, cross44_lanes, off8_lanes, prefer_wide_vectors, square_fourth4_lanes, tri8_lanes

__all__ = ["run_gram_cpu", "run_chain_cpu", "make_chain_kernel", "chain_namespace", "activation_device_fn",
           "gram_outputs_from_status", "input_gram", "plain_covariance_rows"]


@numba.njit(inline="always")
def _group_rows(Z, g, P):
    """The four rows 4g, ..., 4g + 3 of Z, the last valid row standing in for rows >= P (their sums are computed
    and dropped)."""
    return Z[4 * g], Z[min(4 * g + 1, P - 1)], Z[min(4 * g + 2, P - 1)], Z[min(4 * g + 3, P - 1)]


@numba.njit(inline="always")
def _store_pairs(G, a0, b0, P, sums, first, diagonal, within):
    """Write ``sums[first:]`` into G's upper triangle at (a0 + i, b0 + j), i, j = 0..3, row by row: every pair if
    not ``within`` (two groups), else the pairs j >= i (``diagonal``) or j > i of one group (the order of
    ``simd.tri8_lanes`` / ``simd.off8_lanes`` / ``simd.cross44_lanes``); pairs with a padding row are dropped."""
    t = first
    for i in range(4):
        for j in range((i if diagonal else i + 1) if within else 0, 4):
            if a0 + i < P and b0 + j < P:
                G[a0 + i, b0 + j] = sums[t]
            t += 1


@numba.njit(inline="always")
def gram_sums(Z, n, P, G, M4, with_m4):
    """G[a, b] = sum_{i<n} Z[a, i] Z[b, i] (a <= b) and, if with_m4, M4[a] = sum_i Z[a, i]^4, each in the
    engines' fixed 8-lane order (gram_device.lane_sum, the GPU's scalar code), as 8-wide vector code (kernels.simd)
    with one accumulator per sum (each sum the same bits as alone).  The rows are taken in groups of four (the last
    padded with its last row): the pairs within two groups in one pass (``simd.tri8_lanes``; with ``with_m4`` the
    diagonal and the fourth moments from shared squares, ``simd.square_fourth4_lanes``, and the pairs off the
    diagonal, ``simd.off8_lanes``), and the 16 pairs between two groups in one pass (``simd.cross44_lanes``), so
    that every pass loads each of its eight rows once per block of eight neurons: P = 8 takes 16 row loads per
    block (24 with the fourth moments) where four pairs per pass took 72."""
    NG = (P + 3) // 4
    if with_m4:
        for g in range(NG):
            sq = square_fourth4_lanes(*_group_rows(Z, g, P), n)
            for k in range(min(4, P - 4 * g)):
                G[4 * g + k, 4 * g + k] = sq[k]
                M4[4 * g + k] = sq[4 + k]
    for g in range(0, NG, 2):
        h = g + 1 if g + 1 < NG else g  # an odd last group is paired with itself (its second copy dropped)
        rows = _group_rows(Z, g, P) + _group_rows(Z, h, P)
        if with_m4:  # the diagonal is in place: the 6 pairs off it, per group
            sums = off8_lanes(*rows, n)
            _store_pairs(G, 4 * g, 4 * g, P, sums, 0, False, True)
            if h != g:
                _store_pairs(G, 4 * h, 4 * h, P, sums, 6, False, True)
        else:  # the 10 pairs with the diagonal, per group
            sums = tri8_lanes(*rows, n)
            _store_pairs(G, 4 * g, 4 * g, P, sums, 0, True, True)
            if h != g:
                _store_pairs(G, 4 * h, 4 * h, P, sums, 10, True, True)
    for g in range(NG):
        for h in range(g + 1, NG):
            sums = cross44_lanes(*(_group_rows(Z, g, P) + _group_rows(Z, h, P)), n)
            _store_pairs(G, 4 * g, 4 * h, P, sums, 0, False, False)


@numba.njit(inline="always")
def _fill_nan(pre, post, m4, l, with_m4):
    """NaN statistics from layer index l on (a network whose covariance broke down there)."""
    for l2 in range(l, pre.shape[0]):
        for a in range(pre.shape[1]):
            if with_m4:
                m4[l2, a] = np.nan
            for b in range(pre.shape[1]):
                pre[l2, a, b] = np.nan
                post[l2, a, b] = np.nan


def activation_device_fn(act: Activation):
    """``phi(code, x, p0, p1)`` for the kernels: the shared device switch, or the custom scalar wrapped."""
    if act.is_builtin:
        return device_activation
    scalar = act.scalar
    if scalar is None:
        raise InputTypeError(f"activation {act.label}: a custom activation needs a numba scalar (act.scalar)")

    @numba.njit(inline="always")
    def phi(code, x, p0, p1):
        return scalar(x)

    return phi


# The activation-independent heavy parts, compiled once (and cached, named with the fingerprint of the device code
# they inline) as ordinary functions that every kernel of the factory calls: a custom activation's kernel then
# compiles in a fraction of the time (same operations).
_sample_rows = fingerprinted(sample_rows.py_func, error_model="numpy")
_gram_sums = fingerprinted(gram_sums.py_func, error_model="numpy")
_factor_psd = fingerprinted(factor_psd.py_func, error_model="numpy")
_norm_coefficients = fingerprinted(norm_coefficients.py_func, error_model="numpy")


def _make_post_column(ns: types.ModuleType, tag: str) -> None:
    """Store in ``ns._post_column`` the inline step that turns column ``a`` of the pre-activations into the layer's
    output, with the activation switch ``ns._phi`` (named ``gram_post_column_<tag>``)."""

    def post_column(Z, Sk, a, n, code, p0, p1, norm, cz, resid, with_skip):
        """Column a of Z becomes h^(l) = cz POST(phi(PRE(z))) + resid * skip (inlined into the network loop)."""
        if norm == 1 or norm == 2:  # PRE: (z - shift) * scale, a double as the GPU's phi argument
            shift, scale = _norm_coefficients(Z, a, n, norm == 2)
            for i in range(n):
                Z[a, i] = (Z[a, i] - shift) * scale
        # phi; for the piecewise-linear built-ins (codes 0-3) the activation switch is resolved outside the loop (a
        # literal code: same values), so that the loop vectorises.  (A custom activation's _phi ignores the code.)
        if code == 1:
            for i in range(n):
                Z[a, i] = ns._phi(1, Z[a, i], p0, p1)
        elif code == 0:
            for i in range(n):
                Z[a, i] = ns._phi(0, Z[a, i], p0, p1)
        elif code == 2:
            for i in range(n):
                Z[a, i] = ns._phi(2, Z[a, i], p0, p1)
        elif code == 3:
            for i in range(n):
                Z[a, i] = ns._phi(3, Z[a, i], p0, p1)
        else:
            for i in range(n):
                Z[a, i] = ns._phi(code, Z[a, i], p0, p1)
        if norm == 3 or norm == 4:
            shift, scale = _norm_coefficients(Z, a, n, norm == 4)
            for i in range(n):
                Z[a, i] = (Z[a, i] - shift) * scale
        if with_skip:
            for i in range(n):
                Z[a, i] = cz * Z[a, i] + resid * Sk[a, i]

    post_column.__qualname__ = post_column.__name__ = f"gram_post_column_{tag}"
    ns._post_column = numba.njit(inline="always")(post_column)


def _make_network(ns: types.ModuleType, tag: str, cache: bool) -> None:
    """Store in ``ns._gram_network`` the per-network Gram chain (named ``gram_network_<tag>``; disk-cached with
    ``cache``), which calls ``ns._covariance`` and ``ns._post_column``."""

    def network(X0, widths, code, p0, p1, cov, resid, norm, with_m4, seed, net, tol, pre, post, m4):
        """One network (id ``net``) from the start ``H = X0``: fills pre/post (L, P, P) and, with ``with_m4``, m4
        (L, P); returns its status code."""
        prefer_wide_vectors()  # the activation's loops at the CPU's widest vectors (same numbers)
        L = widths.shape[0]
        P = X0.shape[0]
        nmax = 1
        for l in range(L):
            if widths[l] > nmax:
                nmax = widths[l]
        q = (P + 1) // 2
        cz = math.sqrt(1.0 - resid * resid)
        with_skip = resid > 0.0
        Z = aligned_rows(P, nmax)
        Sk = aligned_rows(P, nmax if with_skip else 1)
        H = np.empty((P, P))
        K = np.empty((P, P))
        A = np.empty((P, P))
        B = np.empty((P, P))
        Wk = np.empty((P, P))
        perm = np.empty(P, dtype=np.int64)
        G = np.empty((P, P))
        M4 = np.empty(P)
        E = aligned_rows(1, nmax)[0]
        O = aligned_rows(1, nmax)[0]
        for a in range(P):
            for b in range(P):
                H[a, b] = X0[a, b]
        for l in range(L):
            n = widths[l]
            ns._covariance(K, H, l, P, cov)
            rz = _factor_psd(K, A, Wk, perm, P, tol)
            rs = 0
            if with_skip and rz >= 0:
                rs = _factor_psd(H, B, Wk, perm, P, tol)
            if rz < 0 or rs < 0:
                _fill_nan(pre, post, m4, l, with_m4)
                return STATUS_NONFINITE if (rz == -2 or rs == -2) else STATUS_NOT_PSD
            _sample_rows(seed, net, l + 1, n, A, rz, P, 0, Z, E, O)
            if with_skip:
                _sample_rows(seed, net, l + 1, n, B, rs, P, q, Sk, E, O)
            _gram_sums(Z, n, P, G, M4, with_m4)
            for a in range(P):
                for b in range(a, P):
                    v = G[a, b] / n
                    pre[l, a, b] = v
                    pre[l, b, a] = v
                if with_m4:
                    m4[l, a] = M4[a] / n
            for a in range(P):
                ns._post_column(Z, Sk, a, n, code, p0, p1, norm, cz, resid, with_skip)
            _gram_sums(Z, n, P, G, M4, False)
            for a in range(P):
                for b in range(a, P):
                    v = G[a, b] / n
                    post[l, a, b] = v
                    post[l, b, a] = v
                    H[a, b] = v
                    H[b, a] = v
        return STATUS_OK

    network.__qualname__ = network.__name__ = f"gram_network_{tag}"
    ns._gram_network = numba.njit(cache=cache, error_model="numpy")(network)


def make_chain_kernel(ns: types.ModuleType, tag: str, cache: bool):
    """The Gram chain's kernel (parallel over networks) for the activation switch ``ns._phi(code, x, p0, p1)`` and
    the covariance step ``ns._covariance(K, H, l, P, cov)`` (module docstring).

    The one source of the network loop, for every covariance model, the built-in activations and every custom one.
    The kernel and its per-network function are closures over the namespace ``ns`` (a module): numba resolves
    ``ns._phi``, ``ns._covariance`` and ``ns._gram_network`` as constants when it compiles them, and inlines the two
    steps (``inline='always'``).  Why a module rather than the functions themselves: numba keys its on-disk cache
    (``cache=True``) on the pickled closure cells, and a compiled function pickles with a random per-process id
    (never a cache hit, and one more cache entry per process), whereas a module pickles by its name.  The built-ins
    use the entry's module as ``ns`` (this one for the plain chain, :mod:`sigprop.kernels.rainbow_cpu` for the
    rainbow chain; cached); each custom activation a fresh namespace (:func:`chain_namespace`, not cached).

    ``tag`` names the compiled functions (``gram_network_<tag>``, ``gram_kernel_<tag>``), distinct per covariance
    step and ending in the device code's fingerprint for the cached built-ins: numba names machine code by qualified
    name and a per-process counter, and code loaded from the disk cache keeps the counter of the process that wrote
    it, so a kernel that shares a cached kernel's name can be linked in its place.  The factory stores the
    per-network function in ``ns._gram_network``, where the kernel reads it.

    The kernel's arguments: ``X0`` (P, P) the start of ``H``; ``widths`` (L,) int64; the activation's ``code``,
    ``p0``, ``p1``; ``cov`` (L, k) the covariance step's rows; ``resid`` the residual weight (0: none); ``norm`` a
    ``gram_device.NORM_CODES`` value; ``with_m4`` whether to fill ``m4``; ``seed``; ``first`` the first network's
    id; ``tol`` the PSD tolerance; outputs ``pre``, ``post`` (S, L, P, P), ``m4`` (S, L, P; any (S, ...) array
    without ``with_m4``), ``status`` (S,) int64.
    """
    _make_post_column(ns, tag)
    _make_network(ns, tag, cache)

    def kernel(X0, widths, code, p0, p1, cov, resid, norm, with_m4, seed, first, tol, pre, post, m4, status):
        """All networks, in parallel over networks (each network's numbers depend only on its id)."""
        for s in numba.prange(pre.shape[0]):
            status[s] = ns._gram_network(X0, widths, code, p0, p1, cov, resid, norm, with_m4, seed, first + s, tol,
                                         pre[s], post[s], m4[s])

    kernel.__qualname__ = kernel.__name__ = f"gram_kernel_{tag}"
    return numba.njit(parallel=True, cache=cache)(kernel)


def chain_namespace(name: str, phi, covariance) -> types.ModuleType:
    """A fresh namespace for :func:`make_chain_kernel`: the activation switch ``phi`` and the covariance step."""
    ns = types.ModuleType(name)
    ns._phi = phi
    ns._covariance = covariance
    return ns


# The built-in activations with the plain covariance step: this module is the namespace of the factory.
_phi = device_activation
_covariance = covariance_into
_gram_kernel_builtin = make_chain_kernel(sys.modules[__name__], f"builtin_{SWITCH_FINGERPRINT}", cache=True)


def _cpu_kernel(act: Activation):
    """The compiled plain-chain kernel for ``act``: one cached kernel for all built-ins, one per custom scalar."""
    return _gram_kernel_builtin if act.is_builtin else kernel_for_scalar("gram_cpu", act, _build_custom_kernel)


def _build_custom_kernel(act: Activation):
    """The factory's plain-chain kernel with ``act``'s scalar as the activation, in a namespace of its own."""
    ns = chain_namespace(f"{__name__}.custom", activation_device_fn(act), covariance_into)
    return make_chain_kernel(ns, "custom", cache=False)


def gram_outputs_from_status(status: np.ndarray, first_network: int) -> None:
    """Raise on a non-PSD covariance (a numerical breakdown).  Non-finite Gram matrices (status
    ``STATUS_NONFINITE``: the kernel stopped that network and filled NaN) are handled by the shared convention
    of :func:`sigprop.kernels.float_range.check_statistics`."""
    bad = np.flatnonzero(status == STATUS_NOT_PSD)
    if bad.size:
        raise FloatingPointError(
            f"gram method: the layer covariance of network(s) {(bad[:5] + first_network).tolist()} is not "
            f"positive semi-definite beyond the relative tolerance {PSD_RTOL:g} (a numerical breakdown)")


def run_chain_cpu(kernel, X0: np.ndarray, widths, act: Activation, cov: np.ndarray, n_networks: int, seed: int,
                  first_network: int = 0, residual: float = 0.0, norm: str | None = None,
                  with_m4: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a chain kernel of :func:`make_chain_kernel` on ``n_networks`` networks (ids ``first_network + s``).

    Returns ``(pre, post, m4)``: the pre- and post-activation Grams (S, L, P, P) and, with ``with_m4``, the fourth
    moments (S, L, P) (else an unused (S, 1, 1) array).  Raises ``FloatingPointError`` on a covariance that is not
    PSD (:func:`gram_outputs_from_status`).  Arguments are assumed validated.
    """
    X0 = np.ascontiguousarray(X0, dtype=np.float64)
    P = X0.shape[0]
    w = np.ascontiguousarray(widths, dtype=np.int64)
    L = w.shape[0]
    S = int(n_networks)
    pre = np.empty((S, L, P, P))
    post = np.empty((S, L, P, P))
    m4 = np.empty((S, L, P) if with_m4 else (S, 1, 1))
    status = np.empty(S, dtype=np.int64)
    p0, p1 = act.device_params
    kernel(X0, w, np.int64(act.code), float(p0), float(p1), np.ascontiguousarray(cov, dtype=np.float64),
           float(residual), np.int64(NORM_CODES[norm]), bool(with_m4), np.uint64(seed), np.int64(first_network),
           PSD_RTOL, pre, post, m4, status)
    gram_outputs_from_status(status, first_network)
    return pre, post, m4


def input_gram(X: np.ndarray) -> np.ndarray:
    """The plain chain's start: ``X X^T / n_0`` of the inputs X (P, n_0), exactly symmetric."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    G0 = X @ X.T / X.shape[1]
    return np.ascontiguousarray(0.5 * (G0 + G0.T))


def plain_covariance_rows(C_W: float, C_b: float, depth: int) -> np.ndarray:
    """The rows ``cov[l] = (C_W, C_b)`` of :func:`gram_device.covariance_into`, one per layer (depth, 2)."""
    cov = np.empty((depth, 2))
    cov[:, 0] = float(C_W)
    cov[:, 1] = float(C_b)
    return cov


def run_gram_cpu(X: np.ndarray, widths, act: Activation, C_W: float, C_b: float, n_networks: int, seed: int,
                 residual: float = 0.0, norm: str | None = None, first_network: int = 0) -> dict[str, np.ndarray]:
    """Gram-method statistics of ``n_networks`` networks (ids ``first_network + s``) on the inputs X (P, n_0).

    Returns ``preact_gram``, ``postact_gram`` (S, L, P, P), ``preact_m2``, ``preact_m4`` (S, L, P): the engine's
    raw numbers (a network whose Gram matrix is non-finite is NaN from the next layer on); the public entry
    :func:`sigprop.kernels.simulate` applies the overflow/underflow convention of all methods
    (:func:`sigprop.kernels.float_range.check_statistics`).  Inputs are assumed validated (see ``simulate``).
    """
    cov = plain_covariance_rows(C_W, C_b, len(widths))
    pre, post, m4 = run_chain_cpu(_cpu_kernel(act), input_gram(X), widths, act, cov, n_networks, seed,
                                  first_network, residual, norm)
    m2 = np.diagonal(pre, axis1=2, axis2=3).copy()  # a writable copy (a view when P = 1)
    return {"preact_gram": pre, "postact_gram": post, "preact_m2": m2, "preact_m4": m4}
