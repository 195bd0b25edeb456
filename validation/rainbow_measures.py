"""Measures of the rainbow model (docs/rainbow.md): alignment of two networks, kernel similarity, weight covariances.

The rainbow statement: two independently drawn (or trained) networks of the same width have activations that
differ, to leading order, by an orthogonal transformation of the neurons.  :func:`procrustes` finds the best one,
``A = argmin_{A^T A = I} |F_a A - F_b|_F``, which is ``A = U V^T`` from the SVD ``F_a^T F_b = U S V^T`` of the
(uncentred) cross-covariance, and reports the relative error ``|F_a A - F_b|_F / |F_b|_F``; :func:`aligned_error`
evaluates a fitted ``A`` on other samples and :func:`feature_cka` compares the two kernels (linear CKA).

Weight covariances (the paper's ``C_hat_j = W_j^T W_j / d_j``, rows as samples): :func:`weight_covariance` (in a
basis aligned by the layer below), :func:`covariance_spectrum`, the effective ranks :func:`participation_ratio`
(``(tr C)^2 / tr C^2``) and :func:`entropy_rank` (``exp`` of the spectral entropy), :func:`top_share` (trace share
of the top ``k`` eigenvectors), and the white reference, the Marchenko-Pastur law of a layer at initialisation:
:func:`marchenko_pastur_edges`, :func:`marchenko_pastur_density`, :func:`marchenko_pastur_cdf`,
:func:`marchenko_pastur_quantiles`, :func:`marchenko_pastur_participation`, :func:`marchenko_pastur_ks`.

Pure functions of NumPy arrays: nothing is trained or simulated.  Bad input raises
:class:`~sigprop.theory.errors.InputError` or :class:`~sigprop.theory.errors.InputTypeError` before any work.

Extreme magnitudes: the alignment, the CKA and the effective ranks are scale invariant and are computed on their
arrays divided by the power of two just above the largest entry (exact: no rounding), so their values at ordinary
magnitudes are unchanged bit for bit and any finite magnitude gives the values of ordinary ones;
:func:`weight_covariance` scales the same way and raises an ``InputError`` naming ``W`` when the covariance itself
is beyond float64, instead of returning inf.

Examples
--------
A rotated copy is aligned exactly:

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> F = rng.standard_normal((20, 4))
>>> Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
>>> al = procrustes(F @ Q, F)
>>> round(al.relative_error, 10), bool(al.raw_error > 0.5)
(0.0, True)
>>> round(feature_cka(F @ Q, F), 12)
1.0
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import COV_TOL, check_covariance
from sigprop.validation.exact_scaling import binary_exponent, rescaled, unit_scale

__all__ = [
    "ORTHO_TOL",
    "ProcrustesAlignment",
    "aligned_error",
    "covariance_spectrum",
    "entropy_rank",
    "feature_cka",
    "marchenko_pastur_cdf",
    "marchenko_pastur_density",
    "marchenko_pastur_edges",
    "marchenko_pastur_ks",
    "marchenko_pastur_participation",
    "marchenko_pastur_quantiles",
    "participation_ratio",
    "procrustes",
    "top_share",
    "weight_covariance",
]

ORTHO_TOL = 1e-8  # max|A^T A - I| accepted for a given rotation (rounding of an SVD product is ~1e-13)


@dataclass(frozen=True)
class ProcrustesAlignment:
    """Result of :func:`procrustes`.

    Attributes
    ----------
    rotation : numpy.ndarray
        ``(n, n)`` orthogonal ``A = U V^T`` with ``F_a A ~ F_b``.
    relative_error : float
        ``|F_a A - F_b|_F / |F_b|_F`` (aligned).
    raw_error : float
        ``|F_a - F_b|_F / |F_b|_F`` (not aligned).
    """

    rotation: np.ndarray
    relative_error: float
    raw_error: float


def _features(F, name: str, who: str = "procrustes") -> np.ndarray:
    return real_array(F, name, who, 2, allow_empty=False)


def _pair(F_a, F_b, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Two finite 2-D feature matrices of the same shape (samples x neurons)."""
    F_a = _features(F_a, "F_a", who)
    F_b = _features(F_b, "F_b", who)
    if F_a.shape[0] != F_b.shape[0]:
        raise InputError(f"{who}: F_a and F_b must have the same number of samples (rows), "
                         f"got {F_a.shape[0]} and {F_b.shape[0]}")
    if F_a.shape[1] != F_b.shape[1]:
        raise InputError(f"{who}: F_a and F_b must have the same number of neurons (columns), got "
                         f"{F_a.shape[1]} and {F_b.shape[1]} (pad the narrower with zero columns)")
    return F_a, F_b


def _common_scale(F_a: np.ndarray, F_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both divided by one power of two, the one just above ``max(|F_a|, |F_b|)`` (exact): relative errors are
    unchanged and no norm or product overflows."""
    e = max(binary_exponent(F_a), binary_exponent(F_b))
    return np.ldexp(F_a, -e), np.ldexp(F_b, -e)


def procrustes(F_a, F_b) -> ProcrustesAlignment:
    """Orthogonal Procrustes alignment of ``F_a`` onto ``F_b``: ``A = U V^T`` from ``F_a^T F_b = U S V^T``.

    ``A`` minimises ``|F_a A - F_b|_F`` over orthogonal matrices (the same ``A`` as
    ``scipy.linalg.orthogonal_procrustes(F_a, F_b)``; unique when ``F_a^T F_b`` has full rank, otherwise one of the
    minimisers, all with the same error).  The minimum is ``|F_a|^2 + |F_b|^2 - 2 sum(S)``.  ``A`` is invariant
    under positive scalings of ``F_a`` and of ``F_b`` and the relative errors under one common scaling, so they are
    computed on the arrays divided by powers of two (exact) and are the same at any finite magnitude (entries
    near ``1e160`` and beyond included, whose ``F_a^T F_b`` would overflow).

    Parameters
    ----------
    F_a, F_b : array_like
        ``(N, n)`` activations of two networks on the same ``N`` samples (rows), ``n`` neurons (columns).

    Returns
    -------
    ProcrustesAlignment
        The rotation, the aligned relative error and the raw (unaligned) relative error, both relative to
        ``|F_b|_F``.

    Raises
    ------
    InputError
        Not 2-D, empty, non-finite, mismatched sample counts (rows) or neuron counts (columns: pad the narrower with
        zero columns to compare different widths), or ``F_b`` identically zero.

    Examples
    --------
    >>> import numpy as np
    >>> al = procrustes(np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2))
    >>> np.round(al.rotation, 12) + 0.0
    array([[0., 1.],
           [1., 0.]])
    >>> round(al.relative_error, 12)
    0.0
    """
    F_a, F_b = _pair(F_a, F_b, "procrustes")
    if not np.any(F_b):
        raise InputError("procrustes: F_b is identically zero, so the relative error is undefined")
    U, _, Vt = np.linalg.svd(unit_scale(F_a)[0].T @ unit_scale(F_b)[0])
    A = U @ Vt
    F_a, F_b = _common_scale(F_a, F_b)
    norm_b = float(np.linalg.norm(F_b))
    if norm_b == 0.0:
        raise InputError("procrustes: F_b is below 2^-1074 times max|F_a| (it vanishes when scaled with F_a), "
                         "so the relative error is beyond float64")
    err = float(np.linalg.norm(F_a @ A - F_b)) / norm_b
    raw = float(np.linalg.norm(F_a - F_b)) / norm_b
    return ProcrustesAlignment(rotation=A, relative_error=err, raw_error=raw)


# --- alignment and kernel similarity ------------------------------------------------------------------------


def _rotation(A, n: int, who: str, tol: float = ORTHO_TOL) -> np.ndarray:
    A = real_array(A, "rotation", who, 2, allow_empty=False)
    if A.shape != (n, n):
        raise InputError(f"{who}: rotation must be ({n}, {n}) (the neurons of F_a), got shape {A.shape}")
    dev = float(np.max(np.abs(A.T @ A - np.eye(n))))
    if dev > tol:
        raise InputError(f"{who}: rotation must be orthogonal, got max|A^T A - I| = {dev:.3g} (> {tol:g})")
    return A


def aligned_error(F_a, F_b, rotation) -> float:
    """Relative error ``|F_a A - F_b|_F / |F_b|_F`` of a given orthogonal alignment ``A`` (e.g. fitted elsewhere).

    :func:`procrustes` fits ``A`` and reports the error on the same samples; fitted on ``N`` samples with more
    neurons than samples it aligns any two networks almost exactly there, so the honest figure is the error on
    other (held-out) samples, with the ``A`` of the fit.

    Parameters
    ----------
    F_a, F_b : array_like
        ``(N, n)`` activations of two networks on the same samples.
    rotation : array_like
        ``(n, n)`` orthogonal (``max|A^T A - I| <= 1e-8``), e.g. :attr:`ProcrustesAlignment.rotation`.

    Returns
    -------
    float
        The relative error, >= 0.

    Raises
    ------
    InputError
        Shapes that do not match, non-finite data, ``A`` not orthogonal, ``F_b`` identically zero.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> F = rng.standard_normal((30, 3))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    >>> A = procrustes(F[:10] @ Q, F[:10]).rotation       # fitted on 10 samples
    >>> round(aligned_error(F[10:] @ Q, F[10:], A), 10)   # exact on the other 20
    0.0
    """
    F_a, F_b = _pair(F_a, F_b, "aligned_error")
    A = _rotation(rotation, F_a.shape[1], "aligned_error")
    if not np.any(F_b):
        raise InputError("aligned_error: F_b is identically zero, so the relative error is undefined")
    F_a, F_b = _common_scale(F_a, F_b)  # the ratio is scale invariant; the norms must not overflow
    norm_b = float(np.linalg.norm(F_b))
    if norm_b == 0.0:
        raise InputError("aligned_error: F_b is below 2^-1074 times max|F_a| (it vanishes when scaled with F_a), "
                         "so the relative error is beyond float64")
    return float(np.linalg.norm(F_a @ A - F_b)) / norm_b


def feature_cka(F_a, F_b) -> float:
    """Linear centred kernel alignment of two feature matrices: the CKA of their kernels ``F F^T``.

    With ``C = I - 1 1^T / N`` and ``K = F F^T``: ``CKA = <C K_a C, C K_b C>_F / (|C K_a C|_F |C K_b C|_F)``, equal
    to ``|F_a'^T F_b'|_F^2 / (|F_a'^T F_a'|_F |F_b'^T F_b'|_F)`` with column-centred ``F' = C F`` (the form used
    when there are fewer neurons than samples; otherwise the ``N x N`` kernels are formed).  In ``[0, 1]``;
    invariant under orthogonal maps of either network's neurons and under scaling, so two networks whose
    activations differ by a rotation have CKA 1.  The same number as
    :func:`sigprop.theory.tangent.centered_kernel_alignment` ``(F_a F_a^T, F_b F_b^T)``.  Computed on each matrix
    (before and after centring) divided by the power of two just above its largest entry (exact), so any finite
    magnitude gives the number of ordinary magnitudes.

    Parameters
    ----------
    F_a, F_b : array_like
        ``(N, n_a)`` and ``(N, n_b)`` features on the same ``N >= 2`` samples (widths may differ).

    Returns
    -------
    float
        The alignment.

    Raises
    ------
    InputError
        Not 2-D, non-finite, different sample counts, ``N < 2``, or a feature matrix whose centred kernel is zero
        (all samples with the same features).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> F = rng.standard_normal((40, 5))
    >>> Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    >>> round(feature_cka(F, 3.0 * F @ Q), 12)
    1.0
    """
    F_a = _features(F_a, "F_a", "feature_cka")
    F_b = _features(F_b, "F_b", "feature_cka")
    if F_a.shape[0] != F_b.shape[0]:
        raise InputError(f"feature_cka: F_a and F_b must have the same number of samples (rows), "
                         f"got {F_a.shape[0]} and {F_b.shape[0]}")
    if F_a.shape[0] < 2:
        raise InputError(f"feature_cka: need at least 2 samples, got {F_a.shape[0]}")
    A, B = unit_scale(F_a)[0], unit_scale(F_b)[0]  # so that the means do not overflow
    A, B = unit_scale(A - A.mean(axis=0))[0], unit_scale(B - B.mean(axis=0))[0]
    if max(A.shape[1], B.shape[1]) <= A.shape[0]:
        cross, na, nb = np.linalg.norm(A.T @ B) ** 2, np.linalg.norm(A.T @ A), np.linalg.norm(B.T @ B)
    else:
        Ka, Kb = A @ A.T, B @ B.T
        cross, na, nb = float(np.vdot(Ka, Kb)), np.linalg.norm(Ka), np.linalg.norm(Kb)
    for name, nrm in (("F_a", na), ("F_b", nb)):
        if not nrm > 0.0:
            raise InputError(f"feature_cka: {name} has a zero centred kernel (every sample has the same features)")
    return float(cross / (na * nb))


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
    A = None if alignment is None else _rotation(alignment, W.shape[1], "weight_covariance")
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
    k = _count(k, "k", "top_share", 1, lam.size)
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
    p = _count(p, "p", "marchenko_pastur_quantiles", 1, None)
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
    p = _count(p, "p", "marchenko_pastur_participation", 1, None)
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


def _count(k, name: str, who: str, lo: int, hi: int | None) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InputTypeError(f"{who}: {name} must be an integer, got {type(k).__name__}")
    if k < lo or (hi is not None and k > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise InputError(f"{who}: {name} must be an integer {rng}, got {k!r}")
    return int(k)
