"""Estimators, with standard errors, of finite-width correlators from per-network simulation statistics.

Every estimator is a smooth function of means over S *independent* networks; its standard error is the
jackknife over networks (leave one network out), which equals the delta method to O(1/S) and needs no
derivative.  Statistics (docs/conventions.md): ``preact_m2[s, l] = mean_i z_i^2``, ``preact_m4[s, l] = mean_i z_i^4``,
``preact_gram[s, l] = Z^T Z / n_l`` of network ``s`` at hidden layer ``l+1``.

Single input, width ``n`` of the layer measured:
  * single-neuron form: ``G_4 = E[z^4] / 3``, from ``mean(m4) / 3``;
  * cross-neuron form: ``G_4 = E[z_i^2 z_j^2]`` (i != j), per network unbiased by
    ``mean_{i != j} z_i^2 z_j^2 = (n^2 m2^2 - n m4) / (n (n - 1)) = (n m2^2 - m4) / (n - 1)``;
  * Gram form (uses that, given the previous layer, the neurons are i.i.d. Gaussian, true for Gaussian
    weights without normalisation): ``m2 = Sigma chi^2_n / n`` so ``E[m2^m] = c_2m(n) G_2m`` with
    ``c_2m(n) = prod_{j<m} (1 + 2j/n)``: ``G_2m = mean(m2^m) / c_2m(n)`` -- gives ``G_6`` from ``m2`` alone.
  Derived: ``ratio = G_4 / G_2^2 - 1``, ``kappa_4 = G_4 - G_2^2`` (= ``Cov(z_i^2, z_j^2)``), connected four-point
  ``E[z^4] - 3 E[z^2]^2 = 3 kappa_4``, and the vertex ``V = n_{l-1} kappa_4``.

Several inputs (Gram form): ``kappa_{(ab)(cd)} = E[z_ia z_ib z_kc z_kd] - E[z_a z_b] E[z_c z_d]`` (i != k).  With
``Q(ab,cd) = Ghat_ab Ghat_cd`` per network, ``E[Q(ab,cd)] = T_abcd / n + (1 - 1/n) C(ab,cd)`` where
``C(ab,cd) = E[z_ia z_ib z_kc z_kd]`` and (conditional Wick) ``T_abcd = C(ab,cd) + C(ac,bd) + C(ad,bc)``.  Solving the
3x3 system: ``C(ab,cd) = n/(n-1) E[Q(ab,cd) - (Q(ab,cd) + Q(ac,bd) + Q(ad,bc)) / (n+2)]`` -- unbiased per network.
(The cruder ``n Cov(Ghat_ab, Ghat_cd) = K_ac K_bd + K_ad K_bc + n kappa_{(ab)(cd)} + O(1/n)`` mixes in a Gaussian part.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from sigprop.theory.errors import InputError

__all__ = [
    "Estimate",
    "jackknife",
    "jackknife_pseudovalues",
    "SingleInputEstimates",
    "single_input_estimates",
    "gram_moment",
    "pair_index",
    "gram_four_point",
    "reliable_layers",
]


@dataclass(frozen=True)
class Estimate:
    """A value and its standard error (arrays of equal shape, or floats)."""

    value: np.ndarray | float
    se: np.ndarray | float

    def __getitem__(self, idx) -> "Estimate":
        return Estimate(np.asarray(self.value)[idx], np.asarray(self.se)[idx])


def _samples(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim == 0 or a.shape[0] < 2:
        raise InputError(f"{name}: need at least 2 independent networks along axis 0, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name}: samples must be finite")
    return a


def _leave_one_out(samples: Sequence[np.ndarray], f: Callable[..., np.ndarray],
                   who: str) -> tuple[int, np.ndarray, np.ndarray]:
    """``(S, f(ybar), f(ybar_{-s}))``: ``f`` on the full means and on the S leave-one-out means (axis 0)."""
    ys = [_samples(y, who) for y in samples]
    S = ys[0].shape[0]
    if any(y.shape[0] != S for y in ys):
        raise InputError(f"{who}: all samples need the same number of networks")
    means = [y.mean(axis=0) for y in ys]
    loo = [(S * m - y) / (S - 1) for m, y in zip(means, ys)]
    return S, np.asarray(f(*means), dtype=float), np.asarray(f(*loo), dtype=float)


def jackknife(samples: Sequence[np.ndarray], f: Callable[..., np.ndarray], bias_correct: bool = True) -> Estimate:
    """Estimate ``f(E[y_1], ..., E[y_k])`` from per-network samples ``y_i`` (arrays sharing axis 0 = network).

    ``f`` must be vectorised: it is called once on the full means and once on the S leave-one-out means
    (stacked on a new leading axis).  Returns the bias-corrected jackknife estimate
    ``S f(ybar) - (S-1) mean_s f(ybar_{-s})`` (exact for quadratic f such as ``E[a] - E[b]^2``; set
    ``bias_correct=False`` for plain ``f(ybar)``) with SE ``sqrt((S-1)/S sum_s (f_{-s} - mean f_{-s})^2)``.
    """
    S, full, f_loo = _leave_one_out(samples, f, "jackknife")
    mean_loo = f_loo.mean(axis=0)
    se = np.sqrt((S - 1) / S * ((f_loo - mean_loo) ** 2).sum(axis=0))
    value = S * full - (S - 1) * mean_loo if bias_correct else full
    if value.ndim == 0:
        return Estimate(float(value), float(se))
    return Estimate(value, se)


def jackknife_pseudovalues(samples: Sequence[np.ndarray], f: Callable[..., np.ndarray]) -> np.ndarray:
    """Per-network jackknife pseudo-values ``S f(ybar) - (S-1) f(ybar_{-s})`` of ``f(E[y_1], ..., E[y_k])``.

    Their mean is :func:`jackknife`'s bias-corrected estimate and their standard error ``std(ddof=1)/sqrt(S)`` its
    SE, exactly; so a jackknifed statistic can go where per-network values are expected (e.g.
    :func:`sigprop.validation.stats.mean_se`, a width sweep).  ``f`` as for :func:`jackknife`; the result has the
    network on axis 0.  For a covariance ``f(x, y, xy) = xy - x y`` the pseudo-values are
    ``S/(S-1) (x_s - xbar)(y_s - ybar)``.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 4.0, 7.0])
    >>> ps = jackknife_pseudovalues([x, x * x], lambda m, m2: m2 - m * m)
    >>> print(f"{ps.mean():.12f} {np.var(x, ddof=1):.12f}")
    7.000000000000 7.000000000000
    >>> est = jackknife([x, x * x], lambda m, m2: m2 - m * m)
    >>> bool(abs(ps.std(ddof=1) / 2.0 - est.se) < 1e-12)
    True
    """
    S, full, f_loo = _leave_one_out(samples, f, "jackknife_pseudovalues")
    return S * full - (S - 1) * f_loo


def _widths(width, L: int) -> np.ndarray:
    w = np.broadcast_to(np.asarray(width, dtype=float), (L,)).copy()
    if np.any(~np.isfinite(w)) or np.any(w < 2) or np.any(w != np.round(w)):
        raise InputError(f"width must be integer(s) >= 2 (one per layer or one for all), got {width!r}")
    return w


def gram_moment(m2, m: int, width) -> Estimate:
    """``G_2m = mean(m2^m) / c_2m(n)`` per layer (Gram form; needs conditionally Gaussian neurons).

    ``m2``: (S, L) per-network ``mean_i z_i^2``; ``width``: ``n_l`` of each measured layer (scalar or (L,)).
    """
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
        raise InputError(f"gram_moment: m must be an integer >= 1, got {m!r}")
    a = _samples(m2, "gram_moment(m2)")
    if a.ndim != 2:
        raise InputError(f"gram_moment: m2 must be (S, L), got shape {a.shape}")
    w = _widths(width, a.shape[1])
    c = np.prod([1.0 + 2.0 * j / w for j in range(m)], axis=0)
    return jackknife([a**m], lambda x: x / c)


@dataclass(frozen=True)
class SingleInputEstimates:
    """Per-layer estimates (index 0 = layer 1) of one input's correlators; each an :class:`Estimate`.

    ``form`` is ``'single'`` (G4 = E z^4 / 3), ``'cross'`` (E z_i^2 z_j^2, n/(n-1) corrected) or ``'gram'``.
    ``V`` needs the previous layer's width; ``V.value[0]`` is 0 (no previous hidden layer).
    """

    form: str
    G2: Estimate
    G4: Estimate
    ratio: Estimate
    kappa4: Estimate
    connected: Estimate
    V: Estimate


def single_input_estimates(m2, m4, width, form: str = "cross") -> SingleInputEstimates:
    """G_2, G_4, ``G_4/G_2^2 - 1``, ``kappa_4``, ``E z^4 - 3 (E z^2)^2`` and ``V`` from ``preact_m2/m4`` of one input.

    ``m2, m4``: (S, L) arrays (pass ``preact_m2[:, :, a]``); ``width``: width of each layer (scalar or (L,));
    ``form``: ``'single'``, ``'cross'`` or ``'gram'`` (``m4`` unused).  SE: jackknife over networks.
    """
    a2 = _samples(m2, "single_input_estimates(m2)")
    if a2.ndim != 2:
        raise InputError(f"single_input_estimates: m2 must be (S, L), got shape {a2.shape}")
    w = _widths(width, a2.shape[1])
    if form == "gram":
        q = a2**2 * (w / (w + 2.0))
    else:
        a4 = _samples(m4, "single_input_estimates(m4)")
        if a4.shape != a2.shape:
            raise InputError(f"single_input_estimates: m4 shape {a4.shape} differs from m2 shape {a2.shape}")
        if form == "single":
            q = a4 / 3.0
        elif form == "cross":
            q = (w * a2**2 - a4) / (w - 1.0)
        else:
            raise InputError(f"single_input_estimates: form must be 'single', 'cross' or 'gram', got {form!r}")
    G2 = jackknife([a2], lambda x: x)
    G4 = jackknife([q], lambda x: x)
    ratio = jackknife([q, a2], lambda x, y: x / y**2 - 1.0)
    kappa = jackknife([q, a2], lambda x, y: x - y**2)
    prev = np.concatenate([[0.0], w[:-1]])
    V = Estimate(prev * kappa.value, prev * kappa.se)
    conn = Estimate(3 * kappa.value, 3 * kappa.se)
    return SingleInputEstimates(form=form, G2=G2, G4=G4, ratio=ratio, kappa4=kappa, connected=conn, V=V)


def pair_index(P: int) -> list[tuple[int, int]]:
    """The input pairs ``(a, b)``, ``a <= b``, in the order used by :func:`gram_four_point` and the theory."""
    return [(a, b) for a in range(P) for b in range(a, P)]


def gram_four_point(gram, width: int) -> tuple[Estimate, Estimate]:
    """Cross-neuron four-point cumulant ``kappa_{(ab)(cd)}`` of one layer from per-network Grams.

    ``gram``: (S, P, P) ``preact_gram[:, l]``; ``width``: ``n_l``.  Returns ``(kappa, K)``: ``kappa`` of shape
    (npairs, npairs) over :func:`pair_index` pairs, and the kernel ``E[Ghat]`` (P, P).  Unbiased per network
    (see the module docstring); SE by jackknife.
    """
    g = _samples(gram, "gram_four_point(gram)")
    if g.ndim != 3 or g.shape[1] != g.shape[2]:
        raise InputError(f"gram_four_point: gram must be (S, P, P), got shape {g.shape}")
    nw = float(_widths(width, 1)[0])
    pairs = pair_index(g.shape[1])
    S, npairs = g.shape[0], len(pairs)
    X = np.empty((S, npairs, npairs))
    for p, (a, b) in enumerate(pairs):
        for q, (c, d) in enumerate(pairs):
            q1 = g[:, a, b] * g[:, c, d]
            q2 = g[:, a, c] * g[:, b, d]
            q3 = g[:, a, d] * g[:, b, c]
            X[:, p, q] = nw / (nw - 1.0) * (q1 - (q1 + q2 + q3) / (nw + 2.0))
    gp = np.stack([g[:, a, b] for a, b in pairs], axis=1)  # (S, npairs)
    kappa = jackknife([X, gp], lambda x, y: x - y[..., :, None] * y[..., None, :])
    K = jackknife([g], lambda x: x)
    return kappa, K


def reliable_layers(EY2, EY4, n_networks: int, factor: float = 16.0) -> np.ndarray:
    """Mask of layers whose per-network summand ``Y`` is light-tailed enough for a trustworthy standard error.

    Deep narrow networks have heavy-tailed moments (``m2`` is a product of one chi-square-like factor per layer),
    and a sample mean of ``Y = m2^m`` over S networks is then dominated by rare networks: its jackknife SE is itself
    wrong.  The relative error of an SE is about ``sqrt(kurtosis / S)``; with the non-central kurtosis proxy
    ``rho = E[Y^4] / E[Y^2]^2`` (known exactly for deep-linear and ReLU networks: ``E[m2^k] = c_2k(n) G_2k``), a layer
    is judged only where ``rho <= S / factor`` (factor 16: the SE is good to ~25%).  ``EY2``, ``EY4``: per-layer arrays.
    """
    e2 = np.asarray(EY2, dtype=float)
    e4 = np.asarray(EY4, dtype=float)
    if isinstance(n_networks, bool) or not isinstance(n_networks, (int, np.integer)) or n_networks < 2:
        raise InputError(f"reliable_layers: n_networks must be an integer >= 2, got {n_networks!r}")
    if not factor > 0:
        raise InputError(f"reliable_layers: factor must be > 0, got {factor!r}")
    return e4 / e2**2 <= n_networks / factor
