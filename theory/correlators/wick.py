"""A small Wick-contraction engine and the symbolic layer-to-layer recursion of deep linear networks.

Gaussian weight entries ``W_{i j}`` with ``E[W_{i1 j1} W_{i2 j2}] = (C_W/n) delta_{i1 i2} delta_{j1 j2}``: the
expectation of a product of ``2m`` entries is the sum over the ``(2m-1)!!`` perfect pairings of the entries of
the product of Kronecker deltas (Wick / Isserlis).  Summing a product of deltas over a set of indices leaves
one factor ``n`` per connected class of summed indices that contains no free index.

Deep linear network, one input: if ``E[z_{j1} ... z_{j2m}]^{(l)} = (sum_pi delta_j(pi)) G_2m^{(l)}`` then

    E[z_{i1} ... z_{i2m}]^{(l+1)} = sum_{j} E[W_{i1 j1} ... W_{i2m j2m}] E[z_{j1} ... z_{j2m}]^{(l)}
                                  = sum_pi delta_i(pi) (C_W/n)^m sum_{pi'} n^{#classes(pi u pi')} G_2m^{(l)},

so ``G_2m^{(l+1)} = C_W^m c_2m(n_l) G_2m^{(l)}`` with ``c_2m(n) = n^{-m} sum_{pi'} n^{#classes(pi0 u pi')}`` for any
fixed pairing ``pi0`` of the output indices (:func:`derive_layer_recursion` computes the coefficient of every
output structure and checks they agree, which is the statement that the ansatz closes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Hashable, Iterator, Sequence

import sympy as sp

from sigprop.theory.arguments import integer_in_range
from sigprop.theory.errors import InputError

__all__ = [
    "n",
    "pairings",
    "wick_pairings",
    "contract",
    "derive_layer_recursion",
    "LayerRecursion",
    "wick_factor",
    "wick_factor_product",
    "closed_form",
    "inverse_width_series",
    "depth_to_width_limit",
    "MAX_M",
    "MAX_M_ALL_STRUCTURES",
]

#: The width symbol of every expression returned by this module.
n = sp.Symbol("n", positive=True)
_L = sp.Symbol("L", positive=True, integer=True)
_t = sp.Symbol("t", positive=True)  # t = L / n in the double-scaling limit

Pairing = tuple[tuple[int, int], ...]


def pairings(items: Sequence[int]) -> Iterator[Pairing]:
    """All perfect pairings of ``items`` (an even-length sequence), each as a tuple of ordered pairs.

    There are ``(2m-1)!!`` of them for ``2m`` items; pairs are listed with the first element of each pair
    in increasing order of position, so every pairing appears exactly once.
    """
    items = tuple(items)
    if len(items) % 2:
        raise InputError(f"pairings: need an even number of items, got {len(items)}")
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for k, partner in enumerate(rest):
        remaining = rest[:k] + rest[k + 1:]
        for sub in pairings(remaining):
            yield ((first, partner),) + sub


DeltaTerm = tuple[tuple[Hashable, Hashable], ...]


def wick_pairings(entries: Sequence[tuple[Hashable, Hashable]]) -> list[DeltaTerm]:
    """Wick's theorem for ``E[W_{r1 c1} ... W_{r2m c2m}]`` of i.i.d. centred Gaussian entries.

    ``entries`` lists the (row index, column index) symbols of each factor.  Returns one term per pairing:
    the tuple of Kronecker deltas ``(r_a, r_b), (c_a, c_b)`` it produces (each term carries the factor
    ``(C_W/n)^m``, not included here).  At most ``2 * MAX_M`` (14) entries: the list has ``(2m-1)!!`` terms
    (16 entries: 2027025 terms, GBs); iterate over :func:`pairings` lazily for more.
    """
    if len(entries) % 2:
        return []  # odd moments of centred Gaussians vanish
    if len(entries) > 2 * MAX_M:
        raise InputError(f"wick_pairings: entries must have at most {2 * MAX_M} items (m <= {MAX_M}), got "
                         f"{len(entries)}, which have {double_factorial_count(len(entries) // 2)} pairings; "
                         "iterate over pairings() lazily instead")
    terms = []
    for pi in pairings(range(len(entries))):
        deltas = []
        for a, b in pi:
            deltas.append((entries[a][0], entries[b][0]))
            deltas.append((entries[a][1], entries[b][1]))
        terms.append(tuple(deltas))
    return terms


def _classes(indices: Sequence[Hashable], deltas: Sequence[tuple[Hashable, Hashable]]) -> list[frozenset]:
    parent = {i: i for i in indices}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in deltas:
        for x in (a, b):
            parent.setdefault(x, x)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    groups: dict[Hashable, set] = {}
    for x in parent:
        groups.setdefault(find(x), set()).add(x)
    return [frozenset(g) for g in groups.values()]


def contract(deltas: Sequence[tuple[Hashable, Hashable]], summed: Sequence[Hashable], width=n):
    """Sum a product of Kronecker deltas over the indices ``summed``, each running over ``1..width``.

    Returns ``(factor, structure)``: ``factor = width^(number of classes made only of summed indices)`` and
    ``structure``, the frozenset of classes of free indices that the remaining deltas identify (classes of
    size one are dropped: they carry no delta).
    """
    summed_set = set(summed)
    indices = list(summed_set) + [x for d in deltas for x in d]
    power = 0
    free = []
    for cls in _classes(indices, deltas):
        f = cls - summed_set
        if not f:
            power += 1
        elif len(f) > 1:
            free.append(frozenset(f))
    return width**power, frozenset(free)


class _Power:
    """Stand-in width that records the exponent: ``_Power() ** k`` -> object with ``.k == k``."""

    def __init__(self, k: int = 1):
        self.k = k

    def __pow__(self, k: int) -> "_Power":
        return _Power(k)


@dataclass(frozen=True)
class LayerRecursion:
    """The derived recursion ``G_2m^{(l+1)} = C_W^m c_2m(n_l) G_2m^{(l)}`` for one ``m``.

    ``coefficients`` maps each output delta structure (a pairing of i1..i2m) to its coefficient
    ``c_2m(n)``; ``closes`` says whether all ``(2m-1)!!`` coefficients are equal (the ansatz closes).
    ``n_pairings`` is the number of Wick pairings of the ``2m`` weights.
    """

    m: int
    factor: sp.Expr
    n_pairings: int
    coefficients: dict
    closes: bool


#: Largest ``m`` the derivation accepts: ``(2*7-1)!! = 135135`` contractions, about 10 s and 0.25 GB on one
#: core; ``m = 8`` would be ``2027025`` contractions (15 times the time).
MAX_M = 7
#: Largest ``m`` for ``all_structures=True``, which makes ``(2m-1)!!**2`` contractions (893025 for m = 5).
MAX_M_ALL_STRUCTURES = 5


def _check_m(m, name: str, lo: int = 1, hi: int = MAX_M) -> int:
    """``m`` itself if it is an integer in ``[lo, hi]``; else ValueError naming ``name``, the range and the cost."""
    m = integer_in_range("m", m, lo, who=name)
    if m > hi:
        raise InputError(f"{name}: m must be <= {hi}, got {m}: the derivation contracts (2m-1)!! = "
                         f"{double_factorial_count(m)} Wick pairings (m = {hi}: {double_factorial_count(hi)}), "
                         f"which takes too long and too much memory; c_2m(n) = prod_(j<m) (1 + 2j/n) for larger m")
    return m


def derive_layer_recursion(m: int, all_structures: bool = False) -> LayerRecursion:
    """Derive ``c_2m(n)`` from Wick contractions of ``2m`` weights against the layer-l ansatz.

    Row (output) indices ``i1..i2m`` are free, column indices ``j1..j2m`` are summed over ``n`` values.
    The layer-l correlator is ``sum_{pi'} delta_j(pi') G_2m``.  For every Wick pairing ``pi`` of the
    weights and every ``pi'`` the deltas are contracted over the j's; the result is collected by the
    surviving delta structure on the i's.  By default only the pairing ``pi`` whose i-structure is the
    reference one (the only pairing that contributes to it) is expanded against all ``pi'``
    ((2m-1)!! contractions); with ``all_structures=True`` every output structure is computed
    ((2m-1)!!^2 contractions), which proves the closure of the ansatz.

    Parameters
    ----------
    m : int
        Half the order, ``1 <= m <= MAX_M`` (7: 135135 contractions, about 10 s on one core; m = 8 would
        take 15 times longer and several GB with the engine this module uses).
    all_structures : bool
        Compute every output structure; needs ``m <= MAX_M_ALL_STRUCTURES`` (5).

    Returns
    -------
    LayerRecursion
        The factor ``c_2m(n)``, the number of pairings, the coefficient of each computed structure.

    Raises
    ------
    ValueError
        ``m`` not an integer in range, before any work.
    """
    hi = MAX_M_ALL_STRUCTURES if all_structures else MAX_M
    if all_structures and isinstance(m, int) and not isinstance(m, bool) and m > hi:
        raise InputError(f"derive_layer_recursion: with all_structures=True m must be <= {hi}, got {m}: it makes "
                         f"(2m-1)!!^2 = {double_factorial_count(m) ** 2} contractions; use all_structures=False")
    return _derive(_check_m(m, "derive_layer_recursion", hi=hi), bool(all_structures))


@lru_cache(maxsize=None)
def _derive(m: int, all_structures: bool) -> LayerRecursion:
    # Plain strings as index labels (hashing SymPy symbols made the union-find 5x slower); the coefficients are
    # returned keyed by SymPy symbols i1..i2m.
    i = [f"i{k + 1}" for k in range(2 * m)]
    j = [f"j{k + 1}" for k in range(2 * m)]
    layer_l = [tuple((j[a], j[b]) for a, b in pi) for pi in pairings(range(2 * m))]
    reference_pairing = next(pairings(range(2 * m)))
    reference = frozenset(frozenset((i[a], i[b])) for a, b in reference_pairing)
    # The i-structure of a weight pairing is the pairing itself, so only the reference pairing contributes to
    # the reference structure.
    weight_pairings = pairings(range(2 * m)) if all_structures else iter([reference_pairing])
    coeffs: dict = {}
    for pi in weight_pairings:
        term = tuple(d for a, b in pi for d in ((i[a], i[b]), (j[a], j[b])))
        structure = frozenset(frozenset(d) for d in term[0::2])
        powers: dict[int, int] = {}  # power of n -> number of (pi, pi') contractions giving it
        for lower in layer_l:
            factor, free = contract(term + lower, j, width=_Power())
            if free != structure:
                raise AssertionError("contraction over j changed the i-structure")  # cannot happen: j's are summed
            powers[factor.k] = powers.get(factor.k, 0) + 1
        total = sum(c * n ** (k - m) for k, c in powers.items())
        coeffs[structure] = sp.expand(coeffs.get(structure, 0) + total)
    values = set(coeffs.values())
    factor = coeffs[reference]
    sym = {s: sp.Symbol(s) for s in i}
    coefficients = {frozenset(frozenset(sym[x] for x in pair) for pair in st): c for st, c in coeffs.items()}
    return LayerRecursion(m=m, factor=sp.expand(factor), n_pairings=double_factorial_count(m),
                          coefficients=coefficients, closes=(len(values) == 1))


def wick_factor(m: int) -> sp.Expr:
    """``c_2m(n)``: ``G_2m^{(l+1)} = C_W^m c_2m(n_l) G_2m^{(l)}`` for a deep linear network, derived by Wick
    contraction (:func:`derive_layer_recursion`), as an expanded SymPy polynomial in ``1/n``.

    ``wick_factor(1) = 1``, ``wick_factor(2) = 1 + 2/n``, ``wick_factor(3) = 1 + 6/n + 8/n**2``; in general it
    equals ``prod_{j<m} (1 + 2j/n)`` (the tests check this, it is not assumed).

    Examples
    --------
    >>> wick_factor(2), wick_factor(3)
    (1 + 2/n, 1 + 6/n + 8/n**2)
    """
    return _derive(_check_m(m, "wick_factor"), False).factor


def wick_factor_product(m: int) -> sp.Expr:
    """The factored form of :func:`wick_factor` (SymPy ``factor`` of the derived expression)."""
    return sp.factor(wick_factor(m))


def closed_form(m: int, widths: Sequence | None = None):
    """Solution of the recursion over layers: ``G_2m^{(l)} = [prod_{l'<l} c_2m(n_l')] (G_2^{(l)})^m``.

    With ``widths=None`` returns the equal-width form as a SymPy expression in ``n`` and the layer symbol
    ``L``: ``c_2m(n)^(L-1) * G2**m`` with ``G2`` the symbol of ``G_2^{(L)}``; with explicit widths
    (numbers or symbols, of layers 1..l-1) returns the product for that list.
    """
    c = wick_factor(_check_m(m, "closed_form"))
    G2 = sp.Symbol("G2", positive=True)
    if widths is None:
        return c ** (_L - 1) * G2**m
    return sp.Mul(*[c.subs(n, w) for w in widths]) * G2**m


def inverse_width_series(m: int, order: int = 2, depth=None) -> sp.Expr:
    """Expansion of ``G_2m^{(L)} / (G_2^{(L)})^m = c_2m(n)^(L-1)`` in ``1/n`` to ``O(1/n^order)`` (exclusive).

    Leading term: ``1 + m(m-1)(L-1)/n``.  ``depth`` substitutes a number for ``L``.
    """
    c = wick_factor(_check_m(m, "inverse_width_series"))
    eps = sp.Symbol("epsilon", positive=True)
    L = _L if depth is None else sp.Integer(depth)
    expr = (c.subs(n, 1 / eps)) ** (L - 1)
    ser = sp.expand(sp.series(expr, eps, 0, order).removeO())
    return sp.Add(*[sp.factor(ser.coeff(eps, k)) / n**k for k in range(order)])


def depth_to_width_limit(m: int) -> sp.Expr:
    """Double-scaling limit ``n, L -> inf`` at fixed ``t = L/n`` of ``c_2m(n)^(L-1)``: ``exp(m(m-1) t)``.

    Computed by SymPy as ``exp(lim_{n->inf} (t n - 1) log c_2m(n))``; returned in the symbol ``t``.
    """
    c = wick_factor(_check_m(m, "depth_to_width_limit"))
    expo = sp.limit((_t * n - 1) * sp.log(c), n, sp.oo)
    return sp.exp(sp.simplify(expo))


def double_factorial_count(m: int) -> int:
    """``(2m-1)!!``, the number of pairings of 2m objects (for reporting)."""
    return math.prod(range(1, 2 * m, 2))
