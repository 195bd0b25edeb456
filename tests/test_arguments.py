"""The shared argument checks (sigprop.theory.arguments): accepted values come back in their canonical type, every
refusal is an InputError/InputTypeError naming the argument, the allowed range and the value; the public entries of
theory, kernels and validation use them instead of private copies."""
from __future__ import annotations

import math
import pathlib
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory.arguments import (
    flag,
    integer_in_range,
    nonnegative_real,
    numeric_array,
    one_of,
    positive_real,
    real_in_range,
)
from sigprop.theory.errors import InputError, InputTypeError

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOUNDS = st.one_of(st.none(), st.integers(-50, 50))


# --- integer_in_range ------------------------------------------------------------------------------------------
@settings(max_examples=examples(200))
@given(value=st.integers(-100, 100), lo=st.integers(-50, 50), hi=BOUNDS)
def test_integer_in_range_accepts_exactly_the_range(value, lo, hi):
    inside = value >= lo and (hi is None or value <= hi)
    if inside:
        out = integer_in_range("k", np.int64(value), lo, hi)
        assert out == value and type(out) is int
    else:
        want = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        with pytest.raises(InputError, match=re.escape(f"demo: k must be an integer {want}, got")):
            integer_in_range("k", value, lo, hi, who="demo")


@pytest.mark.parametrize("value", [True, 2.0, "2", None, np.float64(2.0)])
def test_integer_in_range_refuses_non_integers_by_type(value):
    with pytest.raises(InputTypeError, match=r"^k must be an integer in \[1, 4\], got "):
        integer_in_range("k", value, 1, 4)


# --- real_in_range, positive_real, nonnegative_real ------------------------------------------------------------
@settings(max_examples=examples(200))
@given(value=st.floats(allow_nan=True, allow_infinity=True), lo_open=st.booleans(), hi_open=st.booleans())
def test_real_in_range_accepts_exactly_the_finite_range(value, lo_open, hi_open):
    above = value > -1 if lo_open else value >= -1
    inside = math.isfinite(value) and above and (value < 2 if hi_open else value <= 2)
    if inside:
        assert real_in_range("x", value, -1, 2, lo_open=lo_open, hi_open=hi_open) == value
    else:
        text = f"{'(' if lo_open else '['}-1, 2{')' if hi_open else ']'}"
        with pytest.raises(InputError, match=re.escape(f"f: x must be finite and in {text}, got")):
            real_in_range("x", value, -1, 2, lo_open=lo_open, hi_open=hi_open, who="f")


@settings(max_examples=examples(100))
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_positive_and_nonnegative_real(value):
    for check, ok, text in ((positive_real, value > 0, "> 0"), (nonnegative_real, value >= 0, ">= 0")):
        if math.isfinite(value) and ok:
            assert check("C", value) == value
        else:
            with pytest.raises(InputError, match=re.escape(f"C must be finite and {text}, got")):
                check("C", value)


@pytest.mark.parametrize("value", [True, "1", None, 1j, [1.0]])
def test_real_checks_refuse_non_reals_by_type(value):
    with pytest.raises(InputTypeError, match=r"^g: C_W must be a real number > 0, got "):
        positive_real("C_W", value, "g")
    with pytest.raises(InputTypeError, match=r"^t must be a real number in \[0, 1\), got "):
        real_in_range("t", value, 0, 1, hi_open=True)


def test_one_sided_upper_bound_and_no_bound():
    assert real_in_range("x", -5.0, hi=0.0) == -5.0
    with pytest.raises(InputError, match=r"^x must be finite and < 0, got 0.0$"):
        real_in_range("x", 0.0, hi=0.0, hi_open=True)
    with pytest.raises(InputError, match=r"^x must be finite, got nan$"):
        real_in_range("x", math.nan)


# --- flag, one_of, numeric_array -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_flag_accepts_bools(value):
    out = flag("b", value)
    assert out == bool(value) and type(out) is bool


@pytest.mark.parametrize("value", [0, 1, "yes", None, np.array([True])])
def test_flag_refuses_truthy_non_bools(value):
    with pytest.raises(InputTypeError, match=r"^w: b must be True or False, got "):
        flag("b", value, "w")


def test_one_of_returns_the_choice_and_lists_them():
    assert one_of("norm", None, (None, "ln_pre")) is None
    out = one_of("loss", np.str_("mse"), ("mse", "cross_entropy"))
    assert out == "mse" and type(out) is str
    with pytest.raises(InputError, match=r"^loss must be one of \('mse', 'cross_entropy'\), got 'l1'$"):
        one_of("loss", "l1", ("mse", "cross_entropy"))


@pytest.mark.parametrize("value", [1, True, np.array(["mse"]), ["mse"], None])
def test_one_of_refuses_other_types_without_comparing_them_loosely(value):
    with pytest.raises(InputTypeError, match=r"^f: loss must be one of \('mse', 'cross_entropy'\), got "):
        one_of("loss", value, ("mse", "cross_entropy"), "f")


def test_one_of_never_takes_a_bool_for_a_number():
    assert one_of("order", 1, (0, 1, 2)) == 1
    with pytest.raises(InputTypeError, match="order must be one of"):
        one_of("order", True, (0, 1, 2))


def test_numeric_array_keeps_the_dtype_and_refuses_non_numbers():
    a = np.ones(3, dtype=np.float32)
    assert numeric_array(a, "W") is a
    for bad in ([True, False], ["a"], [1j], None, "12", [[1.0], [1.0, 2.0]]):
        with pytest.raises(InputTypeError, match=r"^m: W must be a real numeric array"):
            numeric_array(bad, "W", "m")


# --- the public entries use them -------------------------------------------------------------------------------
PRIVATE_COPIES = re.compile(r"^def (_check_int|_positive_int|_positive|_int|_check_nonneg|_check_real|_real_array|"
                            r"_flag|_check_loss|_check_definition|_check_cw_cb|_zmax)\(", re.M)


def test_no_private_copy_of_a_shared_check_is_left():
    found = [f"{p.relative_to(ROOT)}: {m.group(1)}" for folder in ("theory", "kernels", "validation")
             for p in sorted((ROOT / folder).rglob("*.py")) for m in PRIVATE_COPIES.finditer(p.read_text())]
    # rfm's _real_array accepts bool arrays (0/1 features); it is the one array reader that does
    assert found == ["kernels/learning/rfm.py: _real_array"]


def test_check_explicit_args_moved_out_of_the_reference_engine():
    import sigprop.kernels.reference as reference
    from sigprop.kernels.engine_arguments import check_explicit_args

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = reference.check_explicit_args
    assert old is check_explicit_args
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "sigprop.kernels.engine_arguments.check_explicit_args" in str(caught[0].message)
    assert "check_explicit_args" not in reference.__all__
    with pytest.raises(AttributeError):
        reference.no_such_name  # noqa: B018


EXPLICIT = dict(X=[[1.0, 0.0]], widths=(4,), C_W=2.0, C_b=0.0, n_networks=2, seed=0, weights="gaussian",
                residual=0.0, norm=None, backward=False)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(widths=(4.5,)), InputTypeError, r"^widths\[0\] must be an integer >= 1, got float 4.5"),  # was cut to 4
    (dict(widths=4), InputTypeError, r"^widths must be a sequence of ints >= 1"),
    (dict(widths=()), InputError, r"^widths must have between 1 and 2\^24 - 2 entries"),
    (dict(C_W=-1.0), InputError, r"^C_W must be finite and >= 0, got -1.0"),
    (dict(C_b="0"), InputTypeError, r"^C_b must be a real number >= 0"),
    (dict(n_networks=0), InputError, r"^n_networks must be an integer in \[1, 4294967296\], got 0"),
    (dict(first_network=2**32 - 1), InputError, r"^first_network must be an integer in \[0, 4294967294\]"),
    (dict(seed=-1), InputError, r"^seed must be an int in \[0, 2\^64\)"),
    (dict(weights="cauchy"), InputError, r"^weights must be one of \('gaussian', 'rademacher', 'uniform'\)"),
    (dict(residual=1.5), InputError, r"^residual must be finite and in \[0, 1\], got 1.5"),
    (dict(norm="batch"), InputError, r"^norm must be one of \(None, 'rms_pre'"),
    (dict(backward=1), InputTypeError, r"^backward must be True or False, got int 1"),
])
def test_explicit_engine_arguments_name_the_argument_and_range(kw, exc, match):
    from sigprop.kernels.engine_arguments import check_explicit_args

    with pytest.raises(exc, match=match):
        check_explicit_args(**{**EXPLICIT, **kw})


def test_former_copies_now_refuse_by_type_and_accept_numpy_integers():
    from sigprop.theory.correlators.wick import wick_factor
    from sigprop.theory.meanfield import kernel_recursion

    assert wick_factor(np.int64(2)) == wick_factor(2)  # an integer m, as any other public count
    with pytest.raises(InputTypeError, match=r"^kernel_recursion: C_W must be a real number > 0, got str '2'"):
        kernel_recursion("relu", np.eye(2), 2, C_W="2")
    with pytest.raises(InputError, match=r"^kernel_recursion: C_b must be finite and >= 0, got -1.0"):
        kernel_recursion("relu", np.eye(2), 2, C_W=2.0, C_b=-1.0)


def test_suite_arguments_refuse_a_non_number_family_level_as_an_input_error(tmp_path):
    from sigprop.validation import runner

    with pytest.raises(InputTypeError, match=r"^family_level must be a real number in \(0, 1\), got str"):
        runner.run_suite(out_dir=tmp_path, experiments=[], progress=False, family_level="0.9")
