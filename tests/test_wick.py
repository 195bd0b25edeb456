"""Wick-contraction engine and the derived deep-linear recursion factors c_2m(n)."""
import math

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from _hyp import examples
from sigprop.theory.correlators import wick
from sigprop.theory.correlators.wick import (
    closed_form,
    contract,
    depth_to_width_limit,
    derive_layer_recursion,
    inverse_width_series,
    n,
    pairings,
    wick_factor,
    wick_pairings,
)


def test_width_symbol_is_positive_n():
    assert isinstance(n, sp.Symbol) and n.name == "n" and n.is_positive
    assert wick_factor(2).free_symbols == {n}


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
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
    assert main(["correlators", "vertex", "--activation", "relu", "--widths", "8x3", "--C-W", "2"]) == 0
    assert last()[4] == "40"  # V = 5 (l-1) K^2 = 40 at layer 3, K = 2
    assert main(["correlators", "multi", "--activation", "identity", "--widths", "8x2", "--C-W", "1",
                 "--G0", "1,0.5,1"]) == 0
    assert "V_(11)(..) = (11):2" in capsys.readouterr().out
    assert main(["correlators", "deep-linear", "--widths", "8,x"]) == 2
    assert "--widths" in capsys.readouterr().err


# --- m is limited before any work (`correlators wick --m 8` ran for minutes past 2.9 GB) ------------------


@pytest.fixture
def no_work(monkeypatch):
    """Every derivation starts by enumerating pairings: make that fail the test, so a refusal must come first."""
    def boom(items):
        pytest.fail("the Wick derivation started")
        yield ()  # pragma: no cover

    monkeypatch.setattr(wick, "pairings", boom)


@pytest.mark.parametrize("fn", [wick_factor, derive_layer_recursion, closed_form, depth_to_width_limit,
                                lambda m: inverse_width_series(m, order=2)])
def test_m_above_the_limit_is_refused_before_work(no_work, fn):
    assert wick.MAX_M == 7
    with pytest.raises(ValueError, match=r"m must be <= 7, got 8: .*2027025 Wick pairings"):
        fn(wick.MAX_M + 1)


def test_the_limit_itself_is_accepted():
    assert wick._check_m(wick.MAX_M, "test") == wick.MAX_M
    assert wick._check_m(wick.MAX_M_ALL_STRUCTURES, "test", hi=wick.MAX_M_ALL_STRUCTURES) == 5


def test_all_structures_has_its_own_limit(no_work):
    with pytest.raises(ValueError, match=r"all_structures=True m must be <= 5, got 6"):
        derive_layer_recursion(6, all_structures=True)


def test_wick_pairings_refuses_more_than_14_entries_but_odd_still_vanish():
    entries = [(f"i{k}", f"j{k}") for k in range(16)]
    with pytest.raises(ValueError, match=r"at most 14 items \(m <= 7\), got 16"):
        wick_pairings(entries)
    assert wick_pairings(entries[:15]) == []


def test_coefficients_are_keyed_by_sympy_index_symbols():
    rec = derive_layer_recursion(3, all_structures=True)
    i = [sp.Symbol(f"i{k + 1}") for k in range(6)]
    ref = frozenset({frozenset({i[0], i[1]}), frozenset({i[2], i[3]}), frozenset({i[4], i[5]})})
    assert rec.coefficients[ref] == rec.factor and rec.n_pairings == 15


def test_cli_refuses_m_above_the_limit_before_work_and_help_says_it(no_work, capsys):
    from sigprop.validation.cli import main

    assert main(["correlators", "wick", "--m", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--m must be in 1..7, got 8" in err
    with pytest.raises(SystemExit) as exc:
        main(["correlators", "wick", "--help"])
    assert exc.value.code == 0
    assert "1 <= m <= 7" in " ".join(capsys.readouterr().out.split())
