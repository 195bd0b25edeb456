"""Device code of the ``gram`` method, shared verbatim by the CPU (njit) and CUDA kernels.

Only ``@numba.njit(inline='always')`` functions on scalars and preallocated arrays (no allocation, no
exceptions), so that the same source compiles for both targets and both give the same numbers up to
rounding.  Sums over the neuron index ``i`` have one fixed order: the Gram entries and fourth moments
use eight lane sums (:func:`lane_sum`: lane ``r`` sums ``i = r, r + 8, ...`` in increasing ``i``, and the lanes
are combined in a fixed tree; the CPU kernel runs the same operations as 8-wide vectors,
:mod:`sigprop.kernels.simd`), the normalisation coefficients a sequential sum ``i = 0, 1, ..., n-1``.

Layout: one network's layer is held column-major, ``Z[a, i]`` = value of neuron ``i`` on input ``a``.

Exact factorisation of the covariance: :func:`factor_psd` is a diagonally pivoted Cholesky
decomposition ``K = A A^T`` that handles singular (rank-deficient) ``K`` exactly, without jitter:
pivots ``<= PSD_RTOL * max_a K_aa`` end the factorisation (rank = number of pivots taken); the
remaining Schur complement must then be zero within that same tolerance (entrywise), else ``K`` is
reported as not positive semi-definite.  Dropping it changes ``A A^T`` by at most
``PSD_RTOL * max_a K_aa`` in any entry.  A relative tolerance needs a normal scale: a ``K`` whose entries are
all below the smallest normal double (:data:`DBL_MIN`: zero or subnormal, e.g. a variance that underflowed
after many contracting layers) has lost its relative precision, so it is not tested but taken as what it
is at float64's normal range, rank 0 (``A = 0``); a subnormal diagonal next to a normal off-diagonal entry is
still reported as not positive semi-definite.
"""
from __future__ import annotations

import math

import numba

from .rng import STREAM_GRAM, draw_pairs_into, normal_pair
from .simd import axpy2_fresh_lanes, axpy2_lanes, axpy_fresh_lanes, axpy_lanes

# Relative tolerance of the PSD factorisation (see the module docstring); ~4500 float64 epsilons.
PSD_RTOL = 1e-12

# The smallest normal float64 (2^-1022): a covariance with every entry below it is taken as rank 0 (underflow).
DBL_MIN = 2.2250738585072014e-308

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
    ``tol * max diag``, ``-2`` if ``K`` has a non-finite entry.  A ``K`` with every ``|K_ab| < DBL_MIN``
    (all zero or subnormal: underflow) has rank 0.  ``Wk`` (P x P) and ``perm`` (P ints) are scratch.

    The pivot is the first largest remaining diagonal entry (in the order of ``perm``, where pivots are swapped
    in), the work matrix ``Wk`` is held in pivot order (rows and columns swapped with the pivots, as LAPACK's
    ``dpstrf`` does), and ``A``'s column ``k`` is written at step ``k`` in input order (``perm``).  Row ``k`` of
    ``Wk`` holds column ``k`` of the factor (below the pivot) during its update of the Schur complement.  A ``K``
    that is exactly symmetric (bitwise) keeps its Schur complements exactly symmetric (``x * y == y * x``), so
    then only their lower triangle is updated and checked: the same numbers as the full update.
    """
    finite = True
    normal = False
    for a in range(P):
        for b in range(P):
            v = K[a, b]
            finite &= math.isfinite(v)
            normal |= abs(v) >= DBL_MIN
            Wk[a, b] = v
    if not finite:  # A zeroed up to the first non-finite entry, as a pass that stops there leaves it
        for a in range(P):
            for b in range(P):
                if not math.isfinite(K[a, b]):
                    return -2
                A[a, b] = 0.0
    scale = 0.0
    for a in range(P):
        perm[a] = a
        for b in range(P):
            A[a, b] = 0.0
        if K[a, a] > scale:
            scale = K[a, a]
    if not normal:
        return 0
    thr = tol * scale
    sym = True
    asym = False
    for a in range(P):
        for b in range(a + 1, P):
            x = K[a, b]
            y = K[b, a]
            asym |= abs(x - y) > thr
            sym &= (x == y) & (math.copysign(1.0, x) == math.copysign(1.0, y))
    if asym:
        return -1
    rank = 0
    for k in range(P):
        best = k
        bv = Wk[k, k]
        for j in range(k + 1, P):
            v = Wk[j, j]
            if v > bv:
                bv = v
                best = j
        if bv <= thr:
            break
        if best != k:  # swap pivot best into place k (what is kept of rows and columns >= k)
            pk = perm[k]
            perm[k] = perm[best]
            perm[best] = pk
            if sym:
                t = Wk[k, k]
                Wk[k, k] = Wk[best, best]
                Wk[best, best] = t
                for i in range(k + 1, best):
                    t = Wk[i, k]
                    Wk[i, k] = Wk[best, i]
                    Wk[best, i] = t
                for i in range(best + 1, P):
                    t = Wk[i, k]
                    Wk[i, k] = Wk[i, best]
                    Wk[i, best] = t
            else:
                for i in range(k, P):
                    t = Wk[k, i]
                    Wk[k, i] = Wk[best, i]
                    Wk[best, i] = t
                for i in range(k, P):
                    t = Wk[i, k]
                    Wk[i, k] = Wk[i, best]
                    Wk[i, best] = t
        d = math.sqrt(bv)
        A[perm[k], k] = d
        for j in range(k + 1, P):
            v = Wk[j, k] / d
            Wk[k, j] = v
            A[perm[j], k] = v
        for j in range(k + 1, P):
            ajk = Wk[k, j]
            for m in range(k + 1, j + 1 if sym else P):
                Wk[j, m] -= ajk * Wk[k, m]
        rank += 1
    for j in range(rank, P):
        for m in range(rank, j + 1 if sym else P):
            v = Wk[j, m]
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
    same order, the same values), but column pair by column pair, so that each pair's normals are drawn for all
    n rows in one vectorisable pass (:func:`rng.draw_pairs_into`, scratch E, O of length >= n) and the products
    run along the contiguous rows Z[a, :] (CPU layout; C-contiguous rows, 8-wide vector updates of
    :mod:`sigprop.kernels.simd`).  CPU only."""
    for a in range(P):
        # a row whose first column pair has no term (never written below) starts at +0.0
        if rank == 0 or (A[a, 0] == 0.0 and (rank < 2 or A[a, 1] == 0.0)):
            for i in range(n):
                Z[a, i] = 0.0
    for kp in range((rank + 1) // 2):
        draw_pairs_into(0, seed, STREAM_GRAM, network, layer, 0, 1, pair_offset + kp, 0, n, E, O)
        k = 2 * kp
        for a in range(P):
            # the two terms in one pass; a zero coefficient (half of A: the pivoted factor is triangular) is
            # skipped, which is exact: Z starts at +0.0 and never becomes -0.0, so adding c xi = +-0.0 is a no-op;
            # the first pair's terms are added to +0.0 without reading Z (the *_fresh forms)
            c0 = A[a, k]
            c1 = A[a, k + 1] if k + 1 < rank else 0.0
            if c0 != 0.0 and c1 != 0.0:
                if kp == 0:
                    axpy2_fresh_lanes(Z[a], E, c0, O, c1, n)
                else:
                    axpy2_lanes(Z[a], E, c0, O, c1, n)
            elif c0 != 0.0:
                if kp == 0:
                    axpy_fresh_lanes(Z[a], E, c0, n)
                else:
                    axpy_lanes(Z[a], E, c0, n)
            elif c1 != 0.0:
                if kp == 0:
                    axpy_fresh_lanes(Z[a], O, c1, n)
                else:
                    axpy_lanes(Z[a], O, c1, n)


@numba.njit(inline="always")
def lane_term(x, y, fourth):
    """The summand of :func:`lane_sum`: x y, or (x x)(x x) if ``fourth``."""
    if fourth:
        v = x * x
        return v * v
    return x * y


@numba.njit(inline="always")
def lane_sum(Z, a, Y, b, n, fourth):
    """sum_{i<n} p_i with p_i = Z[a, i] Y[b, i] (or (Z[a, i]^2)^2 if ``fourth``) in the engines' fixed order:
    lane sums s_r = sum_{i = r mod 8} p_i (r = 0..7, increasing i, from +0.0, and a final +0.0 for the lanes
    the last block of eight does not reach), then ((s_0 + s_1) + (s_2 + s_3)) + ((s_4 + s_5) + (s_6 + s_7)).
    The CPU kernel computes the same lanes as one 8-wide vector (:mod:`sigprop.kernels.simd`); here they are
    eight scalars (registers on the GPU).  Only scalar helpers inside: the CUDA simulator runs this as Python."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    s5 = 0.0
    s6 = 0.0
    s7 = 0.0
    t = n - (n & 7)
    for i in range(0, t, 8):
        s0 += lane_term(Z[a, i], Y[b, i], fourth)
        s1 += lane_term(Z[a, i + 1], Y[b, i + 1], fourth)
        s2 += lane_term(Z[a, i + 2], Y[b, i + 2], fourth)
        s3 += lane_term(Z[a, i + 3], Y[b, i + 3], fourth)
        s4 += lane_term(Z[a, i + 4], Y[b, i + 4], fourth)
        s5 += lane_term(Z[a, i + 5], Y[b, i + 5], fourth)
        s6 += lane_term(Z[a, i + 6], Y[b, i + 6], fourth)
        s7 += lane_term(Z[a, i + 7], Y[b, i + 7], fourth)
    # the last, partial block (padded with +0.0, which leaves a lane sum unchanged)
    s0 += lane_term(Z[a, t], Y[b, t], fourth) if t < n else 0.0
    s1 += lane_term(Z[a, t + 1], Y[b, t + 1], fourth) if t + 1 < n else 0.0
    s2 += lane_term(Z[a, t + 2], Y[b, t + 2], fourth) if t + 2 < n else 0.0
    s3 += lane_term(Z[a, t + 3], Y[b, t + 3], fourth) if t + 3 < n else 0.0
    s4 += lane_term(Z[a, t + 4], Y[b, t + 4], fourth) if t + 4 < n else 0.0
    s5 += lane_term(Z[a, t + 5], Y[b, t + 5], fourth) if t + 5 < n else 0.0
    s6 += lane_term(Z[a, t + 6], Y[b, t + 6], fourth) if t + 6 < n else 0.0
    s7 += 0.0  # t + 7 < n never holds
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


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
def covariance_into(K, H, l, P, cov):
    """The plain chain's covariance step: K = C_b + C_W H (P x P) for layer index ``l``, ``cov[l] = (C_W, C_b)``.

    The chain's other covariance step, with the same arguments, is
    :func:`sigprop.kernels.rainbow_device.anchored_covariance_into`; the chain (:mod:`sigprop.kernels.gram_cpu`,
    :mod:`sigprop.kernels.gram_cuda`) calls the one its kernel was built with, on ``H``, the previous layer's
    post-activation Gram (the input Gram at ``l = 0``)."""
    c_w = cov[l, 0]
    c_b = cov[l, 1]
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
