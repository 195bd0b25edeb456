"""8-lane vector sums (kernels/simd.py) give the same bits as the scalar lane order of the GPU
(gram_device.lane_sum)."""
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.kernels.gram_device import lane_sum
from sigprop.kernels.simd import dot_lanes, float64_bits, float64_from_bits, fourth_lanes


@numba.njit
def _vector(x, y, n):
    return dot_lanes(x, y, n), fourth_lanes(x, n)


@numba.njit
def _scalar(Z, n):
    return lane_sum(Z, 0, Z, 1, n, False), lane_sum(Z, 0, Z, 0, n, True)


def _both(x, y, n):
    Z = np.ascontiguousarray(np.stack([x, y]))
    return _vector(Z[0], Z[1], n), _scalar(Z, n), lane_sum.py_func(Z, 0, Z, 1, n, False)


def _same(u, v):
    # Bits (and the sign of zero) on every x86-64 and ARM CPU: each vector fmul/fadd of kernels/simd.py does, lane
    # by lane, the scalar IEEE operation (no FMA contraction, no reassociation: built as plain LLVM IR; ARM's
    # 2-wide NEON splits the 8-wide vectors without changing any lane), and the scalar and Python versions add
    # the same products in the same 8-lane order.
    return (math.isnan(u) and math.isnan(v)) or u == v and math.copysign(1.0, u) == math.copysign(1.0, v)


@pytest.mark.parametrize("n", list(range(0, 35)) + [63, 64, 65, 511, 512, 513, 1000])
def test_vector_lanes_equal_scalar_lanes_bitwise(n):
    rng = np.random.default_rng(n)
    for _ in range(10):
        x = rng.standard_normal(n + 5) * 10.0 ** rng.uniform(-8, 8, n + 5)  # wide magnitudes: order matters
        y = rng.standard_normal(n + 5)
        (dv, fv), (ds, fs), dpy = _both(x, y, n)
        assert _same(dv, ds) and _same(fv, fs) and _same(dv, dpy), (n, dv, ds, fv, fs, dpy)


def test_lane_order_is_not_the_sequential_order():
    # the test above would pass for any common order; this pins the 8-lane order itself
    x = np.array([1e16, 1.0, -1e16, 1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0])
    y = np.ones_like(x)
    (dv, _), (ds, _), _ = _both(x, y, x.size)
    lanes = [x[r::8].sum() for r in range(8)]  # lane 0: 1e16 + 1 -> 1e16 (ulp 2); lanes 1, 2, 3: 1, -1e16, 1
    assert dv == ds == ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    assert dv == 0.0 and sum(x.tolist()) == 2.0  # (1e16 + -1e16) + ... in lanes; 1e16 - 1e16 + 1 + 1 in sequence


def test_nan_and_inf_propagate():
    x = np.arange(20.0)
    x[13] = np.nan
    (dv, fv), (ds, fs), _ = _both(x, np.ones(20), 20)
    assert math.isnan(dv) and math.isnan(ds) and math.isnan(fv) and math.isnan(fs)
    x[13] = np.inf
    (dv, fv), (ds, fs), _ = _both(x, np.ones(20), 20)
    assert dv == ds == math.inf and fv == fs == math.inf


def test_wrong_argument_types_are_typing_errors():
    with pytest.raises(TypeError, match="1-D C-contiguous float64"):
        _vector(np.ones(8, dtype=np.float32), np.ones(8, dtype=np.float32), 8)
    with pytest.raises(TypeError, match="1-D C-contiguous float64"):
        _vector(np.ones(16)[::2], np.ones(8), 8)


def test_unaligned_arrays_give_the_aligned_result():
    raw = np.zeros(8 * 21 + 1, dtype=np.uint8)
    x = raw[1:].view(np.float64)  # 8-byte elements at an odd address
    x[:] = np.random.default_rng(5).standard_normal(21)
    assert not x.flags.aligned
    assert _vector(x, x, 21) == _vector(x.copy(), x.copy(), 21)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=40), st.integers(0, 40))
def test_property_vector_equals_scalar(vals, shift):
    x = np.array(vals + [0.0] * 2)
    y = np.roll(x, shift)
    n = len(vals)
    (dv, fv), (ds, fs), _ = _both(x, y, n)
    assert _same(dv, ds) and _same(fv, fs)


@numba.njit
def _bits_round_trip(x):
    b = np.empty(x.shape[0], dtype=np.int64)
    y = np.empty_like(x)
    for k in range(x.shape[0]):
        b[k] = float64_bits(x[k])
        y[k] = float64_from_bits(b[k])
    return b, y


def test_bit_casts_match_numpy_views():
    x = np.array([0.0, -0.0, 1.0, -2.5, 1e-310, np.inf, -np.inf, np.nan, 2.0**53 - 1, np.pi])
    b, y = _bits_round_trip(x)
    assert np.array_equal(b, x.view(np.int64)) and np.array_equal(y.view(np.int64), x.view(np.int64))


def test_prefer_wide_vectors_marks_the_calling_function_and_is_a_no_op_in_python():
    """The attribute lands on the function that calls it (also through inline='always' code), on no other, and a
    Python call does nothing; the loop's results are the same with and without it."""
    from sigprop.kernels.simd import prefer_wide_vectors

    def loop(x, y, c):
        for i in range(x.shape[0]):
            y[i] = x[i] * c + 1.0

    loop_jit = numba.njit(inline="always")(loop)
    inner = numba.njit(inline="always")(lambda x, y, c: (prefer_wide_vectors(), loop_jit(x, y, c)))

    @numba.njit
    def wide(x, y, c):
        prefer_wide_vectors()
        loop_jit(x, y, c)

    @numba.njit
    def wide_inlined(x, y, c):
        inner(x, y, c)

    @numba.njit
    def plain(x, y, c):
        loop_jit(x, y, c)

    x = np.random.default_rng(0).standard_normal(101)
    outs = {}
    for f in (wide, wide_inlined, plain):
        y = np.empty_like(x)
        f(x, y, 3.0)
        outs[f] = y
        ir = f.inspect_llvm(f.signatures[0])
        assert ('"prefer-vector-width"="512"' in ir) == (f is not plain), f
    np.testing.assert_array_equal(outs[wide].view(np.uint64), outs[plain].view(np.uint64))
    np.testing.assert_array_equal(outs[wide_inlined].view(np.uint64), outs[plain].view(np.uint64))
    assert prefer_wide_vectors() is None


def test_row_blocked_gram_sums_are_dot_lanes_bit_for_bit():
    """tri8_lanes, off8_lanes and cross44_lanes give each pair's dot_lanes, bit for bit, for lengths around the
    8-lane blocks and rows at any alignment (views starting at an odd element), with NaN, inf and signed zeros."""
    from sigprop.kernels.simd import cross44_lanes, off8_lanes, tri8_lanes

    @numba.njit
    def blocked(Z, n):
        r = (Z[0], Z[1], Z[2], Z[3], Z[4], Z[5], Z[6], Z[7])
        return tri8_lanes(*r, n), off8_lanes(*r, n), cross44_lanes(*r, n)

    @numba.njit
    def dot(x, y, n):
        return dot_lanes(x, y, n)

    tri = [(i, j) for i in range(4) for j in range(i, 4)]
    off = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 8, 9, 16, 23, 515):
        for shift in (0, 1):
            Z = np.ascontiguousarray(rng.standard_normal((8, n + shift))[:, shift:])
            if n > 3:
                Z[1, 2], Z[5, 3], Z[6, 0], Z[7, 1] = np.nan, np.inf, -0.0, 1e-310
            t, o, c = blocked(Z, n)
            want_t = [dot(Z[i], Z[j], n) for i, j in tri] + [dot(Z[i + 4], Z[j + 4], n) for i, j in tri]
            want_o = [dot(Z[i], Z[j], n) for i, j in off] + [dot(Z[i + 4], Z[j + 4], n) for i, j in off]
            want_c = [dot(Z[i], Z[4 + j], n) for i in range(4) for j in range(4)]
            for got, want in ((t, want_t), (o, want_o), (c, want_c)):
                np.testing.assert_array_equal(np.array(got).view(np.uint64), np.array(want).view(np.uint64))
