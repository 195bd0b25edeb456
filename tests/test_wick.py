"""Wick-contraction engine and the derived deep-linear recursion factors c_2m(n)."""
import math

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st
from _hyp import examples

from sigprop.theory.correlators import wick
from sigprop.theory.correlators.wick import (closed_form, contract, depth_to_width_limit, derive_layer_recursion,
                                             inverse_width_series, n, pairings, wick_factor, wick_pairings)


def test_width_symbol_is_positive_n():
    assert isinstance(n, sp.Symbol) and n.name == "n" and n.is_positive
    assert wick_factor(2).free_symbols == {n}


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5])
def test_wick_factor_matches_product_formula(m):
    expected = sp.Mul(*[1 + sp.Integer(2 * j) / n for j in range(m)])
    assert sp.simplify(wick_factor(m) - expected) == 0


def test_low_orders_explicit():
    assert sp.expand(wick_factor(2) - (1 + 2 / n)) == 0
    assert sp.expand(wick_factor(3) - (1 + 6 / n + 8 / n**2)) == 0


@pytest.mark.parametrize("m", [2, 3, 4])
def test_ansatz_closes_for_every_output_structure(m):
    rec = derive_layer_recursion(m, all_structures=True)
    assert rec.n_pairings == math.prod(range(1, 2 * m, 2))
    assert len(rec.coefficients) == rec.n_pairings
    assert rec.closes
    assert sp.simplify(rec.factor - wick_factor(m)) == 0


@settings(max_examples=examples(20), deadline=None)
@given(st.integers(min_value=0, max_value=5))
def test_pairings_are_distinct_perfect_matchings(m):
    ps = list(pairings(range(2 * m)))
    assert len(ps) == math.prod(range(1, 2 * m, 2))
    assert len(set(ps)) == len(ps)
    for p in ps:
        assert sorted(x for pair in p for x in pair) == list(range(2 * m))


def test_contract_simple_cases():
    f, free = contract([("j1", "j2"), ("j1", "j2")], ["j1", "j2"])
    assert f == n and free == frozenset()
    f, free = contract([("i", "j"), ("j", "k")], ["j"])
    assert f == 1 and free == frozenset({frozenset({"i", "k"})})
    f, free = contract([], ["a", "b", "c"])
    assert f == n**3


def test_wick_pairings_odd_vanish_and_even_count():
    assert wick_pairings([("i1", "j1"), ("i2", "j2"), ("i3", "j3")]) == []
    terms = wick_pairings([("i1", "j1"), ("i2", "j2"), ("i3", "j3"), ("i4", "j4")])
    assert len(terms) == 3 and all(len(t) == 4 for t in terms)


def test_closed_form_and_expansions():
    L = sp.Symbol("L", positive=True, integer=True)
    G2 = sp.Symbol("G2", positive=True)
    assert sp.simplify(closed_form(2) - (1 + 2 / n) ** (L - 1) * G2**2) == 0
    assert sp.simplify(closed_form(2, [4, 8]) - sp.Rational(3, 2) * sp.Rational(5, 4) * G2**2) == 0
    for m in (2, 3, 5):
        ser = inverse_width_series(m, order=2)
        assert sp.simplify(ser - (1 + m * (m - 1) * (L - 1) / n)) == 0
        assert depth_to_width_limit(m) == sp.exp(m * (m - 1) * sp.Symbol("t", positive=True))
    # second order of c_4^(L-1): binomial coefficient 4 C(L-1, 2)
    ser = inverse_width_series(2, order=3)
    assert sp.simplify(ser - (1 + 2 * (L - 1) / n + 2 * (L - 1) * (L - 2) / n**2)) == 0


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, "2"])
def test_bad_m(bad):
    with pytest.raises(ValueError, match="m must be an integer"):
        wick_factor(bad)


def test_odd_number_of_items_rejected():
    with pytest.raises(ValueError, match="even number"):
        list(pairings([1, 2, 3]))


def test_cli_subcommands(capsys):
    from sigprop.validation.cli import main

    assert main(["correlators", "wick", "--m", "3", "--show-contractions"]) == 0
    out = capsys.readouterr().out
    assert "c_6(n) = n^-3 x (sum) = 1 + 6/n + 8/n**2" in out and out.count("--sum_j-->") == 15
    assert main(["correlators", "deep-linear", "--m", "2", "--widths", "4x3"]) == 0
    last = lambda: capsys.readouterr().out.strip().splitlines()[-1].split()  # noqa: E731
    assert last()[-1] == "2.25"  # G4/G2^2 = (1 + 2/4)^2 at layer 3
    assert main(["correlators", "relu", "--m", "2", "--widths", "5,5,5"]) == 0
    assert last()[-1] == "4"  # (1 + 5/5)^2 at layer 3
    assert main(["correlators", "vertex", "--activation", "relu", "--widths", "8x3", "--C_W", "2"]) == 0
    assert last()[4] == "40"  # V = 5 (l-1) K^2 = 40 at layer 3, K = 2
    assert main(["correlators", "multi", "--activation", "identity", "--widths", "8x2", "--C_W", "1",
                 "--G0", "1,0.5,1"]) == 0
    assert "V_(11)(..) = (11):2" in capsys.readouterr().out
    assert main(["correlators", "deep-linear", "--widths", "8,x"]) == 2
    assert "--widths" in capsys.readouterr().err
