"""The multi-input four-point vertex ``V_(ab)(cd)`` at leading order in 1/n, for any number P of inputs.

The recursion is the one of :mod:`.multi_input` (book eq. 4.90 in the notation of docs/correlators.md, section 4):

    kappa^{(l+1)}_{(ab)(cd)} = (C_W^2/n_l) [<phi_a phi_b phi_c phi_d>_K - <phi_a phi_b>_K <phi_c phi_d>_K]
                             + C_W^2 sum_{(ef),(gh)} D_{(ab),(ef)} D_{(cd),(gh)} kappa^{(l)}_{(ef)(gh)},

``D_{(ab),(ef)} = d<phi_a phi_b>_K / dK_ef`` over the independent entries ``e <= f``, ``V^{(l)} = n_{l-1} kappa^{(l)}``.
What changes with P is only the Gaussian expectations: the four-point term needs up to four distinct inputs, which
:func:`sigprop.theory.gaussian_products.product_expectation` computes (exact or ~1e-12; singular sub-kernels of
repeated inputs handled).  ``D`` depends only on the (a, b) marginal of K:

* ``a != b``, ``(e, f) = (a, b)``: Price's theorem, ``<phi'_a phi'_b>``;
* ``(e, f) = (a, a)``, phi smooth with a SymPy form: ``<phi''_a phi_b>/2`` (``a = b``: ``<phi'^2> + <phi phi''>``),
  free of cancellation;
* ``(e, f) = (a, a)``, phi with kinks: the score weight ``w_aa = ((K^-1 z)_a^2 - (K^-1)_aa)/2`` of the 2x2 block (a, b)
  (:func:`.multi_input.derive_score_weights`), i.e. ``sum_cd (K^-1)_ac (K^-1)_ad <phi_a phi_b z_c z_d>/2 -
  (K^-1)_aa <phi_a phi_b>/2``; for ``a = b`` the one-input form ``(<phi^2 z^2>/K^2 - <phi^2>/K)/2``.

Kinked activations need no derivative of phi beyond the first.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from sigprop.theory.arguments import nonnegative_real, numeric_array, positive_real, real_array
from sigprop.theory.errors import InputError

from ..activations import Activation, as_activation
from ..gaussian_products import product_expectation
from .deep_linear import validate_widths
from .multi_input import MultiVertexResult, pair_index

__all__ = ["vertex_any_p", "MAX_INPUTS"]

MAX_INPUTS = 12  # P(P+1)/2 = 78 pairs: 78 x 78 matrices per layer and 1365 four-point expectations


class LayerExpectations:
    """Cached Gaussian expectations at one kernel K, indexed by input tuples."""

    def __init__(self, phi: Activation, K: np.ndarray):
        self.phi, self.K = phi, K
        self._cache: dict = {}

    def prod(self, idx: tuple[int, ...], orders: tuple[int, ...] | None = None,
             poly: tuple[int, ...] = ()) -> float:
        """``E[prod_j phi^(orders_j)(z_idx_j) prod_p z_poly_p]`` (phi factors on ``idx``, identity on ``poly``)."""
        orders = (0,) * len(idx) if orders is None else orders
        key = (tuple(sorted(zip(idx, orders))), tuple(sorted(poly)))
        if key not in self._cache:
            every = list(idx) + list(poly)
            factors = [(self.phi, o) for o in orders] + [("identity", 0)] * len(poly)
            self._cache[key] = product_expectation(factors, self.K[np.ix_(every, every)])
        return self._cache[key]


def derivative_matrix(E: LayerExpectations, pairs: list[tuple[int, int]]) -> np.ndarray:
    """``D_{(ab),(ef)} = d<phi_a phi_b>_K / dK_ef`` (independent entries e <= f)."""
    K = E.K
    smooth = not E.phi.kinks and E.phi.sympy_builder is not None
    D = np.zeros((len(pairs), len(pairs)))
    where = {p: i for i, p in enumerate(pairs)}
    for p, (a, b) in enumerate(pairs):
        if a == b:
            k = K[a, a]
            if smooth:  # d<phi^2>/dK = <phi'^2> + <phi phi''>
                D[p, where[(a, a)]] = E.prod((a, a), orders=(1, 1)) + E.prod((a, a), orders=(0, 2))
            else:
                D[p, where[(a, a)]] = 0.5 * (E.prod((a, a), poly=(a, a)) / k**2 - E.prod((a, a)) / k)
            continue
        D[p, where[(a, b)]] = E.prod((a, b), orders=(1, 1))
        if smooth:  # d<phi_a phi_b>/dK_aa = <phi''_a phi_b>/2
            D[p, where[(a, a)]] = 0.5 * E.prod((a, b), orders=(2, 0))
            D[p, where[(b, b)]] = 0.5 * E.prod((a, b), orders=(0, 2))
            continue
        inv = np.linalg.inv(K[np.ix_((a, b), (a, b))])
        idx = (a, b)
        for e, row in ((a, 0), (b, 1)):
            acc = sum(inv[row, c] * inv[row, d] * E.prod((a, b), poly=(idx[c], idx[d]))
                      for c in range(2) for d in range(2))
            D[p, where[(e, e)]] = 0.5 * (acc - inv[row, row] * E.prod((a, b)))
    return D


def _layer(phi: Activation, K: np.ndarray, pairs: list[tuple[int, int]]):
    """Connected four-point matrix C, derivative matrix D and the next mean <phi_a phi_b> at kernel K."""
    E = LayerExpectations(phi, K)
    P = K.shape[0]
    mean = np.empty((P, P))
    for a in range(P):
        for b in range(a, P):
            mean[a, b] = mean[b, a] = E.prod((a, b))
    n = len(pairs)
    C = np.empty((n, n))
    for p, (a, b) in enumerate(pairs):
        for q in range(p, n):
            c, d = pairs[q]
            C[p, q] = C[q, p] = E.prod((a, b, c, d)) - mean[a, b] * mean[c, d]
    return C, derivative_matrix(E, pairs), mean


def four_point_count(P: int) -> int:
    """Distinct four-point expectations ``<phi_a phi_b phi_c phi_d>`` of one layer: multisets of 4 of P inputs."""
    return math.comb(P + 3, 4)


def check_widths(widths, who: str) -> np.ndarray:
    """Hidden-layer widths (:func:`.deep_linear.validate_widths`), after refusing strings, bools and complex
    numbers (:func:`sigprop.theory.arguments.numeric_array`), which it would convert."""
    numeric_array(widths, "widths", who)
    return validate_widths(widths)


def check_input_gram(G0, who: str = "vertex_any_p", max_inputs: int = MAX_INPUTS,
                     expectations: Callable[[int], int] = four_point_count) -> np.ndarray:
    """The input Gram as a finite, symmetric, positive definite (P, P) float64 matrix, ``1 <= P <= max_inputs``,
    else an error naming ``who``'s ``G0``; beyond the bound the message says the work it would need
    (``expectations(P)`` four-point expectations per layer), before any work."""
    G = np.array([[1.0]]) if G0 is None else real_array(G0, "G0", who, (0, 1, 2))
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 1:
        raise InputError(f"{who}: G0 must be a square (P, P) matrix with 1 <= P <= {max_inputs}, got shape {G.shape}")
    P = G.shape[0]
    if P > max_inputs:
        n4, npairs = expectations(P), P * (P + 1) // 2
        raise InputError(f"{who}: G0 must be (P, P) with 1 <= P <= {max_inputs}, got P = {P}: every layer would "
                         f"need {n4} four-point Gaussian expectations (4-D integrals, ~0.1 s each for a closed-form "
                         f"activation, seconds for others: ~{n4 * 0.1 / 60:.0f} min to {n4 * 5 / 3600:.1f} h per "
                         f"layer) and {npairs}x{npairs} pair matrices ({npairs**2 * 8 / 2**20:.2g} MiB each)")
    if not np.allclose(G, G.T, rtol=1e-12, atol=0.0):
        raise InputError(f"{who}: G0 must be symmetric, got max |G0 - G0^T| = {float(np.max(np.abs(G - G.T))):.3g}")
    low = float(np.linalg.eigvalsh(G)[0])
    if low <= 0:
        raise InputError(f"{who}: G0 must be positive definite (the score weights use the inverse of every 2x2 block "
                         f"of the kernel), got smallest eigenvalue {low:.6g}")
    return G


def check_initial_kernels(who: str, **kernels: np.ndarray) -> None:
    """Refuse a first-layer kernel (``C_b + C_W G0``, ...) that overflows float64, naming its formula."""
    for formula, K in kernels.items():
        if not np.all(np.isfinite(K)):
            raise InputError(f"{who}: the first-layer kernel {formula} overflows float64 (max |G0 entry| times the "
                             f"variance or learning rate must stay below ~1.8e308)")


def check_continuous(phi: Activation, who: str, needs: str) -> None:
    """Refuse an activation with jumps: its derivative is a delta mass, so ``needs`` are not defined."""
    if phi.jumps:
        raise InputError(f"{who}: activation {phi.label} is discontinuous (jumps at {phi.jumps}): sigma' is a delta "
                         f"mass there, so {needs} are not defined (allowed: continuous activations, kinks included; "
                         f"the infinite-width kernel K needs sigma only: theory.meanfield.kernel_recursion)")


def check_pairs_nondegenerate(K: np.ndarray, layer: int, who: str = "vertex_any_p") -> None:
    P = K.shape[0]
    for a in range(P):
        for b in range(a + 1, P):
            rho = K[a, b] / math.sqrt(K[a, a] * K[b, b])
            if not abs(rho) < 1 - 1e-9:
                raise InputError(f"{who}: the kernel of inputs {a} and {b} became degenerate at layer "
                                 f"{layer} (correlation {rho!r})")


def vertex_any_p(activation, widths: Sequence[int], C_W: float, C_b: float = 0.0, G0=None) -> MultiVertexResult:
    """Leading-order recursion of ``K^{(l)}`` and ``V^{(l)}_{(ab)(cd)}`` for P >= 1 inputs.

    Parameters
    ----------
    activation : str or Activation
        Any continuous activation (a jump has no ``D``).
    widths : sequence of int
        ``widths[i]`` is the width of hidden layer ``i + 1`` (each >= 1).
    C_W, C_b : float
        Weight variance (> 0) and bias variance (>= 0).
    G0 : array_like, shape (P, P), optional
        The input Gram ``X X^T / n_0``, positive definite, ``P <= MAX_INPUTS`` (default ``[[1]]``);
        ``K^{(1)} = C_b + C_W G0``.

    Returns
    -------
    MultiVertexResult
        ``K`` (L, P, P), ``kappa`` and ``V = n_{l-1} kappa`` (L, npairs, npairs) over :func:`pair_index` pairs,
        index 0 = hidden layer 1 (where both vanish).  Equal to :func:`multi_input_vertex_recursion` for P <= 2.

    Raises
    ------
    InputError
        Bad widths (not integers >= 1), ``C_W`` (not > 0), ``C_b`` (not >= 0), ``G0`` (not real, finite,
        symmetric and PD, or P out of range: the message says the work it would need), a discontinuous activation,
        a first-layer kernel beyond float64, or a kernel whose 2x2 block of two inputs becomes degenerate.

    Examples
    --------
    >>> G0 = np.array([[1.0, 0.3, 0.1], [0.3, 1.2, 0.4], [0.1, 0.4, 0.9]])
    >>> r = vertex_any_p("identity", [10, 10, 10], 1.0, 0.0, G0)
    >>> K = r.K[2]  # deep linear: V^(3)_(01)(02) = 2 (K_00 K_12 + K_02 K_10)
    >>> bool(abs(r.V[2][1, 2] - 2 * (K[0, 0] * K[1, 2] + K[0, 2] * K[1, 0])) < 1e-13)
    True
    """
    phi = as_activation(activation, argname="activation")
    w = check_widths(widths, "vertex_any_p")
    C_W = positive_real("C_W", C_W, "vertex_any_p")
    C_b = nonnegative_real("C_b", C_b, "vertex_any_p")
    G = check_input_gram(G0)
    check_continuous(phi, "vertex_any_p", "the derivative matrix D and V")
    P, L = G.shape[0], w.size
    pairs = pair_index(P)
    K = np.empty((L, P, P))
    kap = np.zeros((L, len(pairs), len(pairs)))
    with np.errstate(over="ignore"):
        K[0] = C_b + C_W * G
    check_initial_kernels("vertex_any_p", **{"C_b + C_W G0": K[0]})
    for l in range(L - 1):
        check_pairs_nondegenerate(K[l], l + 1)
        C, D, mean = _layer(phi, K[l], pairs)
        K[l + 1] = C_b + C_W * mean
        kap[l + 1] = C_W**2 * C / w[l] + C_W**2 * D @ kap[l] @ D.T
        if not (np.all(np.isfinite(K[l + 1])) and np.all(np.isfinite(kap[l + 1]))):
            raise InputError(f"vertex_any_p: the recursion leaves the float64 range at layer {l + 2}")
    V = np.concatenate([np.zeros((1, len(pairs), len(pairs))), w[:-1, None, None] * kap[1:]])
    return MultiVertexResult(pairs=pairs, widths=w, K=K, kappa=kap, V=V)
