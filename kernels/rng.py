"""Counter-based random numbers: Philox-4x32-10, as scalar code shared by CPU (njit) and CUDA kernels.

Every random number of a simulation is a pure function of its coordinates, so a kernel can regenerate
any weight instead of storing it, and results do not depend on threads, batching or backend:

    key     = (k0, k1)          = (seed mod 2^32, seed >> 32)          (0 <= seed < 2^64)
    counter = (c0, c1, c2, c3)  = (network, layer | stream << 24, row, col_pair)

with ``0 <= network, row, col_pair < 2^32``, ``0 <= layer < 2^24`` and ``0 <= stream < 256``.  Streams:
``STREAM_WEIGHTS = 0``, ``STREAM_BIAS = 1``, ``STREAM_SKIP = 2``, ``STREAM_READOUT = 3``, ``STREAM_GRAM = 4``.
One Philox block (four 32-bit words) yields two values, for the columns ``2*col_pair`` and ``2*col_pair + 1``.

Uniforms: two words ``(a, b)`` give the 52-bit integer ``m = a << 20 | b >> 12`` and ``u = (2m + 1) / 2^53``,
an odd multiple of ``2^-53`` in the open interval (0, 1) (never 0 or 1; the set is symmetric under u -> 1-u).
Normals: Box-Muller on the two uniforms ``(u1, u2)`` of a block,
``(sqrt(-2 log u1) cos(2 pi u2), sqrt(-2 log u1) sin(2 pi u2))`` for the columns ``(2j, 2j+1)``; the cosine and
sine of the angle ``2 pi u2`` come from :func:`sincos_turn` (exact quadrant reduction of the dyadic ``u2`` and
Taylor polynomials on [-pi/4, pi/4], error ~1e-16), and ``log u1`` from :func:`log_dyadic53` (fdlibm's log
after an exact branch-free reduction, error < 1 ulp): cheaper than libm, vectorisable on the CPU, and the
same code (hence the same numbers) on CPU and GPU.

Public scalar API (``@numba.njit(inline='always')``, only scalars, callable from njit and cuda.jit code):
    philox4x32(c0, c1, c2, c3, k0, k1) -> 4 words (uint64 values < 2^32)
    normal_pair(seed, stream, network, layer, row, col_pair) -> (float64, float64)
    normal_at(seed, stream, network, layer, row, col) -> float64
    uniform_pair / uniform_at:      unit variance, uniform on [-sqrt 3, sqrt 3]
    rademacher_pair / rademacher_at: +-1 with probability 1/2 each (bit 0 of words 0 and 1)
    draw_pair(kind, ...) / draw_at(kind, ...): kind ``KIND_GAUSSIAN = 0``, ``KIND_UNIFORM = 1``, ``KIND_RADEMACHER = 2``
    draw_pairs_into(kind, seed, stream, network, layer, row0, drow, jp0, djp, count, E, O): ``count`` pairs along a
        line of counters into two arrays, the same numbers as draw_pair but in loops that vectorise on the CPU
        (Philox, then the logs, then the angles: ~4x faster than pair by pair); used by the CPU kernels.
Array helpers (NumPy in, NumPy out): ``normals(seed, stream, network, layer, rows, cols)`` -> (rows, cols) array
with entry [i, j] = ``normal_at(seed, stream, network, layer, i, j)`` computed by the same compiled scalar code
(hence bit-identical to the CPU kernels), ``draws(kind, ...)`` likewise, and ``philox4x32_array``, an
independent vectorised NumPy implementation of the block function (for cross-checks, and the Philox of
:mod:`sigprop.kernels.rng_numpy`, the plain NumPy twin of this generator used by the reference).
"""
from __future__ import annotations

import math
from functools import partial

import numba
import numpy as np

from sigprop.theory.errors import InputError, InputTypeError

from .device_activations import fingerprinted
from .simd import float64_bits, float64_from_bits, prefer_wide_vectors

__all__ = [
    "STREAM_WEIGHTS", "STREAM_BIAS", "STREAM_SKIP", "STREAM_READOUT", "STREAM_GRAM",
    "KIND_GAUSSIAN", "KIND_UNIFORM", "KIND_RADEMACHER", "WEIGHT_KINDS",
    "philox4x32", "philox4x32_array", "uniform_numerator", "uniform01_from_words", "log_dyadic53", "sincos_turn",
    "normal_pair", "normal_at", "uniform_pair", "uniform_at", "rademacher_pair", "rademacher_at",
    "draw_pair", "draw_at", "draw_pairs_into", "normals", "draws",
]

STREAM_WEIGHTS = 0
STREAM_BIAS = 1
STREAM_SKIP = 2
STREAM_READOUT = 3
STREAM_GRAM = 4

KIND_GAUSSIAN = 0
KIND_UNIFORM = 1
KIND_RADEMACHER = 2
WEIGHT_KINDS: dict[str, int] = {"gaussian": KIND_GAUSSIAN, "uniform": KIND_UNIFORM, "rademacher": KIND_RADEMACHER}

# All arithmetic is done on uint64 values holding 32-bit words (products of two words fit exactly).
_MASK32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_SH24 = np.uint64(24)
_SH20 = np.uint64(20)
_SH12 = np.uint64(12)
_ONE = np.uint64(1)
_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_TWO_POW_M53 = 2.0 ** -53
# fdlibm e_log.c: ln 2 split in two, and the minimax coefficients of (log(1+f) - f + f^2/2 - ...) in s = f/(2+f).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
_SQRT2 = math.sqrt(2.0)
_HALF_PI = 0.5 * math.pi
_SQRT3 = math.sqrt(3.0)


@numba.njit(inline="always")
def _philox_round(c0, c1, c2, c3, k0, k1):
    p0 = _PHILOX_M0 * c0
    p1 = _PHILOX_M1 * c2
    return ((p1 >> _SH32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _SH32) ^ c3 ^ k1, p0 & _MASK32)


@numba.njit(inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox-4x32-10 block function (Salmon et al. 2011): counter (c0..c3), key (k0, k1) -> 4 words.

    Arguments and results are uint64 values below 2^32 (inputs are reduced mod 2^32).
    """
    c0 = np.uint64(c0) & _MASK32
    c1 = np.uint64(c1) & _MASK32
    c2 = np.uint64(c2) & _MASK32
    c3 = np.uint64(c3) & _MASK32
    k0 = np.uint64(k0) & _MASK32
    k1 = np.uint64(k1) & _MASK32
    for _ in range(9):
        c0, c1, c2, c3 = _philox_round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _PHILOX_W0) & _MASK32
        k1 = (k1 + _PHILOX_W1) & _MASK32
    return _philox_round(c0, c1, c2, c3, k0, k1)


@numba.njit(inline="always")
def uniform_numerator(a, b):
    """2m + 1 as a float64 (exact, odd, in [1, 2^53)), with m = a << 20 | b >> 12: the uniform is this times 2^-53."""
    m = (np.uint64(a) << _SH20) | (np.uint64(b) >> _SH12)
    return np.float64(np.int64(m)) * 2.0 + 1.0  # m < 2^52: signed conversion is exact


@numba.njit(inline="always")
def uniform01_from_words(a, b):
    """u = (2m + 1) / 2^53 with m = a << 20 | b >> 12 (52 bits): a float64 in the open interval (0, 1)."""
    return uniform_numerator(a, b) * _TWO_POW_M53


@numba.njit(inline="always")
def log_dyadic53(x):
    """log(x 2^-53) for an integer-valued float64 x in [1, 2^53) (so for every uniform u = x 2^-53 used here).

    x = 2^e y with y in [sqrt(1/2), sqrt(2)] by exact power-of-two scalings chosen by comparisons (no bit
    access, no branches: the same code vectorises on the CPU and runs in CUDA kernels), then fdlibm's
    __ieee754_log on y: f = y - 1, s = f/(2+f), log y = f - hfsq + s (hfsq + R(s^2)) with the minimax R
    (|error| < 2^-58.45) and ln 2 in two parts.  Error < 1 ulp of the result (tests/test_rng.py checks it
    against mpmath)."""
    e = -53.0
    big = x >= 4294967296.0
    x = x * 2.3283064365386963e-10 if big else x
    e = e + 32.0 if big else e
    big = x >= 65536.0
    x = x * 1.52587890625e-05 if big else x
    e = e + 16.0 if big else e
    big = x >= 256.0
    x = x * 0.00390625 if big else x
    e = e + 8.0 if big else e
    big = x >= 16.0
    x = x * 0.0625 if big else x
    e = e + 4.0 if big else e
    big = x >= 4.0
    x = x * 0.25 if big else x
    e = e + 2.0 if big else e
    big = x >= 2.0
    x = x * 0.5 if big else x
    e = e + 1.0 if big else e
    big = x > _SQRT2
    x = x * 0.5 if big else x
    e = e + 1.0 if big else e
    return _log_reduced(x, e)


@numba.njit(inline="always")
def _log_reduced(y, e):
    """e ln 2 + log y for y in [sqrt(1/2), sqrt(2)] (fdlibm's __ieee754_log kernel; see log_dyadic53)."""
    f = y - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    return e * _LN2_HI - ((hfsq - (s * (hfsq + R) + e * _LN2_LO)) - f)


@numba.njit(inline="always")
def log_dyadic53_bits(x):
    """log_dyadic53(x), bit for bit, with the exponent read from the float's bits instead of seven comparisons
    (x = 2^k y, y in [1, 2): k from the exponent field, y by setting it to 0; then y > sqrt 2 -> y/2, k + 1:
    the same exact y and e).  Used by the vectorised draw_pairs_into of the CPU kernels."""
    b = float64_bits(x)
    e = np.float64((b >> 52) - 1023) - 53.0
    y = float64_from_bits((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = y > _SQRT2
    y = y * 0.5 if big else y
    e = e + 1.0 if big else e
    return _log_reduced(y, e)


@numba.njit(inline="always")
def sincos_turn(u):
    """(cos(2 pi u), sin(2 pi u)) for a float u: t = 4u = k + f exactly (k = round(t), |f| <= 1/2), x = f pi/2,
    Taylor polynomials of cos/sin on |x| <= pi/4 (truncation < 3e-17), then the quadrant k mod 4."""
    t = 4.0 * u
    k = math.floor(t + 0.5)
    x = (t - k) * _HALF_PI
    x2 = x * x
    s = x * (1.0 + x2 * (-1.0 / 6.0 + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (
        1.0 / 362880.0 + x2 * (-1.0 / 39916800.0 + x2 * (1.0 / 6227020800.0 + x2 * (-1.0 / 1307674368000.0))))))))
    c = 1.0 + x2 * (-0.5 + x2 * (1.0 / 24.0 + x2 * (-1.0 / 720.0 + x2 * (1.0 / 40320.0 + x2 * (
        -1.0 / 3628800.0 + x2 * (1.0 / 479001600.0 + x2 * (-1.0 / 87178291200.0 + x2 * (1.0 / 20922789888000.0))))))))
    q = int(k) & 3
    odd = (q & 1) == 1  # quadrant by selects, not branches, so that a loop over u vectorises
    cq = s if odd else c
    sq = c if odd else s
    cq = -cq if (q == 1 or q == 2) else cq
    sq = -sq if q >= 2 else sq
    return cq, sq


@numba.njit(inline="always")
def _block(seed, stream, network, layer, row, col_pair):
    s = np.uint64(seed)
    c1 = (np.uint64(layer) & np.uint64(0xFFFFFF)) | (np.uint64(stream) << _SH24)
    return philox4x32(network, c1, row, col_pair, s & _MASK32, s >> _SH32)


@numba.njit(inline="always")
def _normals_from_words(w0, w1, w2, w3):
    x1 = uniform_numerator(w0, w1)
    u2 = uniform01_from_words(w2, w3)
    r = math.sqrt(-2.0 * log_dyadic53(x1))
    c, s = sincos_turn(u2)
    return r * c, r * s


@numba.njit(inline="always")
def _uniforms_from_words(w0, w1, w2, w3):
    u1 = uniform01_from_words(w0, w1)
    u2 = uniform01_from_words(w2, w3)
    return _SQRT3 * (2.0 * u1 - 1.0), _SQRT3 * (2.0 * u2 - 1.0)


@numba.njit(inline="always")
def _signs_from_words(w0, w1):
    a = 1.0 if (w0 & _ONE) != np.uint64(0) else -1.0
    b = 1.0 if (w1 & _ONE) != np.uint64(0) else -1.0
    return a, b


@numba.njit(inline="always")
def normal_pair(seed, stream, network, layer, row, col_pair):
    """Two independent N(0, 1) numbers for the columns (2 col_pair, 2 col_pair + 1) (Box-Muller)."""
    w0, w1, w2, w3 = _block(seed, stream, network, layer, row, col_pair)
    return _normals_from_words(w0, w1, w2, w3)


@numba.njit(inline="always")
def uniform_pair(seed, stream, network, layer, row, col_pair):
    """Two independent uniforms on [-sqrt 3, sqrt 3] (mean 0, variance 1) for columns (2j, 2j+1)."""
    w0, w1, w2, w3 = _block(seed, stream, network, layer, row, col_pair)
    return _uniforms_from_words(w0, w1, w2, w3)


@numba.njit(inline="always")
def rademacher_pair(seed, stream, network, layer, row, col_pair):
    """Two independent +-1 signs for columns (2j, 2j+1): +1 where bit 0 of word 0 (resp. word 1) is set."""
    w0, w1, w2, w3 = _block(seed, stream, network, layer, row, col_pair)
    return _signs_from_words(w0, w1)


@numba.njit(inline="always")
def draw_pair(kind, seed, stream, network, layer, row, col_pair):
    """Two unit-variance draws of distribution ``kind`` (0 Gaussian, 1 uniform, 2 Rademacher): one Philox block."""
    w0, w1, w2, w3 = _block(seed, stream, network, layer, row, col_pair)
    if kind == 1:
        return _uniforms_from_words(w0, w1, w2, w3)
    elif kind == 2:
        return _signs_from_words(w0, w1)
    return _normals_from_words(w0, w1, w2, w3)


@numba.njit(inline="always")
def normal_at(seed, stream, network, layer, row, col):
    """The N(0, 1) number at (row, col): element ``col % 2`` of ``normal_pair(..., col // 2)``."""
    a, b = normal_pair(seed, stream, network, layer, row, col >> 1)
    return a if (col & 1) == 0 else b


@numba.njit(inline="always")
def uniform_at(seed, stream, network, layer, row, col):
    """The uniform [-sqrt 3, sqrt 3] number at (row, col)."""
    a, b = uniform_pair(seed, stream, network, layer, row, col >> 1)
    return a if (col & 1) == 0 else b


@numba.njit(inline="always")
def rademacher_at(seed, stream, network, layer, row, col):
    """The +-1 sign at (row, col)."""
    a, b = rademacher_pair(seed, stream, network, layer, row, col >> 1)
    return a if (col & 1) == 0 else b


@numba.njit(inline="always")
def draw_at(kind, seed, stream, network, layer, row, col):
    """The unit-variance draw of distribution ``kind`` at (row, col)."""
    a, b = draw_pair(kind, seed, stream, network, layer, row, col >> 1)
    return a if (col & 1) == 0 else b


@numba.njit(inline="always")
def draw_pairs_into(kind, seed, stream, network, layer, row0, drow, jp0, djp, count, E, O):
    """E[k], O[k] = draw_pair(kind, seed, stream, network, layer, row0 + k drow, jp0 + k djp) for k < count.

    The same numbers as the scalar path, bit for bit, generated in passes over k (Philox and the uniforms,
    then sqrt(-2 log u1), then the angle), each a loop over independent counters that LLVM vectorises on
    the CPU, at the CPU's widest vector width (:func:`simd.prefer_wide_vectors`: the function this is inlined into
    is so marked).  ``E`` and ``O`` are float64 arrays of length >= count (E doubles as scratch for u1 and the
    radius, O for u2)."""
    prefer_wide_vectors()
    sd = np.uint64(seed)
    k0 = sd & _MASK32
    k1 = sd >> _SH32
    c1 = (np.uint64(layer) & np.uint64(0xFFFFFF)) | (np.uint64(stream) << _SH24)
    if kind == 2:
        for k in range(count):
            w0, w1, w2, w3 = philox4x32(network, c1, row0 + k * drow, jp0 + k * djp, k0, k1)
            E[k], O[k] = _signs_from_words(w0, w1)
        return
    if kind == 1:
        for k in range(count):
            w0, w1, w2, w3 = philox4x32(network, c1, row0 + k * drow, jp0 + k * djp, k0, k1)
            E[k], O[k] = _uniforms_from_words(w0, w1, w2, w3)
        return
    for k in range(count):
        w0, w1, w2, w3 = philox4x32(network, c1, row0 + k * drow, jp0 + k * djp, k0, k1)
        E[k] = uniform_numerator(w0, w1)
        O[k] = uniform01_from_words(w2, w3)
    for k in range(count):
        E[k] = math.sqrt(-2.0 * log_dyadic53_bits(E[k]))
    for k in range(count):
        c, s = sincos_turn(O[k])
        r = E[k]
        E[k] = r * c
        O[k] = r * s


# Disk-cached, and named with the fingerprint of all inlined device sources (this module, simd, ...: see
# device_activations.fingerprinted); no division checks (error_model='numpy'): they would stop vectorisation.
@partial(fingerprinted, error_model="numpy")
def _fill_draws(kind, seed, stream, network, layer, out):
    rows, cols = out.shape
    npairs = (cols + 1) // 2
    E = np.empty(npairs)
    O = np.empty(npairs)
    for i in range(rows):
        draw_pairs_into(kind, seed, stream, network, layer, i, 0, 0, 1, npairs, E, O)
        for jp in range(cols // 2):
            out[i, 2 * jp] = E[jp]
            out[i, 2 * jp + 1] = O[jp]
        if cols % 2 == 1:
            out[i, cols - 1] = E[npairs - 1]


def check_coords(seed: int, stream: int, network: int, layer: int, rows: int, cols: int) -> None:
    for name, v, hi in (("seed", seed, 2**64), ("stream", stream, 256), ("network", network, 2**32),
                        ("layer", layer, 2**24), ("rows", rows, 2**32 + 1), ("cols", cols, 2**33 + 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InputTypeError(f"{name} must be an integer, got {type(v).__name__}")
        if not 0 <= int(v) < hi:
            raise InputError(f"{name} must be in [0, {hi}), got {v}")


def kind_code(kind: int | str) -> int:
    """0/1/2 for 'gaussian'/'uniform'/'rademacher' (or the code itself); ValueError otherwise."""
    if isinstance(kind, str):
        if kind not in WEIGHT_KINDS:
            raise InputError(f"kind must be one of {sorted(WEIGHT_KINDS)}, got {kind!r}")
        kind = WEIGHT_KINDS[kind]
    if kind not in (0, 1, 2):
        raise InputError(f"kind must be 0 (gaussian), 1 (uniform) or 2 (rademacher), got {kind!r}")
    return int(kind)


def draws(kind: int | str, seed: int, stream: int, network: int, layer: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64 array of unit-variance draws,
    entry [i, j] = ``draw_at(kind, seed, stream, network, layer, i, j)``."""
    kind = kind_code(kind)
    check_coords(seed, stream, network, layer, rows, cols)
    out = np.empty((int(rows), int(cols)), dtype=np.float64)
    _fill_draws(kind, np.uint64(seed), int(stream), int(network), int(layer), out)
    return out


def normals(seed: int, stream: int, network: int, layer: int, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float64 array of N(0, 1) numbers,
    entry [i, j] = ``normal_at(seed, stream, network, layer, i, j)``."""
    return draws(KIND_GAUSSIAN, seed, stream, network, layer, rows, cols)


def philox4x32_array(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Vectorised NumPy Philox-4x32-10: counter (..., 4), key (..., 2) integer arrays -> (..., 4) uint64 words.

    An independent implementation of :func:`philox4x32` (used to cross-check it)."""
    c = np.asarray(counter, dtype=np.uint64) & _MASK32
    k = np.asarray(key, dtype=np.uint64) & _MASK32
    c0, c1, c2, c3 = (c[..., i].copy() for i in range(4))
    k0, k1 = k[..., 0].copy(), k[..., 1].copy()
    for r in range(10):
        p0 = _PHILOX_M0 * c0
        p1 = _PHILOX_M1 * c2
        c0, c1, c2, c3 = (p1 >> _SH32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _SH32) ^ c3 ^ k1, p0 & _MASK32
        if r < 9:
            k0 = (k0 + _PHILOX_W0) & _MASK32
            k1 = (k1 + _PHILOX_W1) & _MASK32
    return np.stack([c0, c1, c2, c3], axis=-1)
