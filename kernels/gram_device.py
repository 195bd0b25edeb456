"""Device code of the ``gram`` method, shared verbatim by the CPU (njit) and CUDA kernels.

Only ``@numba.njit(inline='always')`` functions on scalars and preallocated arrays (no allocation, no
exceptions), so that the same source compiles for both targets and both give the same numbers up to
rounding (every reduction below is a sequential sum over the neuron index ``i = 0, 1, ..., n-1``).

Layout: one network's layer is held column-major, ``Z[a, i]`` = value of neuron ``i`` on input ``a``.

Exact factorisation of the covariance: :func:`factor_psd` is a diagonally pivoted Cholesky
decomposition ``K = A A^T`` that handles singular (rank-deficient) ``K`` exactly, without jitter:
pivots ``<= PSD_RTOL * max_a K_aa`` end the factorisation (rank = number of pivots taken); the
remaining Schur complement must then be zero within that same tolerance (entrywise), else ``K`` is
reported as not positive semi-definite.  Dropping it changes ``A A^T`` by at most
``PSD_RTOL * max_a K_aa`` in any entry.
"""
from __future__ import annotations

import math

import numba

from .rng import STREAM_GRAM, draw_pairs_into, normal_pair

# Relative tolerance of the PSD factorisation (see the module docstring); ~4500 float64 epsilons.
PSD_RTOL = 1e-12

# Normalisation codes (docs/conventions.md): PRE acts on z before phi, POST on phi(.) after it.
NORM_CODES: dict = {None: 0, "rms_pre": 1, "ln_pre": 2, "rms_post": 3, "ln_post": 4}

# Per-network status codes written by the kernels.
STATUS_OK = 0
STATUS_NOT_PSD = 1
STATUS_NONFINITE = 2


@numba.njit(inline="always")
def factor_psd(K, A, Wk, perm, P, tol):
    """Pivoted Cholesky ``K = A A^T`` (A: P x P, columns ``>= rank`` zero, rows in input order).

    Returns the rank (>= 0), ``-1`` if ``K`` is not symmetric positive semi-definite within
    ``tol * max diag``, ``-2`` if ``K`` has a non-finite entry.  ``Wk`` (P x P) and ``perm`` (P ints)
    are scratch.
    """
    scale = 0.0
    for a in range(P):
        perm[a] = a
        for b in range(P):
            v = K[a, b]
            if not math.isfinite(v):
                return -2
            Wk[a, b] = v
            A[a, b] = 0.0
        if K[a, a] > scale:
            scale = K[a, a]
    thr = tol * scale
    for a in range(P):
        for b in range(a + 1, P):
            if abs(K[a, b] - K[b, a]) > thr:
                return -1
    rank = 0
    for k in range(P):
        best = k
        bv = Wk[perm[k], perm[k]]
        for j in range(k + 1, P):
            v = Wk[perm[j], perm[j]]
            if v > bv:
                bv = v
                best = j
        if bv <= thr:
            break
        t = perm[k]
        perm[k] = perm[best]
        perm[best] = t
        pk = perm[k]
        d = math.sqrt(bv)
        A[pk, k] = d
        for j in range(k + 1, P):
            pj = perm[j]
            A[pj, k] = Wk[pj, pk] / d
        for j in range(k + 1, P):
            pj = perm[j]
            ajk = A[pj, k]
            for m in range(k + 1, P):
                pm = perm[m]
                Wk[pj, pm] -= ajk * A[pm, k]
        rank += 1
    for j in range(rank, P):
        pj = perm[j]
        for m in range(rank, P):
            v = Wk[pj, perm[m]]
            if j == m:
                if v < -thr:
                    return -1
            elif abs(v) > thr:
                return -1
    return rank


@numba.njit(inline="always")
def sample_row(seed, network, layer, row, A, rank, P, pair_offset, Z, col):
    """Z[:, col] = A xi with xi_k (k < rank) the Philox normals (stream 4) at column pairs pair_offset + k//2."""
    for a in range(P):
        Z[a, col] = 0.0
    npairs = (rank + 1) // 2
    for kp in range(npairs):
        g0, g1 = normal_pair(seed, STREAM_GRAM, network, layer, row, pair_offset + kp)
        k = 2 * kp
        for a in range(P):
            Z[a, col] += A[a, k] * g0
        if k + 1 < rank:
            for a in range(P):
                Z[a, col] += A[a, k + 1] * g1


@numba.njit(inline="always")
def sample_rows(seed, network, layer, n, A, rank, P, pair_offset, Z, E, O):
    """Z[:, i] = A xi_i for all rows i < n: :func:`sample_row` for every row (same numbers, same sums in the
    same order), but column pair by column pair, so that each pair's normals are drawn for all n rows in one
    vectorisable pass (:func:`rng.draw_pairs_into`, scratch E, O of length >= n) and the products run along
    the contiguous rows Z[a, :] (CPU layout)."""
    for a in range(P):
        for i in range(n):
            Z[a, i] = 0.0
    for kp in range((rank + 1) // 2):
        draw_pairs_into(0, seed, STREAM_GRAM, network, layer, 0, 1, pair_offset + kp, 0, n, E, O)
        k = 2 * kp
        for a in range(P):
            c0 = A[a, k]
            for i in range(n):
                Z[a, i] += c0 * E[i]
            if k + 1 < rank:
                c1 = A[a, k + 1]
                for i in range(n):
                    Z[a, i] += c1 * O[i]


@numba.njit(inline="always")
def dot_mean(Z, a, Y, b, n):
    """(1/n) sum_i Z[a, i] Y[b, i], summed in order i = 0..n-1."""
    s = 0.0
    for i in range(n):
        s += Z[a, i] * Y[b, i]
    return s / n


@numba.njit(inline="always")
def fourth_mean(Z, a, n):
    """(1/n) sum_i Z[a, i]^4."""
    s = 0.0
    for i in range(n):
        v = Z[a, i] * Z[a, i]
        s += v * v
    return s / n


@numba.njit(inline="always")
def inv_sqrt(v):
    """1/sqrt(v), and +inf for v == 0 written out (plain Python, e.g. under the CUDA simulator, would raise)."""
    return 1.0 / math.sqrt(v) if v > 0.0 else (math.inf if v == 0.0 else math.nan)


@numba.njit(inline="always")
def norm_coefficients(Z, a, n, layer_norm):
    """(shift, scale) normalising column a over the n neurons: RMSNorm (shift 0) or LayerNorm (mean, 1/std).
    A zero-variance column gets scale inf, so its normalised values are NaN (0/0), as in the explicit engines."""
    if layer_norm:
        m = 0.0
        for i in range(n):
            m += Z[a, i]
        m = m / n
        v = 0.0
        for i in range(n):
            d = Z[a, i] - m
            v += d * d
        return m, inv_sqrt(v / n)
    s = 0.0
    for i in range(n):
        s += Z[a, i] * Z[a, i]
    return 0.0, inv_sqrt(s / n)


@numba.njit(inline="always")
def covariance_into(K, H, P, c_w, c_b):
    """K = c_b + c_w H (P x P)."""
    for a in range(P):
        for b in range(P):
            K[a, b] = c_b + c_w * H[a, b]


@numba.njit(inline="always")
def pair_of_task(t, P):
    """The t-th entry (a, b), a <= b, of the upper triangle of a P x P matrix, row by row."""
    a = 0
    rem = t
    while rem >= P - a:
        rem -= P - a
        a += 1
    return a, a + rem
