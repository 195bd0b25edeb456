"""What the measures share: argument checks (each runs before any work and names the argument and its allowed
range), the correlation of two flattened matrices and the isotropy of a frame, computed without overflow."""
from __future__ import annotations

import math

import numpy as np

from sigprop.theory.arguments import flag, integer_in_range, one_of, positive_real, real_array, real_in_range
from sigprop.theory.errors import InputError
from sigprop.validation.exact_scaling import unit_scale

MEASURES = ("cosine", "pearson")  # the correlations of flattened matrices
DEFAULT_TOL = 1e-10  # relative tolerance of the symmetry and PSD checks
ORTHO_TOL = 1e-8  # max|A^T A - I| accepted for a given rotation (rounding of an SVD product is ~1e-13)


def finite_array(x, name: str, who: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """``x`` as a non-empty finite float64 array with ``ndim`` dimensions, or an InputError/InputTypeError."""
    return real_array(x, name, who, ndim, allow_empty=False)


def check_tol(tol, who: str) -> float:
    """A relative tolerance in ``[0, 1)``."""
    return real_in_range("tol", tol, 0.0, 1.0, hi_open=True, who=who)


def check_flag(value, name: str, who: str) -> bool:
    """``True`` or ``False`` (:func:`sigprop.theory.arguments.flag`, in the measures' argument order)."""
    return flag(name, value, who)


def check_alpha(alpha, who: str) -> float:
    """An exponent ``alpha > 0`` (finite)."""
    return positive_real("alpha", alpha, who)


def check_measure(measure, who: str) -> str:
    """One of :data:`MEASURES`."""
    return one_of("measure", measure, MEASURES, who)


def check_symmetric(M: np.ndarray, name: str, who: str, tol: float) -> None:
    M = unit_scale(M)[0]  # relative test: the norms must not overflow
    scale = np.linalg.norm(M)
    if np.linalg.norm(M - M.T) > tol * scale:
        raise InputError(f"{who}: {name} must be symmetric to within ||{name} - {name}^T||_F <= {tol:g} "
                         f"||{name}||_F, got relative asymmetry {np.linalg.norm(M - M.T) / scale:.3g} "
                         "(it is not symmetrised silently)")


def check_psd_eigs(lam: np.ndarray, name: str, who: str, tol: float, why: str, e: int = 0) -> None:
    """``lam``: eigenvalues of ``name 2^-e`` (reported in ``name``'s own units)."""
    top = float(np.max(np.abs(lam)))
    if lam.min() < -tol * top:
        low, top = (float(np.ldexp(v, e)) for v in (lam.min(), top))
        raise InputError(f"{who}: {name} must be positive semi-definite {why}: eigenvalues >= -{tol:g} "
                         f"max|eigenvalue|, got smallest {low:.6g} (largest |.| {top:.6g})")


def check_square(M: np.ndarray, name: str, who: str, n: int | None = None, what: str = "") -> None:
    if M.shape[0] != M.shape[1]:
        raise InputError(f"{who}: {name} must be square, got shape {M.shape}")
    if n is not None and M.shape[0] != n:
        raise InputError(f"{who}: {name} must be {n} x {n} {what}, got shape {M.shape}")



def check_basis(Q, name: str, n: int, size_of: str, who: str, tol: float) -> np.ndarray:
    """``Q`` as a finite ``n x k`` matrix with ``1 <= k <= n`` orthonormal columns (``max|Q^T Q - I| <= sqrt(tol)``);
    ``n`` is the size of the matrix ``size_of``, named in the message."""
    Q = finite_array(Q, name, who, 2)
    if Q.shape[0] != n or not 1 <= Q.shape[1] <= n:
        raise InputError(f"{who}: {name} must be n x k with n = {n} ({size_of}'s size) and 1 <= k <= n, "
                         f"got shape {Q.shape}")
    err = float(np.max(np.abs(Q.T @ Q - np.eye(Q.shape[1]))))
    if err > math.sqrt(tol):
        raise InputError(f"{who}: {name} must have orthonormal columns (max|Q^T Q - I| <= {math.sqrt(tol):g}), "
                         f"got {err:.3g}")
    return Q


def check_rotation(A, n: int, who: str, tol: float = ORTHO_TOL) -> np.ndarray:
    A = real_array(A, "rotation", who, 2, allow_empty=False)
    if A.shape != (n, n):
        raise InputError(f"{who}: rotation must be ({n}, {n}) (the neurons of F_a), got shape {A.shape}")
    dev = float(np.max(np.abs(A.T @ A - np.eye(n))))
    if dev > tol:
        raise InputError(f"{who}: rotation must be orthogonal, got max|A^T A - I| = {dev:.3g} (> {tol:g})")
    return A



def check_count(k, name: str, who: str, lo: int, hi: int | None) -> int:
    """An integer in ``[lo, hi]`` (:func:`sigprop.theory.arguments.integer_in_range`, in the measures' order)."""
    return integer_in_range(name, k, lo, hi, who=who)


def isotropy_of(G: np.ndarray) -> float:
    return float(min(1.0, np.trace(G) / (math.sqrt(G.shape[0]) * np.linalg.norm(G))))



def flat_correlation(A: np.ndarray, B: np.ndarray, measure: str, names: tuple[str, str], who: str) -> float:
    """Cosine or Pearson of the flattened A and B, each divided by a power of two near its largest entry first
    (exact, and the value is scale invariant), so that neither the norms nor the inner product overflow."""
    a, b = unit_scale(A.ravel())[0], unit_scale(B.ravel())[0]
    if measure == "pearson":
        a, b = unit_scale(a - a.mean())[0], unit_scale(b - b.mean())[0]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    what = "zero" if measure == "cosine" else "constant (all entries equal)"
    for norm, name in ((na, names[0]), (nb, names[1])):
        if norm == 0.0:
            raise InputError(f"{who}: the {measure} correlation is undefined because {name} is {what}; "
                             f"{name} must have a nonzero {'norm' if measure == 'cosine' else 'spread'}")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))  # rounding only: |a.b| <= |a||b|
