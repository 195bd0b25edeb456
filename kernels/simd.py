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
from numba.extending import intrinsic

from sigprop.theory.errors import InputTypeError

__all__ = ["LANES", "dot_lanes", "fourth_lanes", "float64_bits", "float64_from_bits", "aligned_rows"]

LANES = 8
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_DBL = ir.DoubleType()
_VEC = ir.VectorType(_DBL, LANES)
_ZEROS = ir.Constant(_VEC, [0.0] * LANES)


def _check_array(name: str, t) -> None:
    if not (isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C" and t.dtype == types.float64):
        raise InputTypeError(f"{name} must be a 1-D C-contiguous float64 array, got {t}")


def _lane_sum_codegen(fourth: bool):
    """Code generator of the lane sum of p_i = x_i y_i (fourth=False) or (x_i x_i)(x_i x_i) (fourth=True)."""

    def codegen(context, builder, sig, args):
        if fourth:
            xa, n = args
            xp = context.make_array(sig.args[0])(context, builder, xa).data
            yp = xp
        else:
            xa, ya, n = args
            xp = context.make_array(sig.args[0])(context, builder, xa).data
            yp = context.make_array(sig.args[1])(context, builder, ya).data

        def product(vx, vy):
            if fourth:
                v2 = builder.fmul(vx, vx)
                return builder.fmul(v2, v2)
            return builder.fmul(vx, vy)

        def load_vec(ptr, off):
            # align=1: NumPy arrays may be unaligned (numba types them as aligned); on x86 this is the same
            # vmovupd as for aligned data (kernels pass 64-byte aligned rows, see aligned_rows)
            return builder.load(builder.bitcast(builder.gep(ptr, [off]), _VEC.as_pointer()), align=1)

        acc = cgutils.alloca_once_value(builder, _ZEROS)
        nblocks = builder.sdiv(n, ir.Constant(_I64, LANES))
        with cgutils.for_range(builder, nblocks) as loop:
            off = builder.mul(loop.index, ir.Constant(_I64, LANES))
            vx = load_vec(xp, off)
            vy = vx if fourth else load_vec(yp, off)
            builder.store(builder.fadd(builder.load(acc), product(vx, vy)), acc)
        # the last n mod 8 elements, from zero-padded copies
        base = builder.mul(nblocks, ir.Constant(_I64, LANES))
        tx = cgutils.alloca_once_value(builder, _ZEROS)
        ty = tx if fourth else cgutils.alloca_once_value(builder, _ZEROS)
        txp = builder.bitcast(tx, _DBL.as_pointer())
        typ = builder.bitcast(ty, _DBL.as_pointer())
        with cgutils.for_range(builder, builder.sub(n, base)) as loop:
            i = builder.add(base, loop.index)
            builder.store(builder.load(builder.gep(xp, [i])), builder.gep(txp, [loop.index]))
            if not fourth:
                builder.store(builder.load(builder.gep(yp, [i])), builder.gep(typ, [loop.index]))
        vx = builder.load(tx)
        lanes = builder.fadd(builder.load(acc), product(vx, vx if fourth else builder.load(ty)))
        s = [builder.extract_element(lanes, ir.Constant(_I32, r)) for r in range(LANES)]
        left = builder.fadd(builder.fadd(s[0], s[1]), builder.fadd(s[2], s[3]))
        right = builder.fadd(builder.fadd(s[4], s[5]), builder.fadd(s[6], s[7]))
        return builder.fadd(left, right)

    return codegen


@intrinsic
def dot_lanes(typingctx, x, y, n):
    """sum_i x_i y_i (i < n) in the fixed 8-lane order of the module docstring."""
    _check_array("x", x)
    _check_array("y", y)
    return types.float64(x, y, types.int64), _lane_sum_codegen(False)


@intrinsic
def fourth_lanes(typingctx, x, n):
    """sum_i (x_i x_i)(x_i x_i) (i < n) in the fixed 8-lane order of the module docstring."""
    _check_array("x", x)
    return types.float64(x, types.int64), _lane_sum_codegen(True)


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
