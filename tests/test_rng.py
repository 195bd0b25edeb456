"""Philox-4x32-10 counter-based RNG: known answers, distribution, independence, reproducibility, CUDA."""
import math
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels import rng

# Random123 known-answer vectors (kat_vectors, philox4x32_10).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@numba.njit
def _philox_scalar(c0, c1, c2, c3, k0, k1):
    return rng.philox4x32(c0, c1, c2, c3, k0, k1)


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answer_vectors(counter, key, expected):
    assert tuple(int(w) for w in _philox_scalar(*counter, *key)) == expected
    assert tuple(int(w) for w in rng.philox4x32_array(np.array(counter), np.array(key))) == expected


def test_scalar_and_numpy_philox_agree_on_random_inputs():
    gen = np.random.default_rng(0)
    ctr = gen.integers(0, 2**32, size=(200, 4), dtype=np.uint64)
    key = gen.integers(0, 2**32, size=(200, 2), dtype=np.uint64)
    ref = rng.philox4x32_array(ctr, key)
    for t in range(200):
        got = _philox_scalar(*[int(v) for v in ctr[t]], *[int(v) for v in key[t]])
        assert tuple(int(w) for w in got) == tuple(int(w) for w in ref[t])


def test_normals_follow_documented_layout():
    """normals[i, 2j:2j+2] is Box-Muller on the block at counter (network, layer | stream << 24, i, j)."""
    seed, stream, net, layer = 2**40 + 12345, 3, 7, 5
    z = rng.normals(seed, stream, net, layer, 3, 5)
    for i in range(3):
        for j in range(3):
            w = rng.philox4x32_array(np.array([net, layer | stream << 24, i, j]),
                                     np.array([seed & 0xFFFFFFFF, seed >> 32])).astype(np.uint64)
            u = [((int(w[a]) << 20 | int(w[b]) >> 12) * 2 + 1) * 2.0**-53 for a, b in ((0, 1), (2, 3))]
            r = np.sqrt(-2 * np.log(u[0]))
            pair = (r * np.cos(2 * np.pi * u[1]), r * np.sin(2 * np.pi * u[1]))
            for c in range(2):
                if 2 * j + c < 5:
                    assert z[i, 2 * j + c] == pytest.approx(pair[c], rel=1e-13, abs=1e-14)


def test_sincos_turn_is_accurate():
    import mpmath

    f = numba.njit(lambda u: rng.sincos_turn(u))
    us = np.concatenate([np.random.default_rng(4).random(3000), [2.0**-53, 0.125, 0.25, 0.5, 0.75, 1 - 2.0**-53]])
    with mpmath.workdps(30):
        for u in us:
            c, s = f(u)
            ang = 2 * mpmath.pi * mpmath.mpf(float(u))
            assert abs(c - float(mpmath.cos(ang))) < 3e-16 and abs(s - float(mpmath.sin(ang))) < 3e-16, u


_log53 = numba.njit(error_model="numpy")(lambda x: rng.log_dyadic53(x))


def _ulps_from_exact(x: float) -> float:
    """|log_dyadic53(x) - log(x 2^-53)| in units in the last place of the exact value (mpmath, 40 digits)."""
    import mpmath

    with mpmath.workdps(40):
        exact = mpmath.log(mpmath.mpf(int(x)) / mpmath.mpf(2) ** 53)
        return float(abs(mpmath.mpf(_log53(x)) - exact)) / np.spacing(abs(float(exact)))


def test_log_dyadic53_is_within_one_ulp():
    """Every uniform numerator 2m+1 (the uniforms), log-uniform integers in [1, 2^53) (all binades) and the edges
    of the reduction (powers of two, sqrt 2 times them, 1, 2^53 - 1): error < 1 ulp of the exact log."""
    gen = np.random.default_rng(7)
    xs = [1.0, 2.0, 3.0, 2.0**53 - 1, 2.0**52, 2.0**52 + 1]
    xs += [float(v) for v in 2 * gen.integers(0, 2**52, size=1500, dtype=np.int64) + 1]
    xs += [float(v) for v in np.floor(np.exp(gen.uniform(0.0, 53 * np.log(2.0), 1500)))]
    for k in range(53):
        for mult in (1.0, 1.4142135623730950, 1.4142135623730951, 1.5, 1.9999999999):
            v = np.floor(2.0**k * mult)
            xs += [v, v + 1.0] if v + 1.0 < 2.0**53 else [v]
    worst = max(_ulps_from_exact(x) for x in xs if 1.0 <= x < 2.0**53)
    assert worst < 1.0, worst


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(min_value=1, max_value=2**53 - 1))
def test_log_dyadic53_property(n):
    assert _ulps_from_exact(float(n)) < 1.0


def test_log_dyadic53_agrees_with_libm_on_many_uniforms():
    """Against math.log (itself within 1 ulp) on 10^6 uniform numerators: differences of at most 1 ulp."""
    x = (2 * np.random.default_rng(3).integers(0, 2**52, size=10**6, dtype=np.int64) + 1).astype(np.float64)
    got = _log53_array(x)
    # Two faithful (< 1 ulp) results are the same or adjacent floats, on every CPU.  math.log is the C library's
    # (faithful in glibc, macOS, MSVC); np.log is not used: NumPy's log depends on the CPU (SVML on AVX-512).
    ref = np.array([math.log(v) for v in (x * 2.0**-53).tolist()])
    assert np.max(np.abs(got - ref) / np.spacing(np.abs(ref))) <= 1.0


@numba.njit(error_model="numpy")
def _log53_array(x):
    out = np.empty_like(x)
    for k in range(x.shape[0]):
        out[k] = rng.log_dyadic53(x[k])
    return out


@numba.njit(error_model="numpy")
def _log53_both(x):
    a = np.empty_like(x)
    b = np.empty_like(x)
    for k in range(x.shape[0]):
        a[k] = rng.log_dyadic53(x[k])
        b[k] = rng.log_dyadic53_bits(x[k])
    return a, b


def test_log_dyadic53_bits_equals_log_dyadic53_bit_for_bit():
    """The CPU vector path's exponent-from-bits reduction gives the comparison reduction's bits: 10^6 uniform
    numerators, every binade's edges (2^k, 2^k +- 1) and the sqrt 2 switch (floor/ceil of 2^k sqrt 2)."""
    gen = np.random.default_rng(11)
    xs = [(2 * gen.integers(0, 2**52, size=10**6, dtype=np.int64) + 1).astype(np.float64)]
    p = 2.0 ** np.arange(54)
    r2 = np.sqrt(2.0) * 2.0 ** np.arange(53)
    xs += [p, p - 1.0, p + 1.0, np.floor(r2), np.ceil(r2), np.floor(r2) - 1.0, np.ceil(r2) + 1.0]
    x = np.concatenate(xs)
    x = x[(x >= 1.0) & (x < 2.0**53)]
    a, b = _log53_both(x)
    # Bits on every CPU: the same reduced argument (exact) and the same + - * polynomial; numba emits no FMA
    # without fastmath.
    assert np.array_equal(a.view(np.int64), b.view(np.int64))


@numba.njit(error_model="numpy")
def _pairs_block_vs_scalar(kind, seed, stream, network, layer, row0, drow, jp0, djp, count):
    E = np.empty(count)
    O = np.empty(count)
    rng.draw_pairs_into(kind, seed, stream, network, layer, row0, drow, jp0, djp, count, E, O)
    E2 = np.empty(count)
    O2 = np.empty(count)
    for k in range(count):
        E2[k], O2[k] = rng.draw_pair(kind, seed, stream, network, layer, row0 + k * drow, jp0 + k * djp)
    return E, O, E2, O2


@pytest.mark.parametrize("kind", [0, 1, 2])
@pytest.mark.parametrize("line", [(3, 0, 5, 1), (0, 1, 9, 0), (2, 1, 1, 1)])
def test_draw_pairs_into_equals_scalar_draws_bit_for_bit(kind, line):
    """The vectorised block generator gives exactly the numbers of draw_pair along rows, columns, diagonals."""
    row0, drow, jp0, djp = line
    E, O, E2, O2 = _pairs_block_vs_scalar(kind, np.uint64(2**37 + 5), 2, 11, 4, row0, drow, jp0, djp, 301)
    # Bits on every CPU: vector lanes perform the scalar code's operations (integer Philox, IEEE + - * / sqrt;
    # log and sincos are rng's own polynomials, no libm or vector-library call; no FMA without fastmath).
    np.testing.assert_array_equal(E, E2)
    np.testing.assert_array_equal(O, O2)


def test_normals_array_equals_scalar_normal_at():
    z = rng.normals(123, 0, 2, 3, 5, 13)
    at = numba.njit(lambda i, j: rng.normal_at(123, 0, 2, 3, i, j))
    # bits: as in test_draw_pairs_into_equals_scalar_draws_bit_for_bit
    np.testing.assert_array_equal(z, np.array([[at(i, j) for j in range(13)] for i in range(5)]))


def test_uniform01_is_open_and_symmetric():
    f = numba.njit(lambda a, b: rng.uniform01_from_words(a, b))
    lo, hi = f(0, 0), f(0xFFFFFFFF, 0xFFFFFFFF)
    assert lo == 2.0**-53 and hi == 1.0 - 2.0**-53 and lo + hi == 1.0


def _zscores(x, mean, var, m4):
    """z-scores of the sample mean, variance and fourth moment against the exact ones."""
    n = x.size
    m6 = 15.0 if m4 == 3.0 else None
    z_mean = (x.mean() - mean) / np.sqrt(var / n)
    z_var = ((x**2).mean() - var) / np.sqrt((m4 - var**2) / n)
    sd4 = np.sqrt(((x**8).mean() - (x**4).mean() ** 2) / n) if m6 is None else np.sqrt((105.0 - 9.0) / n)
    z_m4 = ((x**4).mean() - m4) / sd4
    return z_mean, z_var, z_m4


def test_normal_moments():
    x = rng.normals(20240601, 0, 0, 1, 1000, 1000).ravel()
    for z in _zscores(x, 0.0, 1.0, 3.0):
        assert abs(z) < 4
    # tail mass beyond 3 sigma: 2 * (1 - Phi(3)) = 0.0026998
    p = 0.0026997960632601866
    assert abs((np.abs(x) > 3).mean() - p) / np.sqrt(p * (1 - p) / x.size) < 4


def test_uniform_and_rademacher_moments():
    u = rng.draws("uniform", 11, 0, 0, 1, 500, 1000).ravel()
    assert np.all(np.abs(u) < np.sqrt(3.0))
    for z in _zscores(u, 0.0, 1.0, 9.0 / 5.0):
        assert abs(z) < 4
    r = rng.draws("rademacher", 11, 0, 0, 1, 500, 1000).ravel()
    assert set(np.unique(r)) == {-1.0, 1.0}
    assert abs(r.mean()) / np.sqrt(1.0 / r.size) < 4


@pytest.mark.parametrize("change", ["stream", "network", "layer", "row", "seed"])
def test_adjacent_keys_are_uncorrelated(change):
    n = 200_000
    base = dict(seed=5, stream=0, network=3, layer=2)
    if change == "row":
        a, b = rng.normals(5, 0, 3, 2, 2, n)
    else:
        other = dict(base)
        other[change] = base[change] + 1
        a = rng.normals(base["seed"], base["stream"], base["network"], base["layer"], 1, n).ravel()
        b = rng.normals(other["seed"], other["stream"], other["network"], other["layer"], 1, n).ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) * np.sqrt(n) < 4
    # the two members of a Box-Muller pair, and neighbouring columns, are uncorrelated too
    assert abs(np.corrcoef(a[0::2], a[1::2])[0, 1]) * np.sqrt(n / 2) < 4
    assert abs(np.corrcoef(a[1:-1:2], a[2::2])[0, 1]) * np.sqrt(n / 2) < 4


def test_reproducible_and_position_addressed():
    a = rng.normals(99, 1, 4, 3, 6, 9)
    b = rng.normals(99, 1, 4, 3, 6, 9)
    np.testing.assert_array_equal(a, b)
    big = rng.normals(99, 1, 4, 3, 10, 20)  # a larger draw contains the smaller one: numbers depend on position
    np.testing.assert_array_equal(big[:6, :9], a)
    at = numba.njit(lambda s, st, nw, l, i, j: rng.normal_at(s, st, nw, l, i, j))
    assert at(99, 1, 4, 3, 5, 7) == a[5, 7]
    assert not np.array_equal(a, rng.normals(100, 1, 4, 3, 6, 9))


def test_draws_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        rng.draws("cauchy", 0, 0, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="stream"):
        rng.normals(0, 256, 0, 0, 2, 2)
    with pytest.raises(ValueError, match="seed"):
        rng.normals(-1, 0, 0, 0, 2, 2)
    with pytest.raises(TypeError, match="layer"):
        rng.normals(0, 0, 0, 1.5, 2, 2)


def test_scalar_functions_compile_to_ptx():
    from numba import cuda

    def kernel(out, seed):
        i = cuda.grid(1)
        if i < out.shape[0]:
            a, b = rng.normal_pair(seed, 0, 3, 1, i, 7)
            out[i] = a + b + rng.uniform_at(seed, 0, 1, 2, i, 3) + rng.rademacher_at(seed, 0, 1, 2, i, 3) \
                + rng.draw_at(1, seed, 2, 1, 2, i, 5) + rng.normal_at(seed, 4, 1, 2, i, 5)

    ptx, _ = cuda.compile_ptx(kernel, (numba.float64[:], numba.uint64), cc=(9, 0))
    assert ".entry" in ptx and ("mul.hi" in ptx or "mul.wide" in ptx)


CUDASIM_SCRIPT = textwrap.dedent("""
    import numpy as np
    from numba import cuda
    from sigprop.kernels import rng
    assert cuda.simulator_enabled if hasattr(cuda, 'simulator_enabled') else True

    @cuda.jit
    def kernel(out, seed):
        i = cuda.grid(1)
        if i < out.shape[0]:
            for j in range(out.shape[1]):
                out[i, j] = rng.normal_at(seed, 2, 5, 3, i, j)

    out = np.zeros((4, 7))
    kernel[1, 4](out, np.uint64(2**33 + 17))
    ref = rng.normals(2**33 + 17, 2, 5, 3, 4, 7)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-15)
    print("OK")
""")


@pytest.mark.cudasim
def test_scalar_functions_in_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run([sys.executable, "-c", CUDASIM_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout
