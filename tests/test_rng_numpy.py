"""Plain NumPy twin of the generator (kernels/rng_numpy.py) against the compiled rng.draws: bits and rounding."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels import rng, rng_numpy
from sigprop.kernels.rng_numpy import draws_numpy, normals_numpy

ULP1 = 2.0**-52
# Sound bound for |draws_numpy - rng.draws| on Gaussian entries, in units of 2^-52 max(r, 1) with r the pair's
# radius sqrt(-2 log u1) (the uniforms u1, u2 and hence the exact values are identical in both).  The angle
# 2 pi u2 is rounded twice in the twin (2 pi as a double, then the product): <= 2 + 2 units absolute, which moves
# r cos / r sin by <= 4 r units; np.cos/np.sin (<= ~2 ulp, SIMD builds) and rng.sincos_turn (~0.5) add <= 2.5 r
# units; log (< 1 ulp in each) and sqrt give r to <= 2 relative units; the final products <= 1.  Total
# <= 9.5 r units (11.5 with NumPy's up-to-4-ulp SVML cos/sin on AVX-512 CPUs): we assert 12.  Measured on 10^6
# normals (4 coordinate sets below): max 3.4 units, max |difference| 2.9e-15.  A bound relative to max(|x|, 1)
# alone is not sound: where r is large but x = r cos is small the angle error still moves x by ~r units (measured
# up to 12.1 ulp of max(|x|, 1)).
GAUSS_UNITS = 12.0

EXTREME = [  # (seed, stream, network, layer)
    (2**32, 0, 0, 1),
    (2**32 + 12345, 7, 3, 2),
    (2**64 - 1, 0, 0, 0),
    (0, 0, 2**32 - 1, 0),
    (0, 0, 0, 2**24 - 1),
    (0, 255, 0, 0),
    (2**64 - 1, 255, 2**32 - 1, 2**24 - 1),
]


def _assert_gaussian_close(a: np.ndarray, b: np.ndarray, coords: tuple) -> float:
    """Assert the Gaussian bound for a = rng.draws(0, *coords, rows, cols), b its twin; return the worst units."""
    assert a.shape == b.shape and b.dtype == np.float64
    if a.size == 0:
        return 0.0
    rows, cols = a.shape
    pairs = rng.draws(0, *coords, rows, cols + cols % 2)  # full pairs, for the radius of an odd last column
    r = np.repeat(np.hypot(pairs[:, 0::2], pairs[:, 1::2]), 2, axis=1)[:, :cols]
    units = np.abs(a - b) / (ULP1 * np.maximum(r, 1.0))
    worst = float(units.max())
    assert worst <= GAUSS_UNITS, worst
    return worst


def _check_same(kind, seed, stream, network, layer, rows, cols) -> None:
    """draws_numpy == rng.draws: bit for bit (uniform, Rademacher) or to the Gaussian bound."""
    a = rng.draws(kind, seed, stream, network, layer, rows, cols)
    b = draws_numpy(kind, seed, stream, network, layer, rows, cols)
    assert b.shape == a.shape == (rows, cols) and b.dtype == np.float64 and b.flags.c_contiguous
    if kind in ("gaussian", 0):
        _assert_gaussian_close(a, b, (seed, stream, network, layer))
    else:
        # Bits on every CPU: Philox is integer arithmetic; m -> (2m + 1) 2^-53 -> 2u - 1 are exact in float64 and
        # sqrt(3) (2u - 1) is one correctly rounded multiply in both (numba emits no FMA without fastmath).
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", ["uniform", "rademacher", 1, 2])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4, 8), (17, 33), (2, 2 * 9000 + 1), (0, 4), (3, 0)])
def test_uniform_and_rademacher_bit_identical(kind, shape):
    _check_same(kind, 2**40 + 12345, rng.STREAM_WEIGHTS, 11, 3, *shape)


def test_gaussian_agrees_to_rounding_on_a_million_normals():
    worst = 0.0
    for seed, stream, net, layer in [(0, 0, 0, 1), (2**40 + 5, 3, 7, 2), (2**64 - 1, 255, 2**32 - 1, 2**24 - 1),
                                     (123, 1, 99, 17)]:
        a = rng.draws("gaussian", seed, stream, net, layer, 500, 500)
        b = draws_numpy("gaussian", seed, stream, net, layer, 500, 500)
        worst = max(worst, _assert_gaussian_close(a, b, (seed, stream, net, layer)))
        assert np.abs(a - b).max() < 1e-14
    assert worst > 0.0  # libm and rng's polynomials differ somewhere: the comparison is not vacuous


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "rademacher"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (4, 5), (2, 7), (5, 2 * 7000 + 1)])
def test_odd_cols_and_chunk_boundaries(kind, shape):
    """Odd cols keep the first element of the last pair; 5 x 7001 pairs crosses chunks inside rows."""
    _check_same(kind, 99, rng.STREAM_SKIP, 4, 6, *shape)


def test_chunk_size_does_not_change_the_numbers(monkeypatch):
    want = {k: draws_numpy(k, 5, 1, 2, 3, 7, 9) for k in ("gaussian", "uniform", "rademacher")}
    monkeypatch.setattr(rng_numpy, "CHUNK_BLOCKS", 4)  # 7 x 5 pairs in 9 chunks, boundaries mid-row
    for k, v in want.items():
        got = draws_numpy(k, 5, 1, 2, 3, 7, 9)
        if k == "gaussian":
            # np.log/np.cos/np.sin now see arrays of 4 instead of 35: NumPy's SIMD loops may round an element
            # differently in a vector body and in a tail on some CPUs, so not bits but the twin's bound: the two
            # evaluations differ only by those functions' rounding (the angle is rounded the same way), less
            # than the budget above; a wrong index would be off by O(1)
            _assert_gaussian_close(got, v, (5, 1, 2, 3))
        else:
            assert got.tobytes() == v.tobytes()  # exact arithmetic only (see _check_same)


@pytest.mark.parametrize("coords", EXTREME)
@pytest.mark.parametrize("kind", ["gaussian", "uniform", "rademacher"])
def test_extreme_coordinates(kind, coords):
    _check_same(kind, *coords, 3, 7)
    _check_same(kind, *coords, 1, 2)


def test_normals_numpy_and_kind_codes():
    # the same NumPy calls on arrays of the same shapes in one process: the same bits on any CPU
    ref = draws_numpy("gaussian", 7, 2, 1, 4, 3, 5)
    assert normals_numpy(7, 2, 1, 4, 3, 5).tobytes() == ref.tobytes()
    assert draws_numpy(0, 7, 2, 1, 4, 3, 5).tobytes() == ref.tobytes()
    assert draws_numpy(np.int64(1), 7, 2, 1, 4, 3, 5).tobytes() == draws_numpy("uniform", 7, 2, 1, 4, 3, 5).tobytes()
    assert draws_numpy(2, np.uint64(7), np.int32(2), 1, 4, 3, 5).tobytes() == \
        draws_numpy("rademacher", 7, 2, 1, 4, 3, 5).tobytes()


def test_does_not_call_the_compiled_generator(monkeypatch):
    def boom(*args):
        raise AssertionError("compiled generator called")
    want = draws_numpy("gaussian", 1, 0, 0, 1, 4, 6)
    monkeypatch.setattr(rng, "_fill_draws", boom)
    monkeypatch.setattr(rng, "draws", boom)
    assert draws_numpy("gaussian", 1, 0, 0, 1, 4, 6).tobytes() == want.tobytes()


BAD = [  # (kind, seed, stream, network, layer, rows, cols)
    ("normal", 0, 0, 0, 0, 2, 2), (3, 0, 0, 0, 0, 2, 2), (-1, 0, 0, 0, 0, 2, 2), (None, 0, 0, 0, 0, 2, 2),
    ("gaussian", -1, 0, 0, 0, 2, 2), ("gaussian", 2**64, 0, 0, 0, 2, 2), ("uniform", 0, 256, 0, 0, 2, 2),
    ("uniform", 0, -1, 0, 0, 2, 2), ("rademacher", 0, 0, 2**32, 0, 2, 2), ("gaussian", 0, 0, 0, 2**24, 2, 2),
    ("gaussian", 0, 0, 0, 0, -1, 2), ("gaussian", 0, 0, 0, 0, 2, 2**33 + 1), ("gaussian", 0, 0, 0, 0, 2**32 + 1, 1),
    ("gaussian", 1.5, 0, 0, 0, 2, 2), ("gaussian", True, 0, 0, 0, 2, 2), ("gaussian", 0, 0, 0, "1", 2, 2),
    ("gaussian", 0, 0, 0, 0, None, 2), ("uniform", 0, 0, 0, 0, 2, 2.0),
]


@pytest.mark.parametrize("args", BAD, ids=[repr(a) for a in BAD])
def test_bad_arguments_raise_like_rng_draws(args):
    with pytest.raises((TypeError, ValueError)) as want:
        rng.draws(*args)
    with pytest.raises(want.type) as got:
        draws_numpy(*args)
    assert str(got.value) == str(want.value)


@settings(max_examples=examples(150), deadline=None)
@given(kind=st.sampled_from(["gaussian", "uniform", "rademacher", 0, 1, 2]),
       seed=st.integers(0, 2**64 - 1), stream=st.integers(0, 255), network=st.integers(0, 2**32 - 1),
       layer=st.integers(0, 2**24 - 1), rows=st.integers(0, 5), cols=st.integers(0, 9))
def test_property_twin_equals_compiled(kind, seed, stream, network, layer, rows, cols):
    _check_same(kind, seed, stream, network, layer, rows, cols)
