"""Row and column operations of one explicit-weight layer, shared by the CPU and CUDA kernels.

Every function is ``@numba.njit(inline='always')``, allocates nothing and loops in a fixed order, so the
CPU (numba parallel) and CUDA kernels that call them produce the same sums up to libm/FMA rounding,
independently of the number of threads.  Arrays are batched over networks: ``A[s, i, a]`` is neuron ``i``
of network ``s`` (within the batch) on input ``a``.  Weights are never stored: entry ``(i, j)`` of the
unit-variance matrix of layer ``layer`` is ``draw_pair(kind, seed, stream, network, layer, i, j // 2)[j % 2]``.
"""
from __future__ import annotations

import math

import numba

from .rng import draw_pair, draw_pairs_into, normal_pair

__all__ = ["matvec_row", "matvec_t_colpair", "matvec_rows_buffered", "matvec_t_colpairs_buffered", "add_bias_row",
           "column_dot", "column_moments", "normalize_column", "NORM_CODES"]

# norm argument -> (where: 0 none, 1 PRE, 2 POST; centre: 0 RMSNorm, 1 LayerNorm)
NORM_CODES: dict[str | None, tuple[int, int]] = {
    None: (0, 0), "rms_pre": (1, 0), "ln_pre": (1, 1), "rms_post": (2, 0), "ln_post": (2, 1),
}


@numba.njit(inline="always")
def matvec_row(kind, seed, stream, network, layer, H, s, n_in, i, Z, scale):
    """Z[s, i, :] = scale * sum_{j < n_in} w_ij H[s, j, :]  (w: unit-variance draws, columns in pairs)."""
    P = Z.shape[2]
    for a in range(P):
        Z[s, i, a] = 0.0
    npairs = n_in // 2
    for jp in range(npairs):
        w0, w1 = draw_pair(kind, seed, stream, network, layer, i, jp)
        j = 2 * jp
        for a in range(P):
            Z[s, i, a] += w0 * H[s, j, a] + w1 * H[s, j + 1, a]
    if n_in % 2 == 1:
        w0, w1 = draw_pair(kind, seed, stream, network, layer, i, npairs)
        for a in range(P):
            Z[s, i, a] += w0 * H[s, n_in - 1, a]
    for a in range(P):
        Z[s, i, a] *= scale


@numba.njit(inline="always")
def matvec_t_colpair(kind, seed, stream, network, layer, D, s, n_out, jp, n_in, OUT, scale):
    """OUT[s, j, :] = scale * sum_{i < n_out} w_ij D[s, i, :] for j in {2 jp, 2 jp + 1} (j < n_in)."""
    P = D.shape[2]
    j0 = 2 * jp
    two = j0 + 1 < n_in
    for a in range(P):
        OUT[s, j0, a] = 0.0
        if two:
            OUT[s, j0 + 1, a] = 0.0
    for i in range(n_out):
        w0, w1 = draw_pair(kind, seed, stream, network, layer, i, jp)
        for a in range(P):
            OUT[s, j0, a] += w0 * D[s, i, a]
        if two:
            for a in range(P):
                OUT[s, j0 + 1, a] += w1 * D[s, i, a]
    for a in range(P):
        OUT[s, j0, a] *= scale
        if two:
            OUT[s, j0 + 1, a] *= scale


@numba.njit(inline="always")
def matvec_rows_buffered(kind, seed, stream, network, layer, H, s, n_in, i0, nrows, Z, scale, E, O, acc):
    """:func:`matvec_row` for the rows i0 .. i0 + nrows - 1 (same numbers, same sums in the same order).

    Column pair by column pair: the pair's weights of all nrows rows are drawn in one vectorisable pass
    (:func:`rng.draw_pairs_into` down the rows), then each input's nrows sums advance in one long loop over the rows
    (acc: scratch of shape >= (P, nrows)), which vectorises.  Four column pairs per pass (their weights in the rows
    of E, O: scratch of shape >= (4, nrows)): ``acc = (((acc + t_0) + t_1) + t_2) + t_3`` with
    ``t_q = E_q h_2q + O_q h_2q+1`` is :func:`matvec_row`'s four successive ``acc += t_q``, but loads and stores
    each accumulator once per four column pairs."""
    P = Z.shape[2]
    for a in range(P):
        for r in range(nrows):
            acc[a, r] = 0.0
    npairs = n_in // 2
    jp = 0
    while jp + 4 <= npairs:
        for q in range(4):
            draw_pairs_into(kind, seed, stream, network, layer, i0, 1, jp + q, 0, nrows, E[q], O[q])
        j = 2 * jp
        e0, e1, e2, e3 = E[0], E[1], E[2], E[3]
        o0, o1, o2, o3 = O[0], O[1], O[2], O[3]
        for a in range(P):
            h0, h1, h2, h3 = H[s, j, a], H[s, j + 1, a], H[s, j + 2, a], H[s, j + 3, a]
            h4, h5, h6, h7 = H[s, j + 4, a], H[s, j + 5, a], H[s, j + 6, a], H[s, j + 7, a]
            for r in range(nrows):
                acc[a, r] = ((((acc[a, r] + (e0[r] * h0 + o0[r] * h1)) + (e1[r] * h2 + o1[r] * h3))
                              + (e2[r] * h4 + o2[r] * h5)) + (e3[r] * h6 + o3[r] * h7))
        jp += 4
    while jp < npairs:
        draw_pairs_into(kind, seed, stream, network, layer, i0, 1, jp, 0, nrows, E[0], O[0])
        j = 2 * jp
        e0, o0 = E[0], O[0]
        for a in range(P):
            h0, h1 = H[s, j, a], H[s, j + 1, a]
            for r in range(nrows):
                acc[a, r] += e0[r] * h0 + o0[r] * h1
        jp += 1
    if n_in % 2 == 1:
        draw_pairs_into(kind, seed, stream, network, layer, i0, 1, npairs, 0, nrows, E[0], O[0])
        e0 = E[0]
        for a in range(P):
            h0 = H[s, n_in - 1, a]
            for r in range(nrows):
                acc[a, r] += e0[r] * h0
    for r in range(nrows):
        for a in range(P):
            Z[s, i0 + r, a] = acc[a, r] * scale


@numba.njit(inline="always")
def matvec_t_colpairs_buffered(kind, seed, stream, network, layer, D, s, n_out, jp0, ncp, n_in, OUT, scale, E, O,
                               acc0, acc1):
    """:func:`matvec_t_colpair` for the column pairs jp0 .. jp0 + ncp - 1 (same numbers and sums).

    Row by row: the row's weights of the ncp column pairs are drawn in one vectorisable pass into E, O
    (length >= ncp), then each input's sums for the even (acc0) and odd (acc1) columns (scratch of shape
    >= (P, ncp)) advance in loops over the column pairs, which vectorise."""
    P = D.shape[2]
    for a in range(P):
        for c in range(ncp):
            acc0[a, c] = 0.0
            acc1[a, c] = 0.0
    for i in range(n_out):
        draw_pairs_into(kind, seed, stream, network, layer, i, 0, jp0, 1, ncp, E, O)
        for a in range(P):
            d = D[s, i, a]
            for c in range(ncp):
                acc0[a, c] += E[c] * d
                acc1[a, c] += O[c] * d
    for c in range(ncp):
        j0 = 2 * (jp0 + c)
        for a in range(P):
            OUT[s, j0, a] = acc0[a, c] * scale
        if j0 + 1 < n_in:
            for a in range(P):
                OUT[s, j0 + 1, a] = acc1[a, c] * scale


@numba.njit(inline="always")
def add_bias_row(seed, stream, network, layer, i, Z, s, scale):
    """Z[s, i, :] += scale * b_i with b_i the N(0, 1) number at (row 0, column i) of ``stream``."""
    b0, b1 = normal_pair(seed, stream, network, layer, 0, i >> 1)
    b = b0 if (i & 1) == 0 else b1
    for a in range(Z.shape[2]):
        Z[s, i, a] += scale * b


@numba.njit(inline="always")
def column_dot(A, s, n, a, b):
    """sum_{i < n} A[s, i, a] A[s, i, b], summed in increasing i."""
    acc = 0.0
    for i in range(n):
        acc += A[s, i, a] * A[s, i, b]
    return acc


@numba.njit(inline="always")
def column_moments(A, s, n, a):
    """(mean_i A[s, i, a]^2, mean_i A[s, i, a]^4) over i < n."""
    m2 = 0.0
    m4 = 0.0
    for i in range(n):
        x2 = A[s, i, a] * A[s, i, a]
        m2 += x2
        m4 += x2 * x2
    return m2 / n, m4 / n


@numba.njit(inline="always")
def normalize_column(A, s, n, a, centre, OUT):
    """OUT[s, :n, a] = (A - mu) / sqrt(mean (A - mu)^2) over i < n; mu = mean_i A (LayerNorm) or 0 (RMSNorm)."""
    mu = 0.0
    if centre:
        for i in range(n):
            mu += A[s, i, a]
        mu /= n
    v = 0.0
    for i in range(n):
        d = A[s, i, a] - mu
        v += d * d
    inv = 1.0 / math.sqrt(v / n)
    for i in range(n):
        OUT[s, i, a] = (A[s, i, a] - mu) * inv
