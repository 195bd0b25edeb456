"""factor_psd gives the same bits as its plain pivoted-Cholesky form: return code and every bit of A (input
order, columns >= rank zero; on the error returns too, from the same prefilled scratch), on PSD matrices of every
rank, exactly and slightly asymmetric ones, ties, zero rows, non-PSD, non-finite, subnormal and extreme scales.

``factor_psd_reference`` is the plain form (the work matrix indexed through ``perm``, the full Schur update), kept
here as the definition of the numbers: the engines' hashes (tests/test_engine_fingerprints.py) pin them too, but
only on the covariances their configurations meet."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from sigprop.kernels.gram_device import DBL_MIN, PSD_RTOL, factor_psd

PS = tuple(range(1, 13))


def factor_psd_reference(K, A, Wk, perm, P, tol):
    """The plain pivoted Cholesky that factor_psd must reproduce bit for bit (same contract)."""
    scale = 0.0
    big = 0.0
    for a in range(P):
        perm[a] = a
        for b in range(P):
            v = K[a, b]
            if not math.isfinite(v):
                return -2
            Wk[a, b] = v
            A[a, b] = 0.0
            if abs(v) > big:
                big = abs(v)
        if K[a, a] > scale:
            scale = K[a, a]
    if big < DBL_MIN:
        return 0
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


_reference = numba.njit(error_model="numpy")(factor_psd_reference)
_new = numba.njit(error_model="numpy")(factor_psd.py_func)  # as the CPU chain compiles it (gram_cpu._factor_psd)


def _run(f, K, fill):
    """Return code and A of f on K, every scratch array prefilled from ``fill`` (a float, or NaN if None)."""
    P = K.shape[0]
    A = np.full((P, P), np.nan if fill is None else fill)
    Wk = A.copy()
    perm = np.full(P, 7 * P, dtype=np.int64)
    return f(K, A, Wk, perm, P, PSD_RTOL), A


def _assert_same_bits(K, fills=(None,), python=False):
    r0, A0 = _run(_reference, K, fills[0])
    for fill in fills:
        r_ref, A_ref = _run(_reference, K, fill)
        r_new, A_new = _run(_new, K, fill)
        assert r_new == r_ref, (K, r_new, r_ref)
        np.testing.assert_array_equal(A_new.view(np.uint64), A_ref.view(np.uint64), err_msg=repr(K))
        if python:  # as the CUDA simulator runs it
            with np.errstate(all="ignore"):
                r_py, A_py = _run(factor_psd.py_func, K, fill)
            assert r_py == r_ref
            np.testing.assert_array_equal(A_py.view(np.uint64), A_ref.view(np.uint64), err_msg=repr(K))
    return r0


def _psd(g, P, rank, integer=False):
    """h^T h for a (rank x P) h: rank-deficient for rank < P; integer entries give exact ties and cancellations."""
    h = g.integers(-2, 3, size=(rank, P)).astype(float) if integer else g.normal(size=(rank, P))
    return h.T @ h


def _sym(K):
    return 0.5 * (K + K.T)  # exactly symmetric: a + b == b + a


def _cases(seed):
    """(name, K) covering the contract's branches; each P in 1..12 and rank 0..P."""
    g = np.random.default_rng(seed)
    for P in PS:
        for rank in range(P + 1):
            for integer in (False, True):
                K = _psd(g, P, rank, integer)
                yield "psd", K  # as BLAS rounds it: symmetric or within a few ulps
                yield "psd_sym", _sym(K)
                E = g.normal(size=(P, P)) * np.abs(K).max()
                yield "asym_within_tol", K + 1e-14 * E
                yield "asym_beyond_tol", K + 1e-9 * E
                yield "scaled_tiny", _sym(K) * 1e-300
                yield "scaled_huge", _sym(K) * 1e300
                yield "scaled_subnormal_edge", _sym(K) * 2.0 ** -1000
            d = np.abs(g.normal(size=P)) + 0.1
            C = _sym(_psd(g, P, P))
            C = C / np.sqrt(np.outer(np.diag(C), np.diag(C)))
            C[np.diag_indices(P)] = 1.0
            yield "diag_ties_correlation", C
            yield "diag_ties_rescaled", _sym(C * np.outer(d, d))
            Z = _sym(_psd(g, P, P))
            i = g.integers(P)
            Z[i, :] = 0.0
            Z[:, i] = 0.0
            yield "zero_row", Z
            yield "zero_row_neg_zeros", np.where(Z == 0.0, -0.0, Z)
        S = _sym(g.normal(size=(P, P)))
        yield "not_psd", S
        yield "not_psd_diag_positive", S + np.diag(np.abs(np.diag(S)))
        yield "not_psd_huge", S * 1e307  # overflows to inf/NaN inside the factorisation
        yield "zeros", np.zeros((P, P))
        Nz = np.zeros((P, P))
        Nz[np.diag_indices(P)] = g.integers(0, 3, size=P).astype(float)
        if P >= 2:
            Nz[0, 1] = -0.0  # symmetric in value, not in bits
            yield "signed_zero_asym", Nz.copy()
        yield "all_subnormal", _sym(_psd(g, P, P)) * 1e-320
        edge = np.diag(np.full(P, DBL_MIN))
        if P >= 2:
            edge[0, P - 1] = edge[P - 1, 0] = np.nextafter(DBL_MIN, 0.0)  # subnormal next to the smallest normal
        yield "dbl_min_edge", edge
        sub = np.abs(_sym(_psd(g, P, P))) * 1e-320
        if P >= 2:
            sub[0, 1] = sub[1, 0] = 1e-3  # a normal entry next to subnormal variances
        yield "subnormal_next_to_normal", sub
        for bad in (np.nan, np.inf, -np.inf):
            B = _sym(_psd(g, P, P))
            a, b = g.integers(P, size=2)
            B[a, b] = bad
            yield "nonfinite", B
        U = _sym(_psd(g, P, P))
        if P >= 2:
            U[1, 0] = np.nextafter(U[1, 0], np.inf)  # one ulp: within tol, not bitwise symmetric
        yield "one_ulp_asym", U


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factor_psd_has_the_reference_bits(seed):
    seen: dict[str, set] = {}
    for name, K in _cases(seed):
        K = np.ascontiguousarray(K, dtype=np.float64)
        r = _assert_same_bits(K, fills=(None, 0.0, 3.5) if seed == 0 else (None,), python=seed == 0 and
                              K.shape[0] <= 4)
        seen.setdefault(name, set()).add(r)
    # every outcome of the contract was met (so the comparison covered it)
    assert {-2} == seen["nonfinite"] and {0} == seen["all_subnormal"] and {0} <= seen["zeros"]
    assert 0 not in seen["dbl_min_edge"]
    assert -1 in seen["asym_beyond_tol"] and -1 in seen["not_psd"] and -1 in seen["subnormal_next_to_normal"]
    assert set(range(1, 13)) <= seen["psd_sym"] | seen["psd"] and 0 in seen["psd"]
    assert len(seen["psd_sym"] - {-1, -2}) >= 10 and len(seen["asym_within_tol"] - {-1, -2}) >= 10


@pytest.mark.parametrize("seed", range(4))
def test_factor_psd_has_the_reference_bits_on_low_precision_inputs(seed):
    """Entries with few mantissa bits and ranks near P: exact cancellations, Schur complements on the threshold."""
    g = np.random.default_rng(100 + seed)
    for _ in range(150):
        P = int(g.integers(1, 13))
        h = g.integers(-1, 2, size=(int(g.integers(0, P + 1)), P)).astype(float) * 2.0 ** int(g.integers(-40, 40))
        K = h.T @ h
        if g.random() < 0.3:
            K = K + np.diag(g.integers(-1, 2, size=P) * PSD_RTOL * np.abs(K).max() * g.random())
        if g.random() < 0.3:
            a, b = g.integers(P, size=2)
            K[a, b] += g.normal() * 1e-12 * max(np.abs(K).max(), 1.0)
        _assert_same_bits(np.ascontiguousarray(K))
