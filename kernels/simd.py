"""Lane sums on the CPU: the engines' fixed-order reductions, written as 8-wide vector LLVM IR (numba intrinsics).

The gram method sums over neurons in one fixed order on every backend (:func:`gram_device.lane_sum`):

    s_r = sum_{i = r, r + 8, r + 16, ... < n} p_i   (r = 0..7, each in increasing i, starting from +0.0)
    sum = ((s_0 + s_1) + (s_2 + s_3)) + ((s_4 + s_5) + (s_6 + s_7))

with ``p_i = x_i y_i`` (:func:`dot_lanes`) or ``p_i = (x_i x_i)(x_i x_i)`` (:func:`fourth_lanes`).  In the
scalar code (CUDA kernels, numba's CUDA simulator) these are eight accumulators; here they are the eight
lanes of one ``<8 x double>`` register, and each vector ``fmul``/``fadd`` performs, lane by lane, exactly the
scalar operations (IEEE, no contraction into FMA, no reassociation).  So the CPU gives the same bits as the
scalar code compiled for the CPU and as the CUDA simulator (NaN where NaN; a NaN's payload may differ); on a
real GPU, NVVM contracts ``s += x y`` into fused multiply-adds, so the GPU agrees to rounding.  LLVM's loop
vectoriser cannot do this by itself: it only vectorises a floating-point sum after reassociating it, which
would make the result depend on the machine's vector width.  The last ``n mod 8`` elements are added to
lanes ``0..n mod 8 - 1`` from zero-padded copies (the other lanes get ``+0.0 * +0.0 = +0.0``, which leaves a
lane sum unchanged: a sum that starts at +0.0 is never -0.0 under round-to-nearest).

Several sums at once, one 8-lane accumulator per sum, so that the sums' additions are independent of one another
(one sum at a time waits on its own previous addition, about 4 cycles per 8 elements; several at a time run at the
machine's vector throughput), each still exactly the single sum's lanes and tree (the same bits as
:func:`dot_lanes` and :func:`fourth_lanes`): :func:`square_fourth4_lanes` (for four rows the sums of ``x_i x_i`` and
of ``(x_i x_i)(x_i x_i)``, sharing the square), and the row-blocked Gram sums, which load each of eight rows once per
block of eight elements and form all their products from the registers: :func:`tri8_lanes` (the 10 pairs ``i <= j``
within each of two groups of four rows), :func:`off8_lanes` (the 6 pairs ``i < j`` within each) and
:func:`cross44_lanes` (the 16 pairs between two groups).  With four pairs per pass the Gram matrix of eight rows
took 72 row loads per block of eight neurons; blocked it takes 16, which matters once the rows leave the L1 cache
(n = 2048: the gram chain 10% faster; n = 512: 2%).

The row updates of the gram method's sample ``z = A xi`` as 8-wide vectors: :func:`axpy_lanes` (``z_i + c x_i``)
and :func:`axpy2_lanes` (``(z_i + c0 x_i) + c1 y_i``), and their first-term forms :func:`axpy_fresh_lanes` and
:func:`axpy2_fresh_lanes` that start from ``+0.0`` instead of reading ``z`` (the same value as zeroing ``z``
first); elementwise, so their bits do not depend on the vector width either.  LLVM's own vectoriser emits the
loops of numba code at the width the CPU model prefers, 256 bits on Intel's AVX-512 cores (``prefer-256-bit``),
whereas these intrinsics are 512-bit wherever AVX-512 is available.

:func:`prefer_wide_vectors`, called first in a CPU function, lets LLVM vectorise that function's own loops (the
generator's passes, the activation) at the widest width the CPU has instead of the 256 bits it prefers on Intel's
AVX-512 cores: the function-level form of ``NUMBA_CPU_FEATURES=-prefer-256-bit``, for sigprop's kernels only.

Also the bit casts :func:`float64_bits` / :func:`float64_from_bits` (LLVM ``bitcast``, which the loop
vectoriser handles), used by the vectorised generator of the CPU kernels (``rng.draw_pairs_into``) to read a
float's exponent, and :func:`aligned_rows`, cache-line aligned scratch for the CPU kernels.

Arguments of the lane sums: 1-D C-contiguous float64 arrays ``x`` (and ``y``, any alignment) with at least
``n`` elements, ``n >= 0`` (the length is not checked: the callers are kernels).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from sigprop.theory.errors import InputTypeError

__all__ = ["LANES", "prefer_wide_vectors", "dot_lanes", "fourth_lanes", "square_fourth4_lanes", "tri8_lanes",
           "off8_lanes", "cross44_lanes", "axpy_lanes", "axpy2_lanes", "axpy_fresh_lanes", "axpy2_fresh_lanes",
           "float64_bits", "float64_from_bits", "aligned_rows"]

LANES = 8
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_DBL = ir.DoubleType()
_VEC = ir.VectorType(_DBL, LANES)
_ZEROS = ir.Constant(_VEC, [0.0] * LANES)


def _check_array(name: str, t) -> None:
    if not (isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and t.dtype == types.float64):
        raise InputTypeError(f"{name} must be a 1-D C-contiguous float64 array, got {t}")


def _data(context, builder, aty, a):
    """The data pointer of the array value ``a`` of numba type ``aty``."""
    return context.make_array(aty)(context, builder, a).data


def _load_vec(builder, ptr, off):
    # align=1: NumPy arrays may be unaligned (numba types them as aligned); on x86 this is the same vmovupd as for
    # aligned data (kernels pass 64-byte aligned rows, see aligned_rows)
    return builder.load(builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer()), align=1)


def _store_vec(builder, v, ptr, off):
    builder.store(v, builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer()), align=1)


def _splat(builder, c):
    """The <8 x double> with every lane c."""
    v = builder.insert_element(ir.Constant(_VEC, ir.Undefined), c, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, LANES), [0] * LANES))


def _tree(builder, lanes):
    """((s_0 + s_1) + (s_2 + s_3)) + ((s_4 + s_5) + (s_6 + s_7)) of the lanes s_r."""
    s = [builder.extract_element(lanes, ir.Constant(_I32, r)) for r in range(LANES)]
    left = builder.fadd(builder.fadd(s[0], s[1]), builder.fadd(s[2], s[3]))
    right = builder.fadd(builder.fadd(s[4], s[5]), builder.fadd(s[6], s[7]))
    return builder.fadd(left, right)


def _row_sums_codegen(nrows: int, dots: tuple = (), squares: tuple = (), fourths: tuple = ()):
    """Code generator of lane sums over ``nrows`` rows (arguments x_0, ..., x_{nrows-1}, n) in one pass that loads
    each row once per block of eight, one accumulator per sum: for every (i, j) of ``dots`` the sum of x_i x_j;
    for every i of ``squares`` the sum of v = x_i x_i and the sum of v v (v formed once); for every i of
    ``fourths`` the sum of v v alone.  Results in the order: the dots, the squares' sums of v, the squares' sums of
    v v, the fourths; a single result is returned as a float, several as a tuple."""
    nacc = len(dots) + 2 * len(squares) + len(fourths)

    def codegen(context, builder, sig, args):
        n = args[-1]
        ptrs = [_data(context, builder, sig.args[i], args[i]) for i in range(nrows)]
        accs = [cgutils.alloca_once_value(builder, _ZEROS) for _ in range(nacc)]

        def add(t, v):
            builder.store(builder.fadd(builder.load(accs[t]), v), accs[t])

        def accumulate(vx):
            for t, (i, j) in enumerate(dots):
                add(t, builder.fmul(vx[i], vx[j]))
            for t, i in enumerate(squares):
                v = builder.fmul(vx[i], vx[i])
                add(len(dots) + t, v)
                add(len(dots) + len(squares) + t, builder.fmul(v, v))
            for t, i in enumerate(fourths):
                v = builder.fmul(vx[i], vx[i])
                add(len(dots) + 2 * len(squares) + t, builder.fmul(v, v))

        nblocks = builder.sdiv(n, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, nblocks) as loop:
            off = builder.mul(loop.index, ir.Constant(_I64, LANES))
            accumulate([_load_vec(builder, p, off) for p in ptrs])
        # the last n mod 8 elements, from zero-padded copies
        base = builder.mul(nblocks, ir.Constant(_I64, LANES))
        tx = [cgutils.alloca_once_value(builder, _ZEROS) for _ in ptrs]
        with cgutils.for_range(builder, builder.sub(n, base)) as loop:
            i = builder.add(base, loop.index)
            for src, dst in zip(ptrs, tx):
                builder.store(builder.load(builder.gep(src, [i])),
                              builder.gep(builder.bitcast(dst, _DBL.as_pointer()), [loop.index]))
        accumulate([builder.load(t) for t in tx])
        sums = [_tree(builder, builder.load(a)) for a in accs]
        return sums[0] if nacc == 1 else context.make_tuple(builder, sig.return_type, sums)

    return codegen


def _row_sums_intrinsic(nrows: int, dots: tuple):
    """The typer of an intrinsic (x_0, ..., x_{nrows-1}, n) -> tuple of the sums x_i x_j, (i, j) in ``dots``
    (:func:`_row_sums_codegen`)."""
    nres = len(dots)

    def typer(typingctx, *args):
        arrays = args[:-1]
        if len(arrays) != nrows:
            raise InputTypeError(f"expected {nrows} rows and n, got {len(args)} arguments")
        for k, t in enumerate(arrays):
            _check_array(f"x{k}", t)
        return types.UniTuple(types.float64, nres)(*arrays, types.int64), _row_sums_codegen(nrows, dots)

    return typer


_TRI4 = tuple((i, j) for i in range(4) for j in range(i, 4))  # (0,0), (0,1), ..., (3,3): 10 pairs
_OFF4 = tuple((i, j) for i in range(4) for j in range(i + 1, 4))  # the 6 pairs i < j


@intrinsic
def tri8_lanes(typingctx, x0, x1, x2, x3, x4, x5, x6, x7, n):
    """The 10 sums x_i x_j (i <= j, row by row) of the rows x0-x3, then the 10 of the rows x4-x7, each
    :func:`dot_lanes` bit for bit, in one pass that loads each row once per block of eight."""
    return _row_sums_intrinsic(8, _TRI4 + tuple((i + 4, j + 4) for i, j in _TRI4))(
        typingctx, x0, x1, x2, x3, x4, x5, x6, x7, n)


@intrinsic
def off8_lanes(typingctx, x0, x1, x2, x3, x4, x5, x6, x7, n):
    """The 6 sums x_i x_j (i < j, row by row) of the rows x0-x3, then the 6 of the rows x4-x7, each
    :func:`dot_lanes` bit for bit, in one pass that loads each row once per block of eight."""
    return _row_sums_intrinsic(8, _OFF4 + tuple((i + 4, j + 4) for i, j in _OFF4))(
        typingctx, x0, x1, x2, x3, x4, x5, x6, x7, n)


@intrinsic
def cross44_lanes(typingctx, x0, x1, x2, x3, y0, y1, y2, y3, n):
    """The 16 sums x_i y_j (i, j = 0..3, row by row), each :func:`dot_lanes` bit for bit, in one pass that loads
    each of the eight rows once per block of eight."""
    return _row_sums_intrinsic(8, tuple((i, 4 + j) for i in range(4) for j in range(4)))(
        typingctx, x0, x1, x2, x3, y0, y1, y2, y3, n)


def _axpy_codegen(two: bool, fresh: bool):
    """Code generator of z_i = (z_i + c0 x_i) [+ c1 y_i] for i < n, with z_i read as +0.0 if ``fresh`` (arguments
    z, x, c0[, y, c1], n): 8-wide over the blocks of eight, then the n mod 8 others one by one (the same operations
    on every element)."""

    def codegen(context, builder, sig, args):
        zp = _data(context, builder, sig.args[0], args[0])
        xp = _data(context, builder, sig.args[1], args[1])
        c0 = args[2]
        yp = _data(context, builder, sig.args[3], args[3]) if two else None
        c1 = args[4] if two else None
        n = args[-1]

        def update(load, zero, coef, off):
            v = builder.fadd(zero if fresh else load(zp, off), builder.fmul(coef(c0), load(xp, off)))
            return builder.fadd(v, builder.fmul(coef(c1), load(yp, off))) if two else v

        nblocks = builder.sdiv(n, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, nblocks) as loop:
            off = builder.mul(loop.index, ir.Constant(_I64, LANES))
            v = update(lambda p, o: _load_vec(builder, p, o), _ZEROS, lambda c: _splat(builder, c), off)
            _store_vec(builder, v, zp, off)
        base = builder.mul(nblocks, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, builder.sub(n, base)) as loop:
            i = builder.add(base, loop.index)
            v = update(lambda p, o: builder.load(builder.gep(p, [o])), ir.Constant(_DBL, 0.0), lambda c: c, i)
            builder.store(v, builder.gep(zp, [i]))
        return context.get_dummy_value()

    return codegen


@intrinsic
def dot_lanes(typingctx, x, y, n):
    """sum_i x_i y_i (i < n) in the fixed 8-lane order of the module docstring."""
    _check_array("x", x)
    _check_array("y", y)
    return types.float64(x, y, types.int64), _row_sums_codegen(2, dots=((0, 1),))


@intrinsic
def fourth_lanes(typingctx, x, n):
    """sum_i (x_i x_i)(x_i x_i) (i < n) in the fixed 8-lane order of the module docstring."""
    _check_array("x", x)
    return types.float64(x, types.int64), _row_sums_codegen(1, fourths=(0,))


@intrinsic
def square_fourth4_lanes(typingctx, x0, x1, x2, x3, n):
    """(dot_lanes(x0, x0, n), ..., dot_lanes(x3, x3, n), fourth_lanes(x0, n), ..., fourth_lanes(x3, n)), bit for
    bit, in one pass: each product x_i x_i is formed once and serves both sums."""
    arrays = (x0, x1, x2, x3)
    for name, t in zip(("x0", "x1", "x2", "x3"), arrays):
        _check_array(name, t)
    return types.UniTuple(types.float64, 8)(*arrays, types.int64), _row_sums_codegen(4, squares=(0, 1, 2, 3))


def _axpy_signature(z, x, y=None):
    for name, t in (("z", z), ("x", x)) + ((("y", y),) if y is not None else ()):
        _check_array(name, t)
    if y is None:
        return types.void(z, x, types.float64, types.int64)
    return types.void(z, x, types.float64, y, types.float64, types.int64)


@intrinsic
def axpy_lanes(typingctx, z, x, c, n):
    """z_i = z_i + c x_i for i < n, 8-wide."""
    return _axpy_signature(z, x), _axpy_codegen(False, False)


@intrinsic
def axpy2_lanes(typingctx, z, x, c0, y, c1, n):
    """z_i = (z_i + c0 x_i) + c1 y_i for i < n, 8-wide."""
    return _axpy_signature(z, x, y), _axpy_codegen(True, False)


@intrinsic
def axpy_fresh_lanes(typingctx, z, x, c, n):
    """z_i = +0.0 + c x_i for i < n (``axpy_lanes`` on a zeroed z, without reading it), 8-wide."""
    return _axpy_signature(z, x), _axpy_codegen(False, True)


@intrinsic
def axpy2_fresh_lanes(typingctx, z, x, c0, y, c1, n):
    """z_i = (+0.0 + c0 x_i) + c1 y_i for i < n (``axpy2_lanes`` on a zeroed z, without reading it), 8-wide."""
    return _axpy_signature(z, x, y), _axpy_codegen(True, True)


@intrinsic
def float64_bits(typingctx, x):
    """The IEEE-754 bits of the float64 x as an int64 (a bit cast, no conversion)."""
    if x != types.float64:
        raise InputTypeError(f"x must be float64, got {x}")

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _I64)

    return types.int64(types.float64), codegen


@intrinsic
def float64_from_bits(typingctx, b):
    """The float64 whose IEEE-754 bits are the int64 b (a bit cast, no conversion)."""
    if b != types.int64:
        raise InputTypeError(f"b must be int64, got {b}")

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _DBL)

    return types.float64(types.int64), codegen


@numba.njit(inline="always")
def aligned_rows(rows, cols):
    """(rows, cols') float64 scratch, cols' = cols rounded up to a multiple of 8, every row starting on a 64-byte
    boundary, so that 8-wide vector loads and stores never straddle cache lines (misaligned rows made the gram
    kernel up to 20% slower, varying from network to network)."""
    stride = (cols + 7) // 8 * 8
    buf = np.empty(rows * stride + 8)
    off = ((64 - buf.ctypes.data % 64) % 64) // 8
    return buf[off:off + rows * stride].reshape((rows, stride))


# The LLVM function attribute that sets the loop vectoriser's preferred width for one function (X86: it overrides the
# subtarget's prefer-256-bit tuning; capped at the widest registers the target has).
_WIDE_ATTRIBUTE = '"prefer-vector-width"="512"'


def _user_prefers_256_bit() -> bool:
    """Whether the process was started with ``NUMBA_CPU_FEATURES`` asking for +prefer-256-bit (then respected)."""
    return "+prefer-256-bit" in (numba.config.CPU_FEATURES or "")


def prefer_wide_vectors() -> None:
    """Let LLVM vectorise the calling CPU function's loops at the CPU's widest vector width (a no-op in Python).

    Called first in a numba function (directly or from code inlined into it), it sets that function's LLVM attribute
    ``"prefer-vector-width"="512"``: on Intel's AVX-512 cores, whose LLVM tuning prefers 256-bit vectors, the loops
    LLVM vectorises in this function (the generator's passes, the activation, row loops) then use 512-bit registers
    (on CPUs without AVX-512 the widest they have, as before).  It changes no number: the vectorised loops are
    elementwise, with the same operations lane by lane (no FMA contraction, no reassociation); what it changes is
    speed (the generator ~1.4x on an AVX-512 Xeon).  Other numba functions of the process keep LLVM's choice.  A
    process started with ``NUMBA_CPU_FEATURES`` containing ``+prefer-256-bit`` keeps 256 bits everywhere.

    Examples
    --------
    >>> prefer_wide_vectors() is None
    True
    """
    return None


@intrinsic
def _set_wide_attribute(typingctx):
    def codegen(context, builder, sig, args):
        if not _user_prefers_256_bit():
            # llvmlite's attribute set only takes enumerated attributes; a string attribute is written as is
            set.add(builder.function.attributes, _WIDE_ATTRIBUTE)
        return context.get_dummy_value()

    return types.none(), codegen


@overload(prefer_wide_vectors, target="cpu", inline="always")
def _prefer_wide_vectors_cpu():
    # inlined (numba IR) into the caller, so that the intrinsic is lowered in, and marks, the calling function
    def impl():
        _set_wide_attribute()

    return impl
