"""Similarity of two networks' features, and of matrices: Procrustes alignment, CKA, correlations, subspaces.

The rainbow statement (docs/rainbow.md): two independently drawn (or trained) networks of the same width have
activations that differ, to leading order, by an orthogonal transformation of the neurons.  :func:`procrustes` finds
the best one, ``A = argmin_{A^T A = I} |F_a A - F_b|_F``, which is ``A = U V^T`` from the SVD ``F_a^T F_b = U S V^T``
of the (uncentred) cross-covariance, and reports the relative error ``|F_a A - F_b|_F / |F_b|_F``;
:func:`aligned_error` evaluates a fitted ``A`` on other samples and :func:`feature_cka` compares the two kernels
(linear CKA).  For two matrices of the same shape, :func:`matrix_correlation` is the cosine or Pearson correlation of
their entries (the NFA correlation, :func:`~sigprop.validation.measures.nfa.nfa_correlation`, is this number for
``W^T W`` against a power of the AGOP); :func:`subspace_fraction` is the share of a PSD matrix's trace inside a
subspace (docs/feature_learning.md, the teacher tasks).

Pure functions of NumPy arrays: nothing is trained or simulated.  Bad input raises
:class:`~sigprop.theory.errors.InputError` or :class:`~sigprop.theory.errors.InputTypeError` before any work.

Extreme magnitudes: every measure here is scale invariant and is computed on its arrays divided by the power of two
just above the largest entry (exact: no rounding), so its values at ordinary magnitudes are unchanged bit for bit and
any finite magnitude gives the values of ordinary ones.

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
from dataclasses import dataclass

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError
from sigprop.validation.exact_scaling import binary_exponent, unit_scale

from ._common import (
    DEFAULT_TOL,
    ORTHO_TOL,
    check_basis,
    check_measure,
    check_rotation,
    check_square,
    finite_array,
    flat_correlation,
)

__all__ = [
    "ORTHO_TOL",
    "ProcrustesAlignment",
    "aligned_error",
    "feature_cka",
    "matrix_correlation",
    "procrustes",
    "subspace_fraction",
]


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
    A = check_rotation(rotation, F_a.shape[1], "aligned_error")
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


def matrix_correlation(A, B, *, measure: str = "cosine") -> float:
    """Cosine similarity (default) or Pearson correlation of the entries of two matrices of the same shape.

    ``measure='cosine'``: ``<A, B>_F / (||A||_F ||B||_F)``; ``measure='pearson'``: the cosine after subtracting from
    each matrix the mean of its entries.  Scale invariant, and computed on each matrix divided by the power of two
    just above its largest entry (exact), so any finite magnitude gives the number of ordinary magnitudes.  The
    value is clipped to ``[-1, 1]`` (only rounding can leave it: ``|<a, b>| <= |a| |b|``).

    Parameters
    ----------
    A, B : array_like
        Finite, non-empty matrices (2-D) of the same shape.
    measure : {'cosine', 'pearson'}, default 'cosine'

    Returns
    -------
    float
        In ``[-1, 1]``.

    Raises
    ------
    InputError
        Arrays not 2-D, empty or non-finite, different shapes, an unknown ``measure``, or a correlation that is
        undefined (a zero matrix for cosine, a constant one for Pearson).
    InputTypeError
        Non-numeric arrays; ``measure`` not a str.

    Examples
    --------
    >>> import numpy as np
    >>> matrix_correlation(np.eye(2), 3.0 * np.eye(2))
    1.0
    >>> round(matrix_correlation(np.eye(2), np.array([[2.0, 0.0], [0.0, 1.0]]), measure="pearson"), 6)
    0.904534
    """
    who = "matrix_correlation"
    measure = check_measure(measure, who)
    A = finite_array(A, "A", who, 2)
    B = finite_array(B, "B", who, 2)
    if A.shape != B.shape:
        raise InputError(f"{who}: A and B must have the same shape, got {A.shape} and {B.shape}")
    return flat_correlation(A, B, measure, ("A", "B"), who)


def subspace_fraction(A, U) -> float:
    """Fraction of the trace of a PSD matrix ``A`` (``d x d``) inside span(U): ``tr(U^T A U) / tr(A)``.

    ``U`` (``d x k``) has orthonormal columns.  For ``A`` proportional to the identity (or a Haar-random rotation of
    any ``A``, on average) the fraction is ``k / d``: the chance value.  In ``[0, 1]`` for PSD ``A`` (the PSD
    property is not checked: it costs an eigendecomposition).  Scale invariant, and computed on ``A`` divided by the
    power of two just above its largest entry (exact), so any finite magnitude gives the number of ordinary ones.

    Parameters
    ----------
    A : array_like, shape (d, d)
        Finite, with ``tr(A) > 0`` (e.g. ``W^T W``, an AGOP, RFM's ``M``).
    U : array_like, shape (d, k)
        ``1 <= k <= d`` orthonormal columns: ``max|U^T U - I_k| <= 1e-5`` (the square root of the measures'
        default tolerance 1e-10, as :func:`~sigprop.validation.measures.spectra.frame_isotropy`).

    Returns
    -------
    float

    Raises
    ------
    InputError
        ``A`` not square, empty or non-finite, or with ``tr(A) <= 0``; ``U`` of the wrong shape, non-finite or
        not orthonormal.
    InputTypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> subspace_fraction(np.eye(4), np.eye(4)[:, :1])
    0.25
    """
    who = "subspace_fraction"
    A = finite_array(A, "A", who, 2)
    check_square(A, "A", who)
    U = check_basis(U, "U", A.shape[0], "A", who, DEFAULT_TOL)
    A, e = unit_scale(A)  # the ratio is scale invariant; the trace must not overflow
    trace = float(np.trace(A))
    if not trace > 0.0:
        raise InputError(f"{who}: tr(A) must be > 0 (a nonzero PSD matrix), got {math.ldexp(trace, e):.6g}")
    return float(np.trace(U.T @ A @ U) / np.trace(A))
