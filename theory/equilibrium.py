"""The equilibrium layer l*(L) between forward and backward information (the data of its scaling exponent).

Setting: a critical, normalised network with a positively homogeneous activation
``phi(x) = a+ max(x, 0) + a- min(x, 0)`` (ReLU, leaky ReLU, abs), C_b = 0, C_W = 1 / E[phi(X)^2].
With ``lam = (a+ - a-)^2 / (a+^2 + a-^2)`` (ReLU: lam = 1) and ``theta = arccos(c)`` the correlation map
and its slope are

    c_{l+1} = kappa(c_l) = (lam/pi) sqrt(1 - c^2) + (1 - lam theta/pi) c,     kappa'(c) = 1 - lam theta/pi.

Everything is computed in the gap ``e = 1 - c`` (float64 ``1 - c*c`` loses all accuracy near c = 1):
``theta = 2 asin(sqrt(e/2))``, ``sqrt(1 - c^2) = sqrt(e (2 - e))``, and
``e_{l+1} = e_l + (lam/pi) g(s)``, ``s = sqrt(e_l/2)``, ``g(s) = 2 asin(s)(1 - 2 s^2) - 2 s sqrt(1 - s^2)``
(a series in s below s = 0.05, where the closed form cancels).

The equilibrium definition (docs/derivations.md section 5, our reconstruction of Lou, Mingard & Hayou, arXiv 2110.11749)
lives in ONE function, :func:`equilibrium_imbalance`: the forward information lost by layer l is the gap
``1 - c_l``; the backward signal reaching layer l keeps ``prod_{k=l}^{L-1} kappa'(c_k)`` of its correlation
structure; l*(L) is the smallest l in 0..L with ``1 - c_l <= prod_{k=l}^{L-1} kappa'(c_k)`` (c_0 = rho0).
Asymptotically ``1 - c_l ~ 9 pi^2 / (2 lam^2 l^2)`` and ``prod ~ (l/L)^3`` give
``l* ~ (9 pi^2 / (2 lam^2))^(1/5) L^(3/5)``.
The fit of l*(L) against L is statistics and lives in ``sigprop.validation.stats`` (``fit_power_law``,
``theory_exponent``); :func:`equilibrium_window` returns the points it fits.
"""
from __future__ import annotations

import math
from typing import Sequence

import numba
import numpy as np

from sigprop.theory.arguments import integer_in_range
from sigprop.theory.errors import InputError

from .activations import Activation, as_activation

__all__ = [
    "asymptotic_equilibrium_layer",
    "correlation_gaps",
    "equilibrium_imbalance",
    "equilibrium_layer",
    "equilibrium_layers",
    "equilibrium_position",
    "equilibrium_window",
    "homogeneous_lambda",
    "relu_gap_map",
]

_SERIES_S = 0.05  # below this s = sqrt(e/2) the series for g(s) is used (truncation ~ s^12 relative)


# --------------------------------------------------------------------------------------------
# The correlation map in the gap e = 1 - c
# --------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _g_of_s(s: float) -> float:
    """g(s) = theta (1 - e) - sqrt(e (2 - e)) with e = 2 s^2, theta = 2 asin(s); g < 0 for s > 0."""
    if s < _SERIES_S:
        s2 = s * s
        # -8/3 s^3 - 4/15 s^5 - 3/35 s^7 - 5/126 s^9 - 35/1584 s^11 - 63/4576 s^13
        p = -63.0 / 4576.0
        p = p * s2 - 35.0 / 1584.0
        p = p * s2 - 5.0 / 126.0
        p = p * s2 - 3.0 / 35.0
        p = p * s2 - 4.0 / 15.0
        p = p * s2 - 8.0 / 3.0
        return p * s2 * s
    return 2.0 * math.asin(s) * (1.0 - 2.0 * s * s) - 2.0 * s * math.sqrt(1.0 - s * s)


@numba.njit(cache=True)
def _gap_step(e: float, lam: float) -> float:
    s = math.sqrt(0.5 * e)
    if s > 1.0:
        s = 1.0  # e = 2 exactly up to rounding of 1 - rho0 (rho0 = -1)
    return e + (lam / math.pi) * _g_of_s(s)


@numba.njit(cache=True)
def _gap_sequence(depth: int, e0: float, lam: float):
    gaps = np.empty(depth + 1)
    log_slopes = np.empty(depth + 1)
    e = e0
    for l in range(depth + 1):
        gaps[l] = e
        s = math.sqrt(0.5 * e)
        if s > 1.0:
            s = 1.0
        theta = 2.0 * math.asin(s)
        v = -lam * theta / math.pi
        # log |kappa'(c)|: kappa' < 0 only for abs-like phi (lam > 1) at c < 0; |.| is the backward factor's size
        log_slopes[l] = math.log1p(v) if v > -0.5 else math.log(abs(1.0 + v))
        e = _gap_step(e, lam)
    return gaps, log_slopes


def relu_gap_map(e: float | np.ndarray, lam: float = 1.0) -> np.ndarray:
    """One step of the normalised homogeneous correlation map written for the gap: e -> 1 - kappa(1 - e)."""
    e = np.asarray(e, dtype=float)
    if np.any(~np.isfinite(e)) or np.any(e < 0) or np.any(e > 2):
        raise InputError("relu_gap_map: e = 1 - c must lie in [0, 2]")
    out = np.vectorize(lambda x: _gap_step(float(x), float(lam)), otypes=[float])(e)
    return out if out.ndim else float(out)


def homogeneous_lambda(act: str | Activation) -> float:
    """lam = (a+ - a-)^2 / (a+^2 + a-^2) for a nonlinear positively homogeneous activation, else ValueError."""
    a = as_activation(act, argname="activation")
    if a.slopes is None:
        raise InputError(
            f"activation {a.label!r} has no critical point for the equilibrium definition: it needs a positively "
            "homogeneous activation (relu, leaky_relu, abs), whose critical point C_b = 0, C_W = 1/E[phi^2] keeps "
            "the correlation map kappa'(1) = 1 at every depth")
    ap, am = (float(x) for x in a.slopes)
    lam = (ap - am) ** 2 / (ap * ap + am * am)
    if lam == 0.0:
        raise InputError(f"activation {a.label!r} is linear: the correlation map is the identity, "
                         "no equilibrium exists")
    return lam


MAX_DEPTH = 10**7  # the recursions hold a few float64 arrays of length L: ~0.5 GB at this depth


def _check_rho0(rho0) -> float:
    rho0 = float(rho0)
    if not (math.isfinite(rho0) and -1.0 <= rho0 < 1.0):
        raise InputError(f"rho0 must be a correlation in [-1, 1) (rho0 = 1 gives identical inputs), got {rho0!r}")
    return rho0


def correlation_gaps(depth: int, activation: str | Activation = "relu",
                     rho0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, log_slopes), each of length depth + 1: gaps[l] = 1 - c_l, log_slopes[l] = log |kappa'(c_l)|.

    Sequential O(depth) recursion compiled with numba; c_0 = rho0.
    """
    depth = integer_in_range("depth", depth, 2, MAX_DEPTH)
    lam = homogeneous_lambda(activation)
    rho0 = _check_rho0(rho0)
    return _gap_sequence(depth, 1.0 - rho0, lam)


# --------------------------------------------------------------------------------------------
# The definition (the one place to swap it)
# --------------------------------------------------------------------------------------------
def equilibrium_imbalance(gaps: np.ndarray, log_slopes: np.ndarray, depth: int) -> np.ndarray:
    """D_l = log(1 - c_l) - sum_{k=l}^{L-1} log kappa'(c_k) for l = 0..L.  l* = first l with D_l <= 0.

    THE equilibrium definition (our reconstruction, docs/derivations.md section 5): forward information lost (the gap
    1 - c_l) balanced against backward information kept (the product of slopes from l to the output).
    D is non-increasing in l, so the first crossing is unique.  Replace this function to change the definition.
    """
    g = gaps[: depth + 1]
    ls = log_slopes[:depth]
    suffix = np.zeros(depth + 1)
    suffix[:depth] = np.cumsum(ls[::-1])[::-1]  # suffix[l] = sum_{k=l}^{L-1} log kappa'(c_k); suffix[L] = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(g) - suffix
    # log(0) = -inf (c_l = 1 exactly) counts as balanced; a -inf suffix (a zero slope) as unbalanced
    return np.where(np.isnan(d), np.inf, d)


def _first_balanced(imbalance: np.ndarray) -> int:
    ok = imbalance <= 0.0
    return int(np.argmax(ok)) if ok.any() else len(imbalance) - 1


def equilibrium_layer(depth: int, activation: str | Activation = "relu", rho0: float = 0.0) -> int:
    """l*(L): 0-based index in the kernel sequence c_0 = rho0, ..., c_L of the layer in equilibrium.

    Default definition at the critical point of a homogeneous activation: the smallest l in 0..L with
    ``1 - c_l <= prod_{k=l}^{L-1} kappa'(c_k)`` (see :func:`equilibrium_imbalance`).  O(L); L = 10^6 in well under
    a second.

    Examples
    --------
    >>> equilibrium_layer(100), equilibrium_layer(1000)
    (27, 125)
    """
    depth = integer_in_range("depth", depth, 2, MAX_DEPTH)
    gaps, log_slopes = correlation_gaps(depth, activation, rho0)
    return _first_balanced(equilibrium_imbalance(gaps, log_slopes, depth))


def _position_from(gaps, log_slopes, depth: int) -> float:
    d = equilibrium_imbalance(gaps, log_slopes, depth)
    l = _first_balanced(d)
    if l == 0 or not (math.isfinite(d[l - 1]) and math.isfinite(d[l])):
        return float(l)
    return float(l - 1) + d[l - 1] / (d[l - 1] - d[l])


def equilibrium_position(depth: int, activation: str | Activation = "relu", rho0: float = 0.0) -> float:
    """Real-valued l*(L): the crossing D_l = 0 located by linear interpolation between the integers around it."""
    depth = integer_in_range("depth", depth, 2, MAX_DEPTH)
    gaps, log_slopes = correlation_gaps(depth, activation, rho0)
    return _position_from(gaps, log_slopes, depth)


def equilibrium_layers(depths: Sequence[int], activation: str | Activation = "relu", rho0: float = 0.0,
                       continuous: bool = False) -> np.ndarray:
    """l*(L) for several depths, from one forward sequence (c_l does not depend on L)."""
    depths = [integer_in_range("depths[i]", d, 2, MAX_DEPTH) for d in depths]
    if not depths:
        raise InputError("depths must be a non-empty sequence of integers >= 2")
    gaps, log_slopes = correlation_gaps(max(depths), activation, rho0)
    if continuous:
        return np.array([_position_from(gaps, log_slopes, L) for L in depths])
    return np.array([_first_balanced(equilibrium_imbalance(gaps, log_slopes, L)) for L in depths], dtype=np.int64)


def asymptotic_equilibrium_layer(depth: float, activation: str | Activation = "relu") -> float:
    """The large-L asymptote (9 pi^2 / (2 lam^2))^(1/5) L^(3/5) of the balance 1 - c_l = (l/L)^3."""
    lam = homogeneous_lambda(activation)
    return (9.0 * math.pi ** 2 / (2.0 * lam * lam)) ** 0.2 * float(depth) ** 0.6


def equilibrium_window(depth_min: int, depth_max: int, activation: str | Activation = "relu", rho0: float = 0.0,
                       depths: Sequence[int] | None = None, continuous: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The data of the finite-L exponent: l*(L) over a window of depths, from one forward sequence.

    The fit itself is statistics: ``sigprop.validation.stats.theory_exponent`` fits these points.

    Parameters
    ----------
    depth_min, depth_max : int
        The window, ``2 <= depth_min < depth_max``.
    activation : str or Activation, optional
        A positively homogeneous activation (relu, leaky_relu, abs); default ``"relu"``.
    rho0 : float, optional
        Input correlation ``c_0`` in [-1, 1); default 0.
    depths : sequence of int, optional
        The depths to use; default 40 log-spaced integers in ``[depth_min, depth_max]`` (duplicates removed).
    continuous : bool, optional
        Real-valued crossing (default, see :func:`equilibrium_position`) or the integer layer ``l*(L)``.

    Returns
    -------
    depths : ndarray of int
        The depths ``L``.
    layers : ndarray
        ``l*(L)`` at each depth (float if ``continuous``, else int); it can be 0 at small ``L``.

    Raises
    ------
    TypeError, ValueError
        A bad ``depth_min``/``depth_max`` (named), ``depth_max <= depth_min``, or a bad activation or ``rho0``.

    Examples
    --------
    >>> L, l = equilibrium_window(10, 100, depths=[10, 100], continuous=False)
    >>> L.tolist(), l.tolist()
    ([10, 100], [5, 27])
    """
    depth_min = integer_in_range("depth_min", depth_min, 2, MAX_DEPTH)
    depth_max = integer_in_range("depth_max", depth_max, 2, MAX_DEPTH)
    if depth_max <= depth_min:
        raise InputError(f"depth_max must be greater than depth_min, got {depth_min}..{depth_max}")
    if depths is None:
        depths = np.unique(np.round(np.geomspace(depth_min, depth_max, 40)).astype(int))
    layers = equilibrium_layers(list(depths), activation, rho0, continuous=continuous)
    return np.asarray(depths), layers
