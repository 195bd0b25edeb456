"""Estimators and acceptance rules of the validation suite, in one place.

Every simulation estimate carries a standard error computed from *independent* replicates (one per
random network); theory is compared with it by a z-score ``z = (estimate - theory) / stderr``.
When the theory is an ``n -> inf`` limit, the estimate is the intercept of a weighted least-squares
fit in ``1/n`` (optionally ``1/n^2``) over several widths, with its standard error from the fit's
covariance.  One z bound serves the whole run: :func:`z_bound` chooses it by Sidak so that a correct
theory passes all ``m`` checks with probability >= ``family_level``.  Scaling exponents (the equilibrium
layer ``l*(L) ~ L^b``) are log-log least-squares fits with a Student-t interval: :func:`fit_power_law`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st

from sigprop.theory.activations import Activation
from sigprop.theory.equilibrium import equilibrium_window
from sigprop.theory.errors import InputError

__all__ = [
    "mean_se",
    "var_se",
    "ratio_se",
    "zscore",
    "two_sample_z",
    "z_bound",
    "WLSFit",
    "wls_extrapolate",
    "correlation",
    "PowerLawFit",
    "fit_power_law",
    "theory_exponent",
    "mean_interval",
    "lower_confidence_bound",
]


def _as_samples(x, name: str, axis: int = 0) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        raise InputError(f"{name}: need an array of independent replicates along an axis, got a scalar")
    a = np.moveaxis(a, axis, 0)
    if a.shape[0] < 2:
        raise InputError(f"{name}: need at least 2 replicates along axis 0, got {a.shape[0]}")
    return a


def mean_se(x, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Sample mean and its standard error ``s / sqrt(S)`` (``s`` with ddof=1) over independent replicates on
    ``axis``."""
    a = _as_samples(x, "mean_se", axis)
    S = a.shape[0]
    m = a.mean(axis=0)
    se = a.std(axis=0, ddof=1) / math.sqrt(S)
    return (float(m), float(se)) if np.ndim(m) == 0 else (m, se)


def var_se(x, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Unbiased sample variance ``s^2`` and its large-sample SE ``sqrt((mu_4 - s^4) / S)``
    (mu_4: 4th central moment)."""
    a = _as_samples(x, "var_se", axis)
    S = a.shape[0]
    c = a - a.mean(axis=0)
    s2 = (c**2).sum(axis=0) / (S - 1)
    mu4 = (c**4).mean(axis=0)
    se = np.sqrt(np.maximum(mu4 - s2**2, 0.0) / S)
    return (float(s2), float(se)) if np.ndim(s2) == 0 else (s2, se)


def ratio_se(num, den, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Ratio of means ``R = mean(a)/mean(b)`` of paired replicates and its delta-method SE.

    ``Var R ~ (Var a - 2 R Cov(a,b) + R^2 Var b) / (S mean(b)^2)``.
    """
    a = _as_samples(num, "ratio_se(num)", axis)
    b = _as_samples(den, "ratio_se(den)", axis)
    if a.shape != b.shape:
        raise InputError(f"ratio_se: num and den must have the same shape, got {a.shape} and {b.shape}")
    S = a.shape[0]
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    R = ma / mb
    ca, cb = a - ma, b - mb
    va = (ca**2).sum(axis=0) / (S - 1)
    vb = (cb**2).sum(axis=0) / (S - 1)
    cab = (ca * cb).sum(axis=0) / (S - 1)
    var = (va - 2 * R * cab + R**2 * vb) / (S * mb**2)
    se = np.sqrt(np.maximum(var, 0.0))
    return (float(R), float(se)) if np.ndim(R) == 0 else (R, se)


def correlation(gram, a: int = 0, b: int = 1) -> np.ndarray:
    """Per-replicate correlation ``G_ab / sqrt(G_aa G_bb)`` of Gram matrices ``gram[..., P, P]``."""
    g = np.asarray(gram, dtype=float)
    return g[..., a, b] / np.sqrt(g[..., a, a] * g[..., b, b])


def zscore(estimate, theory, stderr):
    """``(estimate - theory) / stderr``; stderr must be positive."""
    se = np.asarray(stderr, dtype=float)
    if np.any(~(se > 0)):
        raise InputError(f"zscore: stderr must be positive, got {stderr!r}")
    z = (np.asarray(estimate, dtype=float) - np.asarray(theory, dtype=float)) / se
    return float(z) if z.ndim == 0 else z


def two_sample_z(m1: float, se1: float, m2: float, se2: float) -> tuple[float, float]:
    """Difference of two independent estimates and its SE ``sqrt(se1^2 + se2^2)``."""
    return m1 - m2, math.hypot(se1, se2)


def z_bound(n_checks: int, family_level: float = 0.99) -> float:
    """Two-sided z bound for ``n_checks`` tests such that all pass with probability >= ``family_level``.

    Sidak: per-check level ``alpha_1 = 1 - family_level^(1/m)``, bound ``Phi^{-1}(1 - alpha_1/2)``.
    Exact for independent tests; for jointly Gaussian z-scores with any correlation the family
    coverage is still >= ``family_level`` (Sidak's inequality), so it is conservative there.
    """
    if isinstance(n_checks, bool) or not isinstance(n_checks, (int, np.integer)) or n_checks < 0:
        raise InputError(f"z_bound: n_checks must be a non-negative integer, got {n_checks!r}")
    if not 0.0 < family_level < 1.0:
        raise InputError(f"z_bound: family_level must be in (0, 1), got {family_level!r}")
    m = max(int(n_checks), 1)
    alpha1 = -math.expm1(math.log(family_level) / m)  # 1 - level^(1/m), accurate for large m
    return float(_st.norm.isf(alpha1 / 2.0))


@dataclass(frozen=True)
class WLSFit:
    """Result of :func:`wls_extrapolate`: ``y ~ sum_k beta_k x^k`` with ``x = 1/n``.

    ``intercept``/``intercept_se`` is the ``n -> inf`` limit; ``cov`` the (possibly scaled) covariance of
    ``beta``; ``chi2``/``dof`` the weighted residual sum; ``scale`` the Birge factor ``max(1, chi2/dof)``
    that multiplied the covariance (1 when the fit is consistent with its errors).
    """

    beta: np.ndarray
    cov: np.ndarray
    chi2: float
    dof: int
    scale: float

    @property
    def intercept(self) -> float:
        return float(self.beta[0])

    @property
    def intercept_se(self) -> float:
        return float(math.sqrt(self.cov[0, 0]))

    @property
    def slope(self) -> float:
        return float(self.beta[1])

    @property
    def p_value(self) -> float:
        """Goodness of fit: ``P(chi2_dof >= chi2)`` (nan without residual degrees of freedom)."""
        return float(_st.chi2.sf(self.chi2, self.dof)) if self.dof > 0 else math.nan

    def predict(self, n) -> np.ndarray:
        x = 1.0 / np.asarray(n, dtype=float)
        return sum(b * x**k for k, b in enumerate(self.beta))

    def to_dict(self) -> dict:
        return {"beta": [float(b) for b in self.beta], "intercept": self.intercept, "intercept_se": self.intercept_se,
                "chi2": self.chi2, "dof": self.dof, "scale": self.scale, "p_value": self.p_value}


def wls_extrapolate(widths: Sequence[float], y: Sequence[float], se: Sequence[float], order: int = 1,
                    birge: bool = True) -> WLSFit:
    """Weighted least squares of ``y`` in powers of ``1/n`` up to ``order`` (1 or 2), weights ``1/se^2``.

    ``beta = (A^T W A)^{-1} A^T W y`` with ``A = [1, 1/n, (1/n^2)]``; ``Cov beta = (A^T W A)^{-1}``, times
    ``max(1, chi2/dof)`` when ``birge`` (the Birge/PDG scale factor: an inconsistent fit widens its own
    error rather than producing a spuriously precise intercept).  The intercept is the estimate of the
    ``n -> inf`` limit.  Estimates at different widths must be independent (different networks).

    Examples
    --------
    Estimates ``1 + 3/n`` (with noise of 1e-4) at four widths extrapolate to 1 within their standard error:

    >>> import numpy as np
    >>> n = np.array([64.0, 128.0, 256.0, 512.0])
    >>> y = 1.0 + 3.0 / n + np.array([1e-4, -1e-4, 1e-4, -1e-4])
    >>> fit = wls_extrapolate(n, y, np.full(4, 1e-4), order=1)
    >>> print(f"{fit.intercept:.5f} +- {fit.intercept_se:.5f}, slope {fit.beta[1]:.2f}")
    0.99993 +- 0.00011, slope 3.01
    """
    n = np.asarray(widths, dtype=float)
    yv = np.asarray(y, dtype=float)
    s = np.asarray(se, dtype=float)
    if order not in (1, 2):
        raise InputError(f"wls_extrapolate: order must be 1 or 2, got {order!r}")
    if not (n.ndim == yv.ndim == s.ndim == 1 and n.shape == yv.shape == s.shape):
        raise InputError(f"wls_extrapolate: widths, y and se must be 1-D of equal length, "
                         f"got {n.shape}, {yv.shape}, {s.shape}")
    if len(np.unique(n)) < order + 1:
        raise InputError(f"wls_extrapolate: order {order} needs at least {order + 1} distinct widths, "
                         f"got {len(np.unique(n))}")
    if np.any(~(n > 0)) or np.any(~np.isfinite(n)):
        raise InputError(f"wls_extrapolate: widths must be positive and finite, got {n.tolist()}")
    if np.any(~(s > 0)) or np.any(~np.isfinite(s)):
        raise InputError(f"wls_extrapolate: se must be positive and finite, got {s.tolist()}")
    if np.any(~np.isfinite(yv)):
        raise InputError(f"wls_extrapolate: y must be finite, got {yv.tolist()}")
    x = 1.0 / n
    A = np.vander(x, order + 1, increasing=True)
    w = 1.0 / s**2
    AtWA = A.T @ (A * w[:, None])
    cov = np.linalg.inv(AtWA)
    beta = cov @ (A.T @ (w * yv))
    resid = yv - A @ beta
    chi2 = float(np.sum(w * resid**2))
    dof = len(n) - (order + 1)
    scale = max(1.0, chi2 / dof) if (birge and dof > 0) else 1.0
    return WLSFit(beta=beta, cov=cov * scale, chi2=chi2, dof=dof, scale=scale)


# --------------------------------------------------------------------------------------------
# Power-law fits
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PowerLawFit:
    """Result of :func:`fit_power_law`: ``log y = log prefactor + exponent * log x`` by least squares.

    Attributes
    ----------
    exponent : float
        The fitted exponent ``b``.
    stderr : float
        Its standard error.
    ci_low, ci_high : float
        The ``confidence`` interval on ``b`` (Student t with ``n - 2`` degrees of freedom).
    prefactor : float
        ``A = exp(intercept)``.
    n : int
        Number of points fitted.
    confidence : float
        The level of the interval.
    """

    exponent: float
    stderr: float
    ci_low: float
    ci_high: float
    prefactor: float
    n: int
    confidence: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the confidence interval ``[ci_low, ci_high]``."""
        return self.ci_low <= value <= self.ci_high


def fit_power_law(x: Sequence[float], y: Sequence[float], confidence: float = 0.95,
                  sigma: Sequence[float] | None = None) -> PowerLawFit:
    """Log-log least-squares fit ``y = A x^b`` with a ``confidence`` interval on ``b``.

    Parameters
    ----------
    x, y : sequence of float
        1-D, same length (at least 3), finite and > 0 (a layer index 0 has no logarithm).
    confidence : float, optional
        Level of the interval on ``b``, in (0, 1); default 0.95.
    sigma : sequence of float, optional
        Standard errors of ``log y``, one per point: a weighted fit.  The residual scatter is then still used
        for the interval when it exceeds them, i.e. the interval is never narrower than the data scatter implies.

    Returns
    -------
    PowerLawFit
        Exponent, its standard error and Student-t interval (``n - 2`` degrees of freedom), prefactor.

    Raises
    ------
    ValueError
        Bad ``x``, ``y``, ``confidence`` or ``sigma``, named in the message; ``x`` with a single distinct value.

    Examples
    --------
    >>> fit = fit_power_law([1.0, 2.0, 4.0, 8.0], [3.0, 6.0, 12.0, 24.0])
    >>> round(fit.exponent, 12), round(fit.prefactor, 12)
    (1.0, 3.0)
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"fit_power_law: x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    if x.size < 3:
        raise InputError(f"fit_power_law: need at least 3 points for a confidence interval, got {x.size}")
    if np.any(~np.isfinite(x)) or np.any(~np.isfinite(y)) or np.any(x <= 0) or np.any(y <= 0):
        raise InputError("fit_power_law: x and y must be finite and > 0 (a layer index 0 has no logarithm)")
    if not (0.0 < confidence < 1.0):
        raise InputError(f"fit_power_law: confidence must be in (0, 1), got {confidence}")
    lx, ly = np.log(x), np.log(y)
    if np.ptp(lx) == 0:
        raise InputError("fit_power_law: x must take at least two distinct values")
    w = np.ones_like(lx) if sigma is None else 1.0 / np.asarray(sigma, dtype=float) ** 2
    if w.shape != lx.shape or np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise InputError("fit_power_law: sigma must be positive and finite, one per point")
    W = w.sum()
    mx, my = (w * lx).sum() / W, (w * ly).sum() / W
    sxx = (w * (lx - mx) ** 2).sum()
    b = (w * (lx - mx) * (ly - my)).sum() / sxx
    a = my - b * mx
    resid = ly - a - b * lx
    dof = lx.size - 2
    chi2_red = (w * resid ** 2).sum() / dof
    scale = chi2_red if sigma is None else max(chi2_red, 1.0)
    se = math.sqrt(scale / sxx)
    t = _st.t.ppf(0.5 + confidence / 2.0, dof)
    return PowerLawFit(float(b), se, float(b - t * se), float(b + t * se), float(math.exp(a)), int(lx.size), confidence)


def theory_exponent(depth_min: int, depth_max: int, activation: str | Activation = "relu", rho0: float = 0.0,
                    depths: Sequence[int] | None = None, continuous: bool = True) -> PowerLawFit:
    """The exponent the equilibrium definition itself predicts over a window of depths.

    A finite-L exponent, not the 3/5 asymptote: :func:`fit_power_law` of the theory's ``l*(L)`` from
    :func:`sigprop.theory.equilibrium.equilibrium_window` (real-valued crossing by default, so the integer
    rounding of small L does not enter), over the depths with ``l* > 0`` (``log 0`` has no fit).

    Parameters
    ----------
    depth_min, depth_max : int
        The window, ``2 <= depth_min < depth_max``; 40 log-spaced integers in it unless ``depths`` is given.
    activation : str or Activation, optional
        A positively homogeneous activation (relu, leaky_relu, abs); default ``"relu"``.
    rho0 : float, optional
        Input correlation ``c_0`` in [-1, 1); default 0.
    depths : sequence of int, optional
        The depths to fit instead of the log-spaced ones.
    continuous : bool, optional
        Fit the real-valued crossing (default) or the integer layer ``l*(L)``.

    Returns
    -------
    PowerLawFit
        The fitted exponent of ``l*(L)`` against ``L``.

    Examples
    --------
    >>> round(theory_exponent(10 ** 5, 10 ** 6).exponent, 2)
    0.6
    """
    window, layers = equilibrium_window(depth_min, depth_max, activation, rho0, depths, continuous)
    keep = layers > 0
    return fit_power_law(window[keep], layers[keep])


# --------------------------------------------------------------------------------------------
# Replicates across seeds
# --------------------------------------------------------------------------------------------
def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of independent replicates (one per seed) and its two-sided Student-t interval ``(mean, low, high)``.

    NaNs are dropped; with fewer than two values the interval is ``(nan, nan)``.

    Examples
    --------
    >>> m, lo, hi = mean_interval([1.0, 2.0, 3.0])
    >>> m, round(lo, 4), round(hi, 4)
    (2.0, -0.4841, 4.4841)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if v.size < 2:
        return m, math.nan, math.nan
    half = float(_st.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def lower_confidence_bound(values, level: float = 0.95) -> float:
    """One-sided Student-t lower confidence bound of the mean of independent replicates (NaN if < 2 values).

    Examples
    --------
    >>> round(lower_confidence_bound([1.0, 2.0, 3.0]), 4)
    0.3141
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return math.nan
    return float(v.mean() - _st.t.ppf(level, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
