"""Plain NumPy twin of the compiled counter-based generator (:mod:`sigprop.kernels.rng`); slow, for the reference.

:func:`draws_numpy` returns the same (rows, cols) arrays as :func:`sigprop.kernels.rng.draws`, computed with
NumPy array operations only (no numba in the call path; importing it imports rng, hence numba, but calls
nothing compiled): Philox-4x32-10 by :func:`philox4x32_array` (the NumPy block function defined in
:mod:`~sigprop.kernels.rng`, its single definition, re-used here) on the counters
``(network, layer | stream << 24, row, col_pair)`` with key ``(seed mod 2^32, seed >> 32)``, then

    u = (2m + 1) 2^-53 with m = a << 20 | b >> 12          (u1 from words 0, 1; u2 from words 2, 3)
    gaussian:   sqrt(-2 log u1) (cos, sin)(2 pi u2)  for columns (2j, 2j + 1)   (np.log, np.cos, np.sin)
    uniform:    sqrt(3) (2u - 1);   rademacher: +1 where bit 0 of word 0 (column 2j) / word 1 (2j + 1) is set

It is used by :mod:`sigprop.kernels.reference`, which therefore checks the compiled generator as well as
the compiled engines.  Agreement with ``rng.draws`` (tests/test_rng_numpy.py): uniform and Rademacher
draws are bit-identical; Gaussian draws are equal to rounding (NumPy's log, and cos/sin of the rounded angle
``2 pi u2`` instead of rng's fdlibm log and exact quadrant reduction).  Measured on 10^6 normals: max
|difference| 2.9e-15, i.e. at most 3.4 units of 2^-52 max(r, 1) with r = sqrt(-2 log u1) the pair's radius
(up to 12 ulp of max(|x|, 1) where x = r cos is small but r is not); the tests assert the sound bound
|difference| <= 12 * 2^-52 * max(r, 1) (derivation in the test file).

Counters are processed in chunks of :data:`CHUNK_BLOCKS` Philox blocks, so the temporary memory is bounded
(~20 arrays of 128 KiB) whatever the shape.  Slow: ~50 ns per normal (a 512 x 512 Gaussian matrix in
~12 ms), ~20x the compiled ``rng.draws`` (~2.2 ns), measured on a 2-core machine.
"""
from __future__ import annotations

import math

import numpy as np

from .rng import KIND_GAUSSIAN, KIND_RADEMACHER, KIND_UNIFORM, check_coords, kind_code, philox4x32_array

__all__ = ["draws_numpy", "normals_numpy", "philox4x32_array", "CHUNK_BLOCKS"]

CHUNK_BLOCKS = 1 << 14  # Philox blocks per chunk: ~20 temporaries of 128 KiB stay in cache (measured fastest)
_MASK32 = 0xFFFFFFFF
_SH20 = np.uint64(20)
_SH12 = np.uint64(12)
_ONE = np.uint64(1)
_TWO_POW_M53 = 2.0 ** -53
_TWO_PI = 2.0 * math.pi
_SQRT3 = math.sqrt(3.0)


def _uniform_numerator(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2m + 1 as float64 (exact: m < 2^52), m = a << 20 | b >> 12; the uniform in (0, 1) is this times 2^-53."""
    m = (a << _SH20) | (b >> _SH12)
    return m.astype(np.float64) * 2.0 + 1.0


def _pairs_from_words(kind: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two draws (columns 2j, 2j + 1) of distribution ``kind`` from Philox words w (n, 4) -> two (n,) arrays."""
    w0, w1, w2, w3 = w[:, 0], w[:, 1], w[:, 2], w[:, 3]
    if kind == KIND_RADEMACHER:
        return np.where((w0 & _ONE) != 0, 1.0, -1.0), np.where((w1 & _ONE) != 0, 1.0, -1.0)
    u1 = _uniform_numerator(w0, w1) * _TWO_POW_M53
    u2 = _uniform_numerator(w2, w3) * _TWO_POW_M53
    if kind == KIND_UNIFORM:
        return _SQRT3 * (2.0 * u1 - 1.0), _SQRT3 * (2.0 * u2 - 1.0)
    r = np.sqrt(-2.0 * np.log(u1))
    angle = _TWO_PI * u2
    return r * np.cos(angle), r * np.sin(angle)


def draws_numpy(kind: int | str, seed: int, stream: int, network: int, layer: int, rows: int,
                cols: int) -> np.ndarray:
    """(rows, cols) float64 array of unit-variance draws equal to ``rng.draws(kind, ...)`` (module docstring).

    ``kind`` is 'gaussian', 'uniform', 'rademacher' or 0, 1, 2; coordinates as in :mod:`sigprop.kernels.rng`
    (``0 <= seed < 2^64``, ``stream < 256``, ``network < 2^32``, ``layer < 2^24``), with the same
    ValueError/TypeError for bad arguments.  Entry [i, j] comes from the Philox block at counter
    ``(network, layer | stream << 24, i, j // 2)``, element ``j % 2`` of its pair."""
    kind = kind_code(kind)
    check_coords(seed, stream, network, layer, rows, cols)
    seed, rows, cols = int(seed), int(rows), int(cols)
    npairs = (cols + 1) // 2
    total = rows * npairs
    buf = np.empty((rows, 2 * npairs), dtype=np.float64)  # one spare column when cols is odd
    flat = buf.reshape(-1)
    key = np.array([seed & _MASK32, seed >> 32], dtype=np.uint64)
    c1 = (int(layer) & 0xFFFFFF) | (int(stream) << 24)
    for start in range(0, total, CHUNK_BLOCKS):
        stop = min(start + CHUNK_BLOCKS, total)
        idx = np.arange(start, stop, dtype=np.uint64)  # flat block index = row * npairs + col_pair
        ctr = np.empty((stop - start, 4), dtype=np.uint64)
        ctr[:, 0] = int(network)
        ctr[:, 1] = c1
        ctr[:, 2] = idx // np.uint64(npairs)
        ctr[:, 3] = idx % np.uint64(npairs)
        even, odd = _pairs_from_words(kind, philox4x32_array(ctr, key))
        flat[2 * start:2 * stop:2] = even
        flat[2 * start + 1:2 * stop:2] = odd
    return buf if cols == 2 * npairs else np.ascontiguousarray(buf[:, :cols])


def normals_numpy(seed: int, stream: int, network: int, layer: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64 array of N(0, 1) numbers equal (to rounding) to ``rng.normals(...)``."""
    return draws_numpy(KIND_GAUSSIAN, seed, stream, network, layer, rows, cols)
