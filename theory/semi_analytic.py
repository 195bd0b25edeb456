"""Semi-analytic Gaussian pair expectations for piecewise exponential-linear activations (elu, celu, selu).

For phi = sum_i w_i x^{n_i} e^{beta_i x} 1{lo_i < x < hi_i} (n_i in {0, 1}; n_i = 1 only with beta_i = 0) the
conditional expectation ``h(x) = E[g(mu + sig Z)]`` is closed-form (Gaussian tail functions, evaluated with
``log_ndtr`` for stability), so ``<f(u_a) g(u_b)>_K = E_X[f(sa X) h(X)]`` with ``mu = sb rho X``,
``sig = sb sqrt(1-rho^2)`` is a 1-D integral: composite Gauss-Legendre split at 0 (the kink of f) and graded
around 0 on the scale sqrt(1-rho^2)/|rho| where h changes fastest.  Tested against the doubled polar rule to
~2e-12 absolute for variances up to 8 and all rho in [-1, 1]; ~100x faster than the 2-D polar rule.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import log_ndtr, ndtr

from .activations import Activation
from .gaussian import RADIAL_EDGES, gauss_legendre

__all__ = ["exp_linear_pieces", "semi_analytic_pair"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def exp_linear_pieces(act: Activation, derivative: bool = False):
    """Pieces (w, n, beta, lo, hi) of phi (or phi') for an exponential-linear activation, else None.

    An activation is exponential-linear when its registry entry gives ``exp_linear`` = (s, a, b):
    ``phi = s x`` for x > 0 and ``s a (e^(b x) - 1)`` for x < 0 (elu, celu, selu).
    """
    if act.entry is None or act.entry.exp_linear is None:
        return None
    s, a, b = act.entry.exp_linear(**act.param_dict)
    if derivative:  # phi' = s on x > 0, s a b e^{b x} on x < 0
        return [(s, 0, 0.0, 0.0, math.inf), (s * a * b, 0, b, -math.inf, 0.0)]
    return [(s, 1, 0.0, 0.0, math.inf), (s * a, 0, b, -math.inf, 0.0), (-s * a, 0, 0.0, -math.inf, 0.0)]


def _pdf(z):
    return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def _conditional_mean(pieces, mu: np.ndarray, sig: np.ndarray) -> np.ndarray:
    """E[g(mu + sig Z)] for sig > 0 (arrays of one shape)."""
    out = np.zeros(mu.shape)
    for (w, n, beta, lo, hi) in pieces:
        a = (lo - mu) / sig if math.isfinite(lo) else np.full(mu.shape, -np.inf)
        b = (hi - mu) / sig if math.isfinite(hi) else np.full(mu.shape, np.inf)
        if n == 0 and beta == 0.0:
            out += w * (ndtr(b) - ndtr(a))
        elif n == 0:
            # e^{beta mu + beta^2 sig^2 / 2} [Phi(b - beta sig) - Phi(a - beta sig)], one side infinite
            e = beta * mu + 0.5 * beta * beta * sig * sig
            if not math.isfinite(lo):
                out += w * np.exp(e + log_ndtr(b - beta * sig))
            else:
                out += w * np.exp(e + log_ndtr(beta * sig - a))
        else:
            pa = np.where(np.isfinite(a), _pdf(np.where(np.isfinite(a), a, 0.0)), 0.0)
            pb = np.where(np.isfinite(b), _pdf(np.where(np.isfinite(b), b, 0.0)), 0.0)
            out += w * (mu * (ndtr(b) - ndtr(a)) + sig * (pa - pb))
    return out


def semi_analytic_pair(f, g, g_pieces, sa, sb, rho, *, n: int = 12) -> np.ndarray:
    """E[f(sa X) g(sb Y)], corr(X, Y) = rho, for g given by ``g_pieces`` (g itself is used only where rho = +-1);
    f may have a kink at 0 only.  Arrays broadcast; returns an array of the broadcast shape."""
    sa, sb, rho = np.broadcast_arrays(np.asarray(sa, float), np.asarray(sb, float), np.asarray(rho, float))
    shape = sa.shape
    sa, sb, rho = sa.ravel(), sb.ravel(), rho.ravel()
    m = sa.size
    sp = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
    E = np.asarray(RADIAL_EDGES)
    base = np.concatenate([-E[:0:-1], E])
    with np.errstate(divide="ignore", invalid="ignore"):
        width = np.where(np.abs(rho) > 0, sp / np.abs(rho), np.inf)
    extra = np.stack([c * width for c in (-2.0, -0.5, -0.125, 0.125, 0.5, 2.0)], axis=1)
    extra = np.clip(np.where(np.isfinite(extra), extra, base[-1]), base[0], base[-1])
    edges = np.sort(np.concatenate([np.broadcast_to(base, (m, base.size)), extra], axis=1), axis=1)
    t, wt = gauss_legendre(n)
    h = 0.5 * np.diff(edges, axis=1)
    c = 0.5 * (edges[:, 1:] + edges[:, :-1])
    x = (c[..., None] + h[..., None] * t).reshape(m, -1)
    wx = (h[..., None] * wt).reshape(m, -1) * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    mu = (sb * rho)[:, None] * x
    sig = np.broadcast_to((sb * sp)[:, None], x.shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hv = np.where(sig > 0, _conditional_mean(g_pieces, mu, np.where(sig > 0, sig, 1.0)), g(mu))
    return (np.asarray(f(sa[:, None] * x), dtype=float) * hv * wx).sum(axis=1).reshape(shape)
