"""Benchmark of the finite-width NTK theory (``sigprop bench --only ntk``): :func:`run_benchmarks`.

* The wall time of :func:`sigprop.theory.correlators.finite_width_ntk` (every tensor: ``K``, ``dK``, ``V``,
  ``Theta``, ``dTheta``, ``D``, ``F``, ``A``, ``B``) for GELU at its double-critical point
  ``(C_W, C_b) = (1.98305826, 0.17292239)``, width 64, on the inputs of :data:`GRAM` (``'full'``: P = 4 inputs,
  L = 10 layers; ``'quick'``: P = 4, L = 3).
* The accuracy of :func:`sigprop.theory.gaussian_products.product_expectation` on the four-point expectations of
  that run, ``<phi phi phi phi>``, ``<phi' phi' phi phi>`` and ``<phi' phi' phi' phi'>`` on four distinct inputs
  at a few layers' ``K``, against :func:`mpmath_reference`: 30-digit mpmath, the Cholesky parametrisation
  ``z = L x``, ``x ~ N(0, I_4)``, Gauss-Hermite (for ``N(0, 0.7^2)``, the density ratio in the weights) in
  ``x_0, x_1, x_2`` and the innermost ``x_3`` in closed form (``E[gelu(a + s xi)] = a Phi(a/t) + s^2 phi(a/t)/t``,
  ``E[gelu'(a + s xi)] = Phi(a/t) + a phi(a/t)/t^3``, ``t = sqrt(1 + s^2)``; both checked here against 30-digit
  ``mp.quad``).  The reference's own error is the change from ``n`` to ``n + step`` nodes per level (``'quick'``:
  32 to 36, layer 3; ``'full'``: 40 to 48, layers 2, 5, 10); the target of ``product_expectation`` is 1e-10
  relative.

Rows ``{"benchmark", "metric", "value", "unit", "note"}`` as in docs/conventions.md; docs/benchmarks.md records a
run.  The Monte-Carlo side of the NTK (explicit engine against a NumPy loop) is ``sigprop bench --only ntk_mc``
(:mod:`sigprop.kernels.bench_ntk_mc`; theory never imports kernels).
"""
from __future__ import annotations

import time
from functools import lru_cache

import mpmath as mp
import numpy as np

from .bench import check_profile
from .correlators import finite_width_ntk
from .gaussian_products import product_expectation

__all__ = ["run_benchmarks", "mpmath_reference", "PROFILES", "GRAM", "FACTOR_TYPES"]

#: The input Gram (its leading P x P block is used).
GRAM = np.array([[1.0, 0.5, 0.3, 0.2], [0.5, 1.0, 0.4, 0.1], [0.3, 0.4, 1.0, 0.6], [0.2, 0.1, 0.6, 1.0]])
#: profile -> (P, L, layers whose K is checked, Hermite nodes per level of the reference, and the step to the finer
#: reference whose difference from it is the reference's own error)
PROFILES: dict[str, tuple[int, int, tuple[int, ...], int, int]] = {"quick": (4, 3, (3,), 32, 4),
                                                                   "full": (4, 10, (2, 5, 10), 40, 8)}
#: The derivative orders of the four factors of each checked expectation.
FACTOR_TYPES: dict[str, tuple[int, int, int, int]] = {"phi phi phi phi": (0, 0, 0, 0),
                                                      "phi' phi' phi phi": (1, 1, 0, 0),
                                                      "phi' phi' phi' phi'": (1, 1, 1, 1)}
WIDTH = 64
#: (C_W, C_b) of GELU's double-critical point (``correlators.double_critical_point('gelu')`` to every digit).
GELU_DOUBLE_CRITICAL = (1.98305826, 0.17292239)
DIGITS = 30
#: Products of Gauss-Hermite weights below this are skipped in :func:`mpmath_reference`.
PRUNE = mp.mpf("1e-28")
#: The width of the Gauss-Hermite rule of :func:`mpmath_reference` (standard deviations).
BETA = mp.mpf("0.7")


def _ncdf(x: mp.mpf) -> mp.mpf:
    return mp.erfc(-x / mp.sqrt(2)) / 2


def _npdf(x: mp.mpf) -> mp.mpf:
    return mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)


def _gelu_pair(z: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
    """``(gelu(z), gelu'(z))`` at mpmath precision (one erfc, one exp)."""
    c, d = _ncdf(z), _npdf(z)
    return z * c, c + z * d


def _smoothed_pair(a: mp.mpf, t: mp.mpf) -> tuple[mp.mpf, mp.mpf]:
    """``(E[gelu(a + s xi)], E[gelu'(a + s xi)])``, ``xi ~ N(0, 1)``, ``t = sqrt(1 + s^2)``, in closed form:
    ``a Phi(a/t) + s^2 phi(a/t)/t`` and ``Phi(a/t) + a phi(a/t)/t^3``."""
    c, d = _ncdf(a / t), _npdf(a / t)
    return a * c + (t * t - 1) * d / t, c + a * d / t**3


def closed_form_check() -> float:
    """Largest relative difference of the two closed forms from 30-digit ``mp.quad`` at a few ``(a, s)``."""
    worst = mp.mpf(0)
    with mp.workdps(DIGITS):
        for order in (0, 1):
            for a, s in ((mp.mpf("0.7"), mp.mpf("1.3")), (mp.mpf("-1.1"), mp.mpf("0.4"))):
                q = mp.quad(lambda x: _gelu_pair(a + s * x)[order] * _npdf(x), [-mp.inf, -a / s, mp.inf])
                worst = max(worst, abs(_smoothed_pair(a, mp.sqrt(1 + s * s))[order] - q) / abs(q))
    return float(worst)


@lru_cache(maxsize=None)
def _hermite(nodes: int) -> tuple[list, list]:
    """A rule for ``E[F(x)]``, ``x ~ N(0, 1)``, at :data:`DIGITS` digits: Gauss-Hermite for ``N(0, BETA^2)``,
    ``E[F(x)] = E[F(BETA u) BETA phi(BETA u) / phi(u)]``, ``u ~ N(0, 1)``."""
    with mp.workdps(DIGITS):
        t, w = mp.gauss_quadrature(nodes, "hermite")  # weight exp(-t^2): u = sqrt(2) t, weight / sqrt(pi)
        u = [mp.sqrt(2) * ti for ti in t]
        return ([BETA * ui for ui in u],
                [wi / mp.sqrt(mp.pi) * BETA * mp.exp((1 - BETA**2) * ui**2 / 2) for wi, ui in zip(w, u)])


def mpmath_reference(K: np.ndarray, nodes: int) -> dict[str, mp.mpf]:
    """``E[prod_i gelu^(d_i)(z_i)]``, ``z ~ N(0, K)`` (K 4x4 positive definite), for every factor type of
    :data:`FACTOR_TYPES`, at :data:`DIGITS` digits: Cholesky ``z = L x``, ``nodes``-point Gauss-Hermite in
    ``x_0, x_1, x_2`` (nodes and weights computed in mpmath), the innermost ``x_3`` in closed form; products of
    weights below :data:`PRUNE` are skipped (their terms are below 1e-20 of the result).

    The rule on each level is Gauss-Hermite for ``N(0, BETA^2)`` with the density ratio in the weights
    (:data:`BETA` = 0.7): the factors ``Phi(L_i . x)`` grow like ``exp(sum_i L_i0^2 y^2 / 2)`` along the imaginary
    axis, which plain Gauss-Hermite (``BETA = 1``) resolves slowly at the gelu double-critical point
    (``K_ii ~ 2.16``: 2.8e-6 at 32 nodes, 2.3e-11 at 64 for ``<phi' phi' phi' phi'>``); the narrower rule damps
    that growth by ``exp(-(1 - BETA^2) y^2 / 2)`` and reaches ~5e-12 at 32 nodes and below 1e-14 at 40.  (At small
    variances the narrower rule is the slower one: ``K = I`` needs ~20 nodes for 1e-8.)

    Examples
    --------
    >>> ref = mpmath_reference(np.eye(4), 20)  # independent factors: E[gelu(z)]^4 = (1/(2 sqrt(pi)))^4
    >>> abs(float(ref["phi phi phi phi"]) / (0.5 / np.sqrt(np.pi)) ** 4 - 1) < 1e-7
    True
    """
    with mp.workdps(DIGITS):
        L = mp.cholesky(mp.matrix(K.tolist()))
        x, w = _hermite(nodes)
        t3 = mp.sqrt(1 + L[3, 3] ** 2)
        sums = {name: mp.mpf(0) for name in FACTOR_TYPES}
        for i0 in range(nodes):
            g0 = _gelu_pair(L[0, 0] * x[i0])
            for i1 in range(nodes):
                w01 = w[i0] * w[i1]
                if w01 < PRUNE:
                    continue
                g1 = _gelu_pair(L[1, 0] * x[i0] + L[1, 1] * x[i1])
                a2, a3 = L[2, 0] * x[i0] + L[2, 1] * x[i1], L[3, 0] * x[i0] + L[3, 1] * x[i1]
                inner = [mp.mpf(0)] * 2
                for i2 in range(nodes):
                    if w01 * w[i2] < PRUNE:
                        continue
                    g2 = _gelu_pair(a2 + L[2, 2] * x[i2])
                    p3 = _smoothed_pair(a3 + L[3, 2] * x[i2], t3)
                    inner[0] += w[i2] * g2[0] * p3[0]
                    inner[1] += w[i2] * g2[1] * p3[1]
                sums["phi phi phi phi"] += w01 * g0[0] * g1[0] * inner[0]
                sums["phi' phi' phi phi"] += w01 * g0[1] * g1[1] * inner[0]
                sums["phi' phi' phi' phi'"] += w01 * g0[1] * g1[1] * inner[1]
        return {name: +v for name, v in sums.items()}


def _accuracy_rows(r, layers: tuple[int, ...], nodes: int, step: int, size: str) -> list[dict]:
    """Per factor type: the largest relative error of ``product_expectation`` over ``layers`` against the
    reference at ``nodes + step`` Hermite nodes, and the reference's own error (``nodes`` against
    ``nodes + step``)."""
    err = {name: 0.0 for name in FACTOR_TYPES}
    own = dict(err)
    for layer in layers:
        K = np.array(r.K[layer - 1])
        ref, ref2 = mpmath_reference(K, nodes), mpmath_reference(K, nodes + step)
        for name, orders in FACTOR_TYPES.items():
            got = product_expectation([("gelu", o) for o in orders], K)
            err[name] = max(err[name], float(abs((got - ref2[name]) / ref2[name])))
            own[name] = max(own[name], float(abs((ref[name] - ref2[name]) / ref2[name])))
    return [{"benchmark": f"product_expectation <{name}>, gelu, K of layers {list(layers)}, {size}",
             "metric": "max relative error", "value": err[name], "unit": "",
             "note": f"vs mpmath ({DIGITS} digits, Gauss-Hermite {nodes + step}^3 (width 0.7) + closed form; "
                     f"its own error <= {own[name]:.1e}, from {nodes} nodes); target 1e-10"} for name in FACTOR_TYPES]


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """The wall time of ``finite_width_ntk`` (gelu, double-critical, P inputs, L layers of width 64) and the
    accuracy of its four-point expectations against 30-digit mpmath (:data:`PROFILES`).

    Parameters
    ----------
    profile : {'quick', 'full'}
        ``'quick'``: P = 4, L = 3, one layer checked; ``'full'``: P = 4, L = 10, layers 2, 5 and 10.

    Returns
    -------
    list of dict
        One wall-time row, one row per factor type (:data:`FACTOR_TYPES`) with the largest relative error, and one
        row for the check of the reference's closed forms.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> run_benchmarks("slow")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: run_benchmarks: profile must be 'quick' or 'full', got 'slow'
    """
    check_profile(profile)
    P, L, layers, nodes, step = PROFILES[profile]
    C_W, C_b = GELU_DOUBLE_CRITICAL
    size = f"P={P}, L={L}, n={WIDTH}"
    t0 = time.perf_counter()
    r = finite_width_ntk("gelu", [WIDTH] * L, C_W, C_b, G0=GRAM[:P, :P])
    dt = time.perf_counter() - t0
    rows = [{"benchmark": f"finite_width_ntk, gelu at (C_W, C_b) = ({C_W:.8f}, {C_b:.8f}), {size}",
             "metric": "wall time", "value": dt, "unit": "s",
             "note": "all tensors: K, dK, V, Theta, dTheta, D, F, A, B; one process, NumPy/SciPy"}]
    rows += _accuracy_rows(r, layers, nodes, step, size)
    rows.append({"benchmark": "mpmath reference: closed-form innermost level vs 30-digit mp.quad",
                 "metric": "max relative error", "value": closed_form_check(), "unit": "",
                 "note": "E[gelu(a + s xi)], E[gelu'(a + s xi)] at two (a, s)"})
    return rows
