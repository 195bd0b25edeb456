"""Covariances of weights and frames, and their spectra: isotropy, effective ranks, the Marchenko-Pastur law.

* Frame isotropy ``tr(G) / (sqrt(n) ||G||_F)`` of a PSD frame operator (e.g. a pre-activation AGOP), in ``(0, 1]``,
  1 exactly when ``G`` is proportional to the identity (:func:`frame_isotropy`; its square is the participation
  ratio over ``n``), optionally on a subspace such as range(W) (:func:`range_basis`).
* Weight covariances (the rainbow paper's ``C_hat_j = W_j^T W_j / d_j``, rows as samples, docs/rainbow.md):
  :func:`weight_covariance` (in a basis aligned by the layer below), :func:`covariance_spectrum`, the effective ranks
  :func:`participation_ratio` (``(tr C)^2 / tr C^2``) and :func:`entropy_rank` (``exp`` of the spectral entropy),
  :func:`top_share` (trace share of the top ``k`` eigenvectors), and the white reference, the Marchenko-Pastur law of
  a layer at initialisation: :func:`marchenko_pastur_edges`, :func:`marchenko_pastur_density`,
  :func:`marchenko_pastur_cdf`, :func:`marchenko_pastur_quantiles`, :func:`marchenko_pastur_participation`,
  :func:`marchenko_pastur_ks`.

Pure functions of NumPy arrays: nothing is trained or simulated.  Bad input raises
:class:`~sigprop.theory.errors.InputError` or :class:`~sigprop.theory.errors.InputTypeError` before any work; no
input is symmetrised or clipped silently.

Extreme magnitudes: the isotropy and the effective ranks are scale invariant and are computed on their arrays
divided by the power of two just above the largest entry (exact: no rounding), so their values at ordinary
magnitudes are unchanged bit for bit and any finite magnitude gives the values of ordinary ones;
:func:`weight_covariance` scales the same way and raises an ``InputError`` naming ``W`` when the covariance itself
is beyond float64, instead of returning inf.

Examples
--------
>>> import numpy as np
>>> lam = covariance_spectrum(np.diag([4.0, 1.0, 1.0, 0.0]))
>>> participation_ratio(lam), round(frame_isotropy(np.diag(lam)) ** 2 * 4, 12)    # isotropy^2 = PR / n
(2.0, 2.0)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import COV_TOL, check_covariance
from sigprop.validation.exact_scaling import rescaled, unit_scale

from ._common import (
    DEFAULT_TOL,
    check_basis,
    check_count,
    check_psd_eigs,
    check_rotation,
    check_square,
    check_symmetric,
    check_tol,
    finite_array,
    isotropy_of,
)

__all__ = [
    "covariance_spectrum",
    "entropy_rank",
    "frame_isotropy",
    "marchenko_pastur_cdf",
    "marchenko_pastur_density",
    "marchenko_pastur_edges",
    "marchenko_pastur_ks",
    "marchenko_pastur_participation",
    "marchenko_pastur_quantiles",
    "participation_ratio",
    "range_basis",
    "top_share",
    "weight_covariance",
]


# --- isotropy and the proposition ---------------------------------------------------------------------------


def frame_isotropy(G, subspace=None, *, tol: float = DEFAULT_TOL) -> float:
    """Isotropy of a PSD frame operator: ``tr(G) / (sqrt(n) ||G||_F)``, in ``(0, 1]``.

    It is the cosine similarity of ``G`` with the identity.  With eigenvalues ``lam >= 0`` it equals
    ``mean(lam) / rms(lam)``: 1 exactly when ``G`` is proportional to ``I`` (a tight frame), ``1/sqrt(n)`` for rank
    one.  With ``subspace=Q`` (orthonormal columns, ``n x k``) it is the same for the compression ``Q^T G Q`` with
    ``k`` in place of ``n``: the isotropy of ``G`` on span(Q) (:func:`range_basis` gives the span of a layer's
    weights, the only part of ``G`` the NFA sees).  Scale invariant, and computed on ``G`` divided by the power of
    two just above ``max|G|`` (exact), so it is the same at any finite magnitude.

    Parameters
    ----------
    G : array_like, shape (n, n)
        Symmetric (to ``tol``, relative, Frobenius) and positive semi-definite (eigenvalues ``>= -tol max|lam|``).
    subspace : array_like, shape (n, k), optional
        ``Q`` with ``||Q^T Q - I_k||_max <= sqrt(tol)``, ``1 <= k <= n``.
    tol : float, default 1e-10

    Returns
    -------
    float

    Raises
    ------
    InputError
        ``G`` not square, non-finite, not symmetric or not PSD beyond ``tol``; ``Q`` of the wrong shape or not
        orthonormal; ``G`` (or ``Q^T G Q``) zero, where the isotropy is undefined.
    InputTypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> frame_isotropy(3.0 * np.eye(4))
    1.0
    >>> round(frame_isotropy(np.diag([1.0, 0.0, 0.0, 0.0])), 12)    # rank one: 1/sqrt(4)
    0.5
    >>> round(frame_isotropy(np.diag([1.0, 1.0, 5.0]), subspace=np.eye(3)[:, :2]), 12)
    1.0
    """
    who = "frame_isotropy"
    tol = check_tol(tol, who)
    G = finite_array(G, "G", who, 2)
    check_square(G, "G", who)
    G, e = unit_scale(G)
    check_symmetric(G, "G", who, tol)
    if np.any(G):
        check_psd_eigs(np.linalg.eigvalsh(G), "G", who, tol, "(a frame operator)", e)
    if subspace is not None:
        Q = check_basis(subspace, "subspace", G.shape[0], "G", who, tol)
        G = Q.T @ G @ Q
        name = "Q^T G Q"
    else:
        name = "G"
    if not np.any(G):
        raise InputError(f"{who}: the isotropy is undefined because {name} is zero; it needs a nonzero PSD matrix")
    return isotropy_of(G)


def range_basis(W, *, rtol: float | None = None) -> np.ndarray:
    """Orthonormal basis ``Q`` (``n_out x r``) of range(W), the column space of ``W`` (``n_out x n_in``).

    ``Q = U[:, :r]`` from the SVD ``W = U S V^T``; the rank ``r`` counts singular values ``> rtol * s_max``
    (default ``rtol = max(n_out, n_in) * eps``, as numpy.linalg.matrix_rank).  When ``W`` has full row rank
    (``r = n_out``, possible only for ``n_out <= n_in``) the range is all of ``R^{n_out}``.

    Parameters
    ----------
    W : array_like, shape (n_out, n_in)
    rtol : float, optional
        Relative rank threshold in ``[0, 1)``.

    Returns
    -------
    numpy.ndarray
        ``(n_out, r)`` with orthonormal columns.

    Raises
    ------
    InputError
        ``W`` not 2-D, non-finite, or zero; ``rtol`` outside ``[0, 1)``.
    InputTypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> range_basis(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])).shape    # rank 1 in R^3
    (3, 1)
    """
    who = "range_basis"
    W = finite_array(W, "W", who, 2)
    rt = max(W.shape) * np.finfo(float).eps if rtol is None else check_tol(rtol, who)
    U, s, _ = np.linalg.svd(unit_scale(W)[0], full_matrices=False)  # range(W) is scale invariant
    if s[0] == 0.0:
        raise InputError(f"{who}: W is zero; its range is {{0}} and has no basis")
    return U[:, : int(np.sum(s > rt * s[0]))]



# --- weight covariances and their spectra --------------------------------------------------------------------


def weight_covariance(W, alignment=None) -> np.ndarray:
    """Row covariance estimate ``C_hat = A^T W^T W A / n_out`` of a layer's weights, in an aligned input basis.

    A layer computes ``z = h W^T`` with ``W`` of shape ``(n_out, n_in)``; its rows are ``n_out`` draws of the
    weight vector, and ``W^T W / n_out`` is their (uncentred) covariance, the paper's ``C_hat_j = W_j^T W_j / d_j``.
    When the input activations ``h`` of this network are aligned onto a reference network's by ``h A ~ h_ref``
    (:func:`procrustes` of the layer below), ``z = (h A)(W A)^T``, so ``W A`` are the same weights in the
    reference's basis and ``A^T W^T W A / n_out`` is the covariance there; estimates of several networks can then
    be averaged.  The product is symmetrised, ``(C + C^T) / 2``, to remove the rounding asymmetry of ``G^T G``
    (it is symmetric in exact arithmetic).  It is formed from ``W`` divided by a power of two (exact); a covariance
    beyond float64 (``max|W|`` near ``1e154`` and beyond) is an error, not inf.

    Parameters
    ----------
    W : array_like
        ``(n_out, n_in)`` weights (the effective ones, multipliers included).
    alignment : array_like or None, optional
        ``(n_in, n_in)`` orthogonal ``A`` with ``h A ~ h_ref``; None (default): the identity (the input layer, or
        the reference network itself).

    Returns
    -------
    numpy.ndarray
        ``(n_in, n_in)`` symmetric PSD.

    Raises
    ------
    InputError
        ``W`` not 2-D, empty or non-finite; ``alignment`` of the wrong shape or not orthogonal; a covariance beyond
        float64 (overflow).

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 0.0], [1.0, 2.0]])
    >>> weight_covariance(W)
    array([[1., 1.],
           [1., 2.]])
    >>> P = np.array([[0.0, 1.0], [1.0, 0.0]])   # the reference has the two inputs swapped
    >>> weight_covariance(W, P)
    array([[2., 1.],
           [1., 1.]])
    """
    W = real_array(W, "W", "weight_covariance", 2, allow_empty=False)
    A = None if alignment is None else check_rotation(alignment, W.shape[1], "weight_covariance")
    top = float(np.max(np.abs(W)))
    W, e = unit_scale(W)
    if A is not None:
        W = W @ A
    C = W.T @ W / W.shape[0]
    return rescaled(0.5 * (C + C.T), 2 * e, "weight_covariance", "the covariance W^T W / n_out",
                     f"max|W| = {top:.3g}", "W")


def covariance_spectrum(C, tol: float = COV_TOL) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix in decreasing order; those in ``[-tol max|lambda|, 0)`` become 0.

    Parameters
    ----------
    C : array_like
        ``(p, p)`` symmetric (``max|C - C^T| <= tol max|C|``) and PSD beyond rounding.
    tol : float, optional
        Relative tolerance (default ``sigprop.theory.rainbow.COV_TOL`` = 1e-10).

    Returns
    -------
    numpy.ndarray
        ``(p,)`` eigenvalues ``lambda_1 >= ... >= lambda_p >= 0``; eigenvalues with ``|lambda| <= tol max|lambda|``
        are rounding and are returned as exactly 0 (stated, not silent: anything more negative is an error), so
        that the zero eigenvalues of a rank-deficient estimate are zeros.

    Raises
    ------
    InputError
        Not square, non-finite, not symmetric, or an eigenvalue below ``-tol max|lambda|`` (reported).

    Examples
    --------
    >>> import numpy as np
    >>> covariance_spectrum(np.diag([1.0, 3.0, 2.0]))
    array([3., 2., 1.])
    """
    M = real_array(C, "C", "covariance_spectrum", 2, allow_empty=False)
    if M.shape[0] != M.shape[1]:
        raise InputError(f"covariance_spectrum: C must be square, got shape {M.shape}")
    M = check_covariance(M, M.shape[0], name="C", who="covariance_spectrum", tol=tol)
    lam = np.linalg.eigvalsh(M)[::-1].copy()
    lam[np.abs(lam) <= tol * np.max(np.abs(lam))] = 0.0  # rounding: check_covariance refused anything more negative
    return lam


def _spectrum(lam, who: str) -> np.ndarray:
    """Checked eigenvalues divided by the power of two just above the largest (exact): for the scale-invariant
    effective ranks, whose sums and squares then neither overflow nor underflow."""
    return unit_scale(_eigenvalues(lam, who))[0]


def _eigenvalues(lam, who: str) -> np.ndarray:
    lam = real_array(lam, "eigenvalues", who, 1, allow_empty=False)
    if np.any(lam < 0):
        raise InputError(f"{who}: eigenvalues must be >= 0 (a PSD spectrum, e.g. covariance_spectrum), "
                         f"got minimum {lam.min():.6g}")
    if not np.any(lam > 0):  # not lam.sum(): it may overflow
        raise InputError(f"{who}: eigenvalues are all zero, so the effective rank is undefined")
    return lam


def participation_ratio(eigenvalues) -> float:
    """Effective rank by participation ratio: ``(sum lambda)^2 / sum lambda^2 = (tr C)^2 / tr C^2``.

    In ``[1, p]``: 1 for rank one, ``p`` for ``C`` proportional to the identity, ``r`` for ``r`` equal nonzero
    eigenvalues.  A white layer at initialisation (Marchenko-Pastur, aspect ratio ``y``) has ``p / (1 + y)``
    (:func:`marchenko_pastur_participation`).  Scale invariant, and computed on the eigenvalues divided by
    the power of two just above the largest (exact), so any finite magnitude gives the same number.

    Parameters
    ----------
    eigenvalues : array_like
        1-D, finite, >= 0, not all 0 (any order).

    Returns
    -------
    float

    Raises
    ------
    InputError
        Not 1-D, empty, non-finite, negative, or all zero.

    Examples
    --------
    >>> participation_ratio([2.0, 2.0, 0.0, 0.0]), participation_ratio([3.0, 1.0])
    (2.0, 1.6)
    """
    lam = _spectrum(eigenvalues, "participation_ratio")
    return float(lam.sum() ** 2 / np.sum(lam ** 2))


def entropy_rank(eigenvalues) -> float:
    """Effective rank by spectral entropy (Roy & Vetterli 2007): ``exp(-sum_i p_i log p_i)``, ``p = lambda / sum``.

    In ``[1, p]``, with ``0 log 0 = 0``; ``r`` for ``r`` equal nonzero eigenvalues; at least the participation ratio
    (Renyi entropies decrease in their order: this is order 1, the participation ratio is order 2).  Scale
    invariant and computed so (as :func:`participation_ratio`).

    Parameters
    ----------
    eigenvalues : array_like
        1-D, finite, >= 0, not all 0.

    Returns
    -------
    float

    Raises
    ------
    InputError
        As :func:`participation_ratio`.

    Examples
    --------
    >>> round(entropy_rank([1.0, 1.0, 1.0, 0.0]), 12)
    3.0
    >>> round(entropy_rank([3.0, 1.0]), 4)
    1.7548
    """
    lam = _spectrum(eigenvalues, "entropy_rank")
    p = lam / lam.sum()
    p = p[p > 0]  # 0 log 0 = 0 (also for subnormal eigenvalues whose share underflows to 0)
    return float(np.exp(-np.sum(p * np.log(p))))


def top_share(eigenvalues, k: int) -> float:
    """Share of the trace in the ``k`` largest eigenvalues: ``sum_{i<=k} lambda_(i) / sum_i lambda_i``.

    Scale invariant and computed so (as :func:`participation_ratio`).

    Parameters
    ----------
    eigenvalues : array_like
        1-D, finite, >= 0, not all 0 (any order: sorted here).
    k : int
        ``1 <= k <= p``.

    Returns
    -------
    float
        In ``[k / p, 1]``.

    Raises
    ------
    InputError
        Bad eigenvalues (as :func:`participation_ratio`) or ``k`` outside ``[1, p]``.
    InputTypeError
        ``k`` not an integer.

    Examples
    --------
    >>> top_share([1.0, 4.0, 3.0, 2.0], 2)
    0.7
    """
    lam = _spectrum(eigenvalues, "top_share")
    k = check_count(k, "k", "top_share", 1, lam.size)
    return float(np.sort(lam)[::-1][:k].sum() / lam.sum())



# --- Marchenko-Pastur ----------------------------------------------------------------------------------------


def _ratio_scale(ratio, scale, who: str) -> tuple[float, float]:
    out = []
    for name, v in (("ratio", ratio), ("scale", scale)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise InputTypeError(f"{who}: {name} must be a real number > 0, got {type(v).__name__}")
        if not (math.isfinite(v) and v > 0):
            raise InputError(f"{who}: {name} must be finite and > 0, got {v!r}")
        out.append(float(v))
    return out[0], out[1]


def marchenko_pastur_edges(ratio: float, scale: float = 1.0) -> tuple[float, float]:
    """Edges ``(sigma^2 (1 - sqrt y)^2, sigma^2 (1 + sqrt y)^2)`` of the Marchenko-Pastur law.

    The law: ``C_hat = W^T W / n`` for ``W`` with ``n`` i.i.d. rows ``N(0, sigma^2 I_p)`` has, as ``p, n -> inf``
    with ``p / n -> y`` (``ratio``, the aspect ratio ``n_in / n_out`` of a layer), the eigenvalue distribution
    ``(1 - 1/y)_+ delta_0 + f(x) dx`` with ``f(x) = sqrt((b - x)(x - a)) / (2 pi sigma^2 y x)`` on ``[a, b]``
    (these edges).  Mean ``sigma^2``, second moment ``sigma^4 (1 + y)``.  A hidden layer at initialisation,
    ``W ~ N(0, C_W / n_in)``, is the case ``sigma^2 = C_W / n_in`` (``scale``).

    Parameters
    ----------
    ratio : float
        ``y = p / n > 0``.
    scale : float, optional
        ``sigma^2 > 0`` (default 1).

    Returns
    -------
    (float, float)

    Raises
    ------
    InputError
        ``ratio`` or ``scale`` not finite and > 0.

    Examples
    --------
    >>> marchenko_pastur_edges(0.25)
    (0.25, 2.25)
    >>> marchenko_pastur_edges(1.0, 2.0)
    (0.0, 8.0)
    """
    y, s = _ratio_scale(ratio, scale, "marchenko_pastur_edges")
    r = math.sqrt(y)
    return s * (1.0 - r) ** 2, s * (1.0 + r) ** 2


def marchenko_pastur_density(x, ratio: float, scale: float = 1.0) -> np.ndarray:
    """Density ``f(x) = sqrt((b - x)(x - a)) / (2 pi sigma^2 y x)`` of the continuous part, 0 outside ``[a, b]``.

    It integrates to ``min(1, 1/y)``; for ``y > 1`` the rest, ``1 - 1/y``, is an atom at 0 (not in ``f``).  See
    :func:`marchenko_pastur_edges` for the law and its parameters.

    Parameters
    ----------
    x : array_like
        Finite points.
    ratio, scale : float
        ``y > 0`` and ``sigma^2 > 0``.

    Returns
    -------
    numpy.ndarray
        ``f(x)``, the shape of ``x``.

    Raises
    ------
    InputError
        Non-finite ``x``, bad ``ratio`` or ``scale``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(0.25, 2.25, 200001)                  # the support for y = 0.25
    >>> f = marchenko_pastur_density(x, 0.25)
    >>> round(float(np.sum(f[1:] + f[:-1]) * (x[1] - x[0]) / 2), 6)   # integrates to 1
    1.0
    """
    y, s = _ratio_scale(ratio, scale, "marchenko_pastur_density")
    x = real_array(x, "x", "marchenko_pastur_density", tuple(range(0, 8)))
    a, b = marchenko_pastur_edges(y, s)
    out = np.zeros_like(x)
    inside = (x > a) & (x < b) & (x > 0)
    xi = x[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2.0 * math.pi * s * y * xi)
    return out


def _mp_grid(y: float, s: float, points: int = 4097) -> tuple[np.ndarray, np.ndarray]:
    """Points ``x(theta) = (a+b)/2 - (b-a)/2 cos theta`` of ``[a, b]`` and the continuous CDF there (trapezoid in
    theta: the integrand ``f dx/dtheta = ((b-a)/2)^2 sin^2 theta / (2 pi s y x)`` is smooth, so the rule itself is
    accurate to ~1e-12; linear interpolation between the points adds up to ~1e-7)."""
    a, b = marchenko_pastur_edges(y, s)
    th = np.linspace(0.0, math.pi, points)
    x = 0.5 * (a + b) - 0.5 * (b - a) * np.cos(th)
    g = (0.5 * (b - a)) ** 2 * np.sin(th) ** 2 / (2.0 * math.pi * s * y * np.maximum(x, 1e-300))
    if a == 0.0:
        g[0] = (0.5 * (b - a)) ** 2 * 4.0 / (2.0 * math.pi * s * y * (b - a))  # limit of sin^2/x at theta -> 0
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * (th[1] - th[0]))])
    return x, cdf


def marchenko_pastur_cdf(x, ratio: float, scale: float = 1.0) -> np.ndarray:
    """Distribution function ``F(x) = P(lambda <= x)`` of the Marchenko-Pastur law, atom at 0 included.

    ``F(x) = (1 - 1/y)_+ [x >= 0] + int_a^x f``; the integral is numerical (trapezoid rule in the angle of
    ``x = (a+b)/2 - (b-a)/2 cos theta`` at 4097 angles, interpolated linearly in ``x``: absolute error below 1e-6,
    measured 6e-8 against adaptive quadrature in tests/test_rainbow_measures_trained.py).

    Parameters
    ----------
    x : array_like
        Finite points.
    ratio, scale : float
        ``y > 0`` and ``sigma^2 > 0`` (:func:`marchenko_pastur_edges`).

    Returns
    -------
    numpy.ndarray
        ``F(x)`` in ``[0, 1]``, the shape of ``x``.

    Raises
    ------
    InputError
        Non-finite ``x``, bad ``ratio`` or ``scale``.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(marchenko_pastur_cdf([-1.0, 0.0, 6.0], 2.0), 12)   # y = 2: half the eigenvalues are 0
    array([0. , 0.5, 1. ])
    """
    y, s = _ratio_scale(ratio, scale, "marchenko_pastur_cdf")
    x = real_array(x, "x", "marchenko_pastur_cdf", tuple(range(0, 8)))
    grid, cdf = _mp_grid(y, s)
    atom = max(0.0, 1.0 - 1.0 / y)
    cont = np.interp(x, grid, cdf / cdf[-1] * min(1.0, 1.0 / y), left=0.0, right=min(1.0, 1.0 / y))
    return np.where(x >= 0.0, atom, 0.0) + cont


def marchenko_pastur_quantiles(p: int, ratio: float, scale: float = 1.0) -> np.ndarray:
    """The ``p`` "classical locations" of a Marchenko-Pastur spectrum, in decreasing order.

    Rank ``i`` (1-based) gets ``gamma_i = F^{-1}(1 - (i - 1/2) / p)`` (:func:`marchenko_pastur_cdf`), the value the
    ``i``-th largest eigenvalue of a ``p x p`` white covariance estimate concentrates around; for ``y > 1`` the last
    ``~(1 - 1/y) p`` are 0 (the atom).  For rank plots against an empirical spectrum.

    Parameters
    ----------
    p : int
        Number of eigenvalues, >= 1.
    ratio, scale : float
        ``y > 0`` and ``sigma^2 > 0``.

    Returns
    -------
    numpy.ndarray
        ``(p,)``, decreasing, inside ``[0, b]``.

    Raises
    ------
    InputError
        ``p < 1``, bad ``ratio`` or ``scale``.
    InputTypeError
        ``p`` not an integer.

    Examples
    --------
    >>> q = marchenko_pastur_quantiles(4, 0.25)
    >>> bool(np.all(np.diff(q) < 0)), bool(0.25 < q[-1] and q[0] < 2.25)
    (True, True)
    """
    p = check_count(p, "p", "marchenko_pastur_quantiles", 1, None)
    y, s = _ratio_scale(ratio, scale, "marchenko_pastur_quantiles")
    grid, cdf = _mp_grid(y, s)
    atom = max(0.0, 1.0 - 1.0 / y)
    u = 1.0 - (np.arange(1, p + 1) - 0.5) / p
    cont = atom + cdf / cdf[-1] * (1.0 - atom)
    return np.where(u <= atom, 0.0, np.interp(u, cont, grid))


def marchenko_pastur_participation(p: int, ratio: float) -> float:
    """Participation ratio of the Marchenko-Pastur law over ``p`` eigenvalues: ``p / (1 + y)``.

    From the moments ``E lambda = sigma^2`` and ``E lambda^2 = sigma^4 (1 + y)``: ``p (E lambda)^2 / E lambda^2``.
    At finite ``n = p / y`` rows the ratio of expectations is ``p n / (n + p + 1)``
    (``E tr C_hat^2 = p sigma^4 (n + p + 1) / n``), a relative difference ``1 / (n + p)``.

    Parameters
    ----------
    p : int
        Dimension, >= 1.
    ratio : float
        ``y > 0``.

    Returns
    -------
    float

    Raises
    ------
    InputError
        ``p < 1`` or bad ``ratio``.
    InputTypeError
        ``p`` not an integer.

    Examples
    --------
    >>> marchenko_pastur_participation(512, 1.0)
    256.0
    """
    p = check_count(p, "p", "marchenko_pastur_participation", 1, None)
    y, _ = _ratio_scale(ratio, 1.0, "marchenko_pastur_participation")
    return p / (1.0 + y)


def marchenko_pastur_ks(eigenvalues, ratio: float, scale: float = 1.0) -> float:
    """Kolmogorov-Smirnov distance ``max_x |F_emp(x) - F(x)|`` of a spectrum from the Marchenko-Pastur law.

    Both distribution functions are right-continuous steps or ramps, so the supremum is attained at an eigenvalue
    ``v``, from the right or the left: ``max_v max(|F_emp(v) - F(v)|, |F_emp(v-) - F(v-)|)``, with ``F`` from
    :func:`marchenko_pastur_cdf` and ``F(0-) = 0`` (the atom at 0 when ``y > 1``, where zero eigenvalues belong:
    :func:`covariance_spectrum` returns those within rounding of 0 as exactly 0).  For a white covariance estimate
    it is of order ``1/p`` (rigidity of the eigenvalues), far below the classical ``1/sqrt(p)`` of i.i.d. samples;
    a learned spectrum is far from it.

    Parameters
    ----------
    eigenvalues : array_like
        1-D, finite, >= 0.
    ratio, scale : float
        ``y > 0`` and ``sigma^2 > 0``.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    InputError
        Bad eigenvalues, ``ratio`` or ``scale``.

    Examples
    --------
    >>> float(marchenko_pastur_ks([100.0, 200.0], 0.5))   # everything beyond the upper edge
    1.0
    """
    lam = _eigenvalues(eigenvalues, "marchenko_pastur_ks")
    y, s = _ratio_scale(ratio, scale, "marchenko_pastur_ks")
    v, counts = np.unique(lam, return_counts=True)
    right = np.cumsum(counts) / lam.size
    left = right - counts / lam.size
    F = marchenko_pastur_cdf(v, y, s)
    F_left = F - np.where(v == 0.0, max(0.0, 1.0 - 1.0 / y), 0.0)
    return float(max(np.max(np.abs(right - F)), np.max(np.abs(left - F_left))))
