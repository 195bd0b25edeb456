"""The normalised kernel map kappa(rho) = E[phi(X) phi(Y)] / E[phi(X)^2] of an activation, and its derivatives.

X, Y are standard normals with correlation rho.  Three evaluation methods, chosen at construction:

* ``"closed form"``: identity, relu, leaky_relu, abs, step, erf, exp, sin, cos, gelu (formulas in
  :mod:`sigprop.theory.activation_closed_forms`; exact up to rounding on all of [-1, 1]);
* ``"hermite series"``: kink-free activations whose Hermite series has a VERIFIED tail:
  ``sum_{k>K} c_k^2 = E phi^2 - sum_{k<=K} c_k^2 <= 1e-12 E phi^2`` and likewise
  ``sum_{k>K} k c_k^2 = E phi'^2 - sum k c_k^2`` (both right-hand sides from 1-D integrals), which bounds the
  error of kappa and kappa' uniformly on [-1, 1] (|rho^k| <= 1);  kappa'' = sum k(k-1) c_k^2 rho^(k-2) has an
  estimated (not verified) tail;
* ``"polar chebyshev"``: every other activation (kinks, or a slowly decaying series): the 2-D integrals
  E[phi(X)phi(Y)] and E[phi'(X)phi'(Y)] (Price: kappa' = E[phi' phi'] / E phi^2) are computed by the polar
  Gauss-Legendre split rule (:func:`sigprop.theory.gaussian.pair_expect`, fine resolution) at Chebyshev-Lobatto
  points in theta = arccos(rho) in [0, pi] (the kink singularities sqrt(1-rho^2) are analytic in theta), with
  the number of points doubled (33 ... 257) until the interpolant of the coarser grid matches the finer grid to
  1e-13 (``interp_error`` holds the achieved difference).  kappa'' = -(d/dtheta kappa'(cos theta))/sin theta
  (accuracy ~1e-12 in the interior, ~1e-8 near the ends; infinite at +-1 when phi' jumps).  Kinks away
  from 0 (custom activations) converge more slowly in theta: kappa ~1e-11, kappa' ~1e-9 near the ends.

``kappa(0) = (E phi)^2 / E phi^2``, ``kappa'(0) = (E X phi)^2 / E phi^2`` and ``kappa'(1) = E phi'^2 / E phi^2`` are
always computed from 1-D integrals (or closed forms), never from a truncated sum.  ``derivative`` supports
order 0, 1, 2.  Inputs outside [-1, 1] or NaN raise ValueError (nothing is clipped).
"""
from __future__ import annotations

import abc
import math

import numpy as np

from sigprop.theory.errors import InputError, InputTypeError

from .activation_closed_forms import unit_form
from .activations import Activation, as_activation
from .convergence import Convergence, classify
from .gaussian import expect, pair_expect
from .hermite import hermite_table

__all__ = ["KernelMapBase", "KernelMap", "check_rho"]

SERIES_KMAX = 400
SERIES_TAIL_TOL = 1e-12
CHEB_TOL = 1e-13


def check_rho(rho, who: str = "kappa") -> np.ndarray:
    r = np.asarray(rho, dtype=float)
    if r.dtype.kind != "f":
        raise InputTypeError(f"{who}: rho must be real numbers")
    if np.any(np.isnan(r)):
        raise InputError(f"{who}: rho must not be NaN")
    if np.any(np.abs(r) > 1.0):
        bad = r[np.abs(r) > 1.0].ravel()[0]
        raise InputError(f"{who}: rho must be in [-1, 1], got {bad!r}")
    return r


def _out(x, like):
    x = np.asarray(x, dtype=float)
    return float(x) if np.ndim(like) == 0 else x


class KernelMapBase(abc.ABC):
    """Common interface of kernel maps: ``km(rho)``, ``km.derivative(rho, order)``, ``kappa0``, ``kappa_prime0``,
    ``kappa_prime1``, ``convergence()``, ``sequence(rho0, depth)``.  Subclasses implement ``_eval(rho, order)``."""

    kappa0: float
    kappa_prime0: float
    kappa_prime1: float

    @abc.abstractmethod
    def _eval(self, rho: np.ndarray, order: int) -> np.ndarray:
        """kappa (order 0) or its order-th derivative at the validated correlations ``rho``."""

    def __call__(self, rho):
        r = check_rho(rho)
        return _out(self._eval(r, 0), rho)

    def derivative(self, rho, order: int = 1):
        """d^order kappa / drho^order at rho (order 0, 1 or 2); may be +inf at rho = +-1."""
        if isinstance(order, bool) or order not in (0, 1, 2):
            raise InputError(f"derivative: order must be 0, 1 or 2, got {order!r}")
        r = check_rho(rho, "derivative")
        return _out(self._eval(r, order), rho)

    def convergence(self) -> Convergence:
        """The theorem's case, fixed point rho*, rate and bound (see :mod:`sigprop.theory.convergence`)."""
        cached = getattr(self, "_convergence", None)
        if cached is None:
            cached = classify(self)
            object.__setattr__(self, "_convergence", cached)
        return cached

    def sequence(self, rho0, depth: int) -> np.ndarray:
        """rho_0, rho_1 = kappa(rho_0), ..., rho_depth: array of length depth + 1 (rho0 may be an array:
        shape (depth+1,) + rho0.shape)."""
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0:
            raise InputError(f"sequence: depth must be an integer >= 0, got {depth!r}")
        r = check_rho(rho0, "sequence")
        out = np.empty((int(depth) + 1,) + r.shape)
        out[0] = r
        for l in range(1, int(depth) + 1):
            out[l] = self._eval(out[l - 1], 0)
        return out


class KernelMap(KernelMapBase):
    """Normalised kernel map of ``act`` (a name or an :class:`Activation`); see the module docstring.

    Attributes: ``activation``, ``C = sqrt(E phi^2)``, ``kappa0``, ``kappa_prime0``, ``kappa_prime1``,
    ``method`` and ``error_bound`` (bound, or for the Chebyshev path estimate, of the absolute error of kappa).

    Examples
    --------
    ReLU's normalised map is the degree-1 arc-cosine kernel, ``kappa(rho) = (sqrt(1 - rho^2) + (pi - arccos
    rho) rho) / pi``:

    >>> k = KernelMap("relu")
    >>> k
    KernelMap(relu, method='closed form', C=0.707107)
    >>> round(k(0.0), 12), round(k(1.0), 12), round(float(k(0.5)), 12)
    (0.318309886184, 1.0, 0.608997781044)
    >>> k.convergence().case
    3
    """

    _fine = False

    def __init__(self, act: str | Activation, **params: float):
        act = as_activation(act, **params)
        self.activation = act
        form = unit_form(act)
        fn, dfn = act.fn, act.deriv

        try:
            with np.errstate(over="ignore", invalid="ignore"):
                m2 = (float(form(np.array(1.0), 0)) if form is not None
                      else expect(lambda x: float(fn(np.array(x))) ** 2, 1.0, act.kinks))
        except OverflowError:
            m2 = math.inf
        if not math.isfinite(m2):
            raise InputError(f"KernelMap: E[phi(X)^2] is infinite or undefined for {act.label}")
        if m2 <= 0.0:
            raise InputError(f"KernelMap: E[phi(X)^2] = 0 for {act.label} (phi = 0 almost everywhere); "
                             "kappa is undefined")
        self.C2 = m2
        self.C = math.sqrt(m2)
        if form is not None:
            self.kappa0 = float(form(np.array(0.0), 0)) / m2
            self.kappa_prime0 = float(form(np.array(0.0), 1)) / m2
            self.kappa_prime1 = float(form(np.array(1.0), 1)) / m2
        else:
            m0 = expect(lambda x: float(fn(np.array(x))), 1.0, act.kinks)
            m1 = expect(lambda x: x * float(fn(np.array(x))), 1.0, act.kinks)
            self.kappa0 = m0 * m0 / m2
            self.kappa_prime0 = m1 * m1 / m2
            if act.jumps:
                self.kappa_prime1 = math.inf
            else:
                d2 = expect(lambda x: float(dfn(np.array(x))) ** 2, 1.0, act.kinks)
                self.kappa_prime1 = d2 / m2
        self.interp_error = 0.0
        if form is not None:
            self.method = "closed form"
            self.error_bound = 0.0
            self._form = form
        elif not act.kinks and self._try_series():
            self.method = "hermite series"
        else:
            self.method = "polar chebyshev"
            self._setup_chebyshev()

    # ---------------------------------------------------------------- series path
    def _try_series(self) -> bool:
        c = hermite_table(self.activation.fn, [1.0], SERIES_KMAX)[0]
        c2 = c * c
        k = np.arange(c.size, dtype=float)
        tail0 = self.C2 - c2.sum()
        tail1 = self.kappa_prime1 * self.C2 - (k * c2).sum()
        if not (abs(tail0) <= SERIES_TAIL_TOL * self.C2 and abs(tail1) <= 100 * SERIES_TAIL_TOL * self.C2):
            return False
        # drop the negligible end of the series (kept terms: those with k^2 c_k^2 above 1e-18 E phi^2)
        big = np.nonzero(k * k * c2 > 1e-18 * self.C2)[0]
        K = int(big[-1]) + 1 if big.size else 1
        self._a = c2[: K + 1] / self.C2  # kappa(rho) = sum a_k rho^k
        self.error_bound = float(abs(tail0) / self.C2 + c2[K + 1:].sum() / self.C2)
        return True

    @staticmethod
    def _horner(coef: np.ndarray, r: np.ndarray) -> np.ndarray:
        acc = np.zeros_like(r)
        for a in coef[::-1]:
            acc = acc * r + a
        return acc

    # ---------------------------------------------------------------- chebyshev path
    def _pair(self, f, theta: np.ndarray) -> np.ndarray:
        act = self.activation
        sym = act.parity in ("odd", "even") and all(k == 0.0 for k in act.kinks)
        return pair_expect(f, f, 1.0, 1.0, np.cos(theta), act.kinks, act.kinks, symmetric=sym, fine=self._fine)

    def _setup_chebyshev(self) -> None:
        act = self.activation
        fs = [act.fn] + ([] if act.jumps else [act.deriv])
        n = 32
        theta = math.pi * (1.0 - np.cos(np.pi * np.arange(n + 1) / n)) / 2.0
        vals = [self._pair(f, theta) for f in fs]
        err = math.inf
        while True:
            n2 = 2 * n
            theta2 = math.pi * (1.0 - np.cos(np.pi * np.arange(n2 + 1) / n2)) / 2.0
            new = theta2[1::2]
            new_vals = [self._pair(f, new) for f in fs]
            coarse = [np.polynomial.chebyshev.chebval(2.0 * new / math.pi - 1.0, self._cheb_coef(v)) for v in vals]
            err = max(float(np.max(np.abs(c - nv))) for c, nv in zip(coarse, new_vals)) / self.C2
            merged = []
            for v, nv in zip(vals, new_vals):
                m = np.empty(n2 + 1)
                m[0::2] = v
                m[1::2] = nv
                merged.append(m)
            vals, n = merged, n2
            if err <= CHEB_TOL or n >= 256:
                break
        self.interp_error = err
        self.error_bound = err
        self._cheb = [self._cheb_coef(v) / self.C2 for v in vals]
        self._cheb_deriv1 = [np.polynomial.chebyshev.chebder(c) * (2.0 / math.pi) for c in self._cheb]
        self._cheb_deriv2 = [np.polynomial.chebyshev.chebder(c, 2) * (2.0 / math.pi) ** 2 for c in self._cheb]
        self._phi_prime_jumps = any(abs(float(act.deriv(np.array(k + 1e-9)))
                                        - float(act.deriv(np.array(k - 1e-9)))) > 1e-6
                                    for k in act.kinks)

    @staticmethod
    def _cheb_coef(values: np.ndarray) -> np.ndarray:
        """Chebyshev coefficients of the interpolant through values at the Lobatto points (theta ascending)."""
        n = values.size - 1
        # Lobatto points in t = 2 theta/pi - 1 ascending: t_j = -cos(pi j / n)
        v = values[::-1]  # now at t_j = cos(pi j / n), j = 0..n
        ext = np.concatenate([v, v[-2:0:-1]])
        c = np.real(np.fft.rfft(ext)) / n
        c[0] /= 2.0
        c[n] /= 2.0
        return c[: n + 1]

    # ---------------------------------------------------------------- evaluation
    def _eval(self, r: np.ndarray, order: int) -> np.ndarray:
        if self.method == "closed form":
            return np.asarray(self._form(r, order), dtype=float) / self.C2
        if self.method == "hermite series":
            a = self._a
            if order == 0:
                return np.where(r == 1.0, 1.0, self._horner(a, r))
            if order == 1:
                return self._horner(a[1:] * np.arange(1, a.size), r)
            k = np.arange(2, a.size)
            return self._horner(a[2:] * k * (k - 1), r)
        theta = np.arccos(r)
        t = 2.0 * theta / math.pi - 1.0
        cv = np.polynomial.chebyshev.chebval
        if order == 0:
            out = cv(t, self._cheb[0])
            return np.where(r == 1.0, 1.0, out)
        if self.activation.jumps:  # kappa' from d/dtheta of kappa(cos theta): -kappa_theta / sin theta
            if order == 1:
                with np.errstate(divide="ignore", invalid="ignore"):
                    d = -cv(t, self._cheb_deriv1[0]) / np.sin(theta)
                return np.where(np.abs(r) == 1.0, np.inf, d)
            raise InputError("derivative: order 2 is not available for an activation with jumps")
        if order == 1:
            out = cv(t, self._cheb[1])
            return np.where(r == 1.0, self.kappa_prime1, out)
        # order 2: -(d/dtheta kappa'(cos theta)) / sin theta; at the ends the limit
        s = np.sin(theta)
        g1 = cv(t, self._cheb_deriv1[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            d = -g1 / s
        near = s < 1e-4
        if np.any(near):
            g2 = cv(t, self._cheb_deriv2[1])
            lim = np.where(np.abs(r) > 0, -g2 / np.cos(theta), 0.0)
            if self._phi_prime_jumps:  # kappa' ~ arccos-type at the ends: kappa'' -> +inf there
                d = np.where(s == 0, np.inf, d)
            else:  # L'Hopital: -g1'(theta)/sin(theta) -> -g1''(theta)/cos(theta)
                d = np.where(near, lim, d)
        return d

    def __repr__(self) -> str:
        return f"KernelMap({self.activation.label}, method={self.method!r}, C={self.C:.6g})"
