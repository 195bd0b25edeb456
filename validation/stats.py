"""Estimators and acceptance rules of the validation suite, in one place.

Every simulation estimate carries a standard error computed from *independent* replicates (one per
random network); theory is compared with it by a z-score ``z = (estimate - theory) / stderr``.
When the theory is an ``n -> inf`` limit, the estimate is the intercept of a weighted least-squares
fit in ``1/n`` (optionally ``1/n^2``) over several widths, with its standard error from the fit's
covariance.  One z bound serves the whole run: :func:`z_bound` chooses it by Sidak so that a correct
theory passes all ``m`` checks with probability >= ``family_level``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st

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
]


def _as_samples(x, name: str, axis: int = 0) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        raise ValueError(f"{name}: need an array of independent replicates along an axis, got a scalar")
    a = np.moveaxis(a, axis, 0)
    if a.shape[0] < 2:
        raise ValueError(f"{name}: need at least 2 replicates along axis 0, got {a.shape[0]}")
    return a


def mean_se(x, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Sample mean and its standard error ``s / sqrt(S)`` (``s`` with ddof=1) over independent replicates on ``axis``."""
    a = _as_samples(x, "mean_se", axis)
    S = a.shape[0]
    m = a.mean(axis=0)
    se = a.std(axis=0, ddof=1) / math.sqrt(S)
    return (float(m), float(se)) if np.ndim(m) == 0 else (m, se)


def var_se(x, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Unbiased sample variance ``s^2`` and its large-sample SE ``sqrt((mu_4 - s^4) / S)`` (mu_4: 4th central moment)."""
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
        raise ValueError(f"ratio_se: num and den must have the same shape, got {a.shape} and {b.shape}")
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
        raise ValueError(f"zscore: stderr must be positive, got {stderr!r}")
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
        raise ValueError(f"z_bound: n_checks must be a non-negative integer, got {n_checks!r}")
    if not 0.0 < family_level < 1.0:
        raise ValueError(f"z_bound: family_level must be in (0, 1), got {family_level!r}")
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
    """
    n = np.asarray(widths, dtype=float)
    yv = np.asarray(y, dtype=float)
    s = np.asarray(se, dtype=float)
    if order not in (1, 2):
        raise ValueError(f"wls_extrapolate: order must be 1 or 2, got {order!r}")
    if not (n.ndim == yv.ndim == s.ndim == 1 and n.shape == yv.shape == s.shape):
        raise ValueError(f"wls_extrapolate: widths, y and se must be 1-D of equal length, got {n.shape}, {yv.shape}, {s.shape}")
    if len(np.unique(n)) < order + 1:
        raise ValueError(f"wls_extrapolate: order {order} needs at least {order + 1} distinct widths, got {len(np.unique(n))}")
    if np.any(~(n > 0)) or np.any(~np.isfinite(n)):
        raise ValueError(f"wls_extrapolate: widths must be positive and finite, got {n.tolist()}")
    if np.any(~(s > 0)) or np.any(~np.isfinite(s)):
        raise ValueError(f"wls_extrapolate: se must be positive and finite, got {s.tolist()}")
    if np.any(~np.isfinite(yv)):
        raise ValueError(f"wls_extrapolate: y must be finite, got {yv.tolist()}")
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
