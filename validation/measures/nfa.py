"""The Deep Neural Feature Ansatz (NFA): AGOP, its chain rule, matrix powers and the NFA correlation.

Pure functions of NumPy arrays: they apply to the weights and Jacobians of any network (trained here or elsewhere);
nothing is trained or simulated.  Conventions (docs/feature_learning.md):

* A layer computes ``z = h W^T + b`` with ``W`` of shape ``(n_out, n_in)``; ``h`` (``n_in``) is the layer input and
  ``z`` (``n_out``) its pre-activations.
* A Jacobian stack ``J`` has shape ``(N, o, n)``: ``J[x, k, :]`` is the gradient of output ``k`` with respect to the
  ``n`` coordinates of a layer's input (or pre-activations) on sample ``x``.
* AGOP (average gradient outer product) ``M = (1/N) sum_x sum_k J[x, k, :]^T J[x, k, :]`` (``n x n``), normalised by
  the number of samples ``N``, not by ``N o``.  Chain rule: with ``J_h = J_z W``, ``AGOP_h = W^T G W``, ``G`` the AGOP
  with respect to the next pre-activations (:func:`chain_rule_agop`).
* NFA correlation: cosine similarity (default) or Pearson correlation of the flattened ``W^T W`` (or
  ``(W - W0)^T (W - W0)``) and ``M^alpha``.
* Frame isotropy ``tr(G) / (sqrt(n) ||G||_F)`` in ``(0, 1]``, 1 exactly when ``G`` is proportional to the identity
  (``frame_isotropy`` in :mod:`sigprop.validation.measures.spectra`).

Proposition (proved in docs/feature_learning.md; tested in tests/test_measures.py): with ``alpha = 1``, uncentred
gradients, cosine and ``W`` itself, ``cos(W^T W, W^T G W) = 1`` iff ``Q^T G Q`` is proportional to the identity
(``Q`` an orthonormal basis of range(W)), and the two angles bound each other through the singular values of ``W``
(:func:`nfa_isotropy_relation`).

Every public function checks its arguments first and raises :class:`~sigprop.theory.errors.InputError` (a
``ValueError``) or :class:`~sigprop.theory.errors.InputTypeError` naming the argument and its allowed range.  No
input is symmetrised or clipped silently.

Extreme magnitudes: the scale-invariant measures (the correlations, :func:`nfa_isotropy_relation`) divide each
matrix by the power of two just above its largest entry before any product, which is exact (no rounding): their
values at ordinary magnitudes are unchanged bit for bit, and any finite magnitude gives the value of ordinary ones
instead of an overflow.  The others (:func:`agop`, :func:`chain_rule_agop`, :func:`psd_power`) scale the same way
internally and raise an :class:`~sigprop.theory.errors.InputError` naming the argument when the result itself is
beyond float64 (about ``1.8e308``), instead of returning inf.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> W = rng.standard_normal((3, 5))
>>> Jz = rng.standard_normal((200, 2, 3))           # Jacobians w.r.t. the pre-activations
>>> Jh = Jz @ W                                     # ... and w.r.t. the layer input (chain rule)
>>> bool(np.allclose(agop(Jh), chain_rule_agop(W, agop(Jz))))
True
>>> round(nfa_correlation(W, chain_rule_agop(W, 2.0 * np.eye(3))), 12)   # G proportional to I: the NFA holds
1.0
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sigprop.theory.errors import InputError
from sigprop.validation.exact_scaling import binary_exponent, power_denominator, rescaled, unit_scale

from ._common import (
    DEFAULT_TOL,
    check_alpha,
    check_flag,
    check_measure,
    check_psd_eigs,
    check_square,
    check_symmetric,
    check_tol,
    finite_array,
    flat_correlation,
    isotropy_of,
)

__all__ = [
    "agop",
    "chain_rule_agop",
    "psd_power",
    "nfa_correlation",
    "NFAIsotropy",
    "nfa_isotropy_relation",
]

# --- AGOP ---------------------------------------------------------------------------------------------------


def agop(J, *, per_output: bool = False, centered: bool = False) -> np.ndarray:
    """Average gradient outer product of a Jacobian stack.

    ``M = (1/N) sum_x sum_k g_{x,k} g_{x,k}^T`` with ``g_{x,k} = J[x, k, :]`` (the gradient of output ``k`` on sample
    ``x``), computed as one matrix product ``A^T A / N`` with ``A = J.reshape(N o, n)`` (BLAS, no Python loop), on
    ``J`` divided by the power of two ``2^e`` just above ``max|J|`` and multiplied back by ``2^(2e)`` (exact), so no
    partial sum overflows: an AGOP whose entries exceed float64 (``max|J|`` near ``1e154`` and beyond) is an
    error, not inf.

    ``centered=True`` uses centred gradients ``g_{x,k} - mean_x g_{x,k}`` (the mean over samples, per output and
    coordinate), i.e. the gradient covariance ``M - sum_k m_k m_k^T`` with ``m_k = mean_x g_{x,k}``.  This is the
    ``centering=True`` option of ``egop`` in ``aradha/deep_neural_feature_ansatz`` (verify_deep_NFA.py), which
    reports both.  Centring commutes with the chain rule: ``agop(J_z @ W, centered=True) == W^T agop(J_z,
    centered=True) W``, so the proposition of docs/feature_learning.md holds for centred gradients with the centred
    pre-activation AGOP in place of ``G``.  (Not to be confused with the "centered NFA" of
    ``dmbeaglehole/centered_NFA``, which centres the *weights*: ``W - W0``; see :func:`nfa_correlation`.)

    Parameters
    ----------
    J : array_like, shape (N, o, n)
        ``J[x, k, i] = d f_k(x) / d h_i`` (float64 after conversion; finite).
    per_output : bool, default False
        Return the per-output AGOPs ``(1/N) sum_x g_{x,k} g_{x,k}^T`` as an ``(o, n, n)`` array (their sum over
        ``k`` is the AGOP).
    centered : bool, default False
        Subtract the sample mean of each output's gradient first (needs ``N >= 2``).

    Returns
    -------
    numpy.ndarray
        ``(n, n)``, or ``(o, n, n)`` with ``per_output``; symmetric positive semi-definite up to rounding.

    Raises
    ------
    InputError
        ``J`` not 3-D (a single-output stack is ``(N, 1, n)``), empty or non-finite; ``centered`` with ``N < 2``;
        an AGOP beyond float64 (overflow).
    InputTypeError
        ``J`` not a real numeric array; ``per_output``/``centered`` not bool.

    Examples
    --------
    >>> import numpy as np
    >>> J = np.array([[[1.0, 0.0]], [[0.0, 2.0]]])    # N=2 samples, o=1 output, n=2
    >>> agop(J)
    array([[0.5, 0. ],
           [0. , 2. ]])
    >>> agop(J, centered=True)                       # gradients minus their mean (0.5, 1)
    array([[ 0.25, -0.5 ],
           [-0.5 ,  1.  ]])
    """
    who = "agop"
    per_output = check_flag(per_output, "per_output", who)
    centered = check_flag(centered, "centered", who)
    J = finite_array(J, "J", who, 3)
    N, o, n = J.shape
    if centered and N < 2:
        raise InputError(f"{who}: centered=True needs at least 2 samples (J.shape[0] >= 2), got {N}")
    cause = f"max|J| = {float(np.max(np.abs(J))):.3g}"
    J, e = unit_scale(J)
    if centered:
        J = J - J.mean(axis=0, keepdims=True)
    if per_output:
        Jt = np.ascontiguousarray(J.transpose(1, 0, 2))          # (o, N, n)
        R = np.matmul(Jt.transpose(0, 2, 1), Jt) / N              # batched GEMM
    else:
        A = J.reshape(N * o, n)
        R = (A.T @ A) / N
    return rescaled(R, 2 * e, who, "the AGOP of J", cause, "J")


def chain_rule_agop(W, G) -> np.ndarray:
    """The AGOP with respect to a layer's input from the AGOP ``G`` with respect to its pre-activations.

    With ``z = h W^T + b`` the Jacobians satisfy ``J_h = J_z W`` (whatever the bias and the activation of the
    *next* layers), so ``AGOP_h = (1/N) sum J_h^T J_h = W^T G W``, exactly.  Computed on ``W`` and ``G`` divided by
    powers of two (exact) so that no intermediate product overflows; a result beyond float64 is an error.

    Parameters
    ----------
    W : array_like, shape (n_out, n_in)
        The layer's weights.
    G : array_like, shape (n_out, n_out)
        AGOP with respect to the layer's pre-activations (e.g. ``agop(J_z)``); any square matrix is accepted.

    Returns
    -------
    numpy.ndarray
        ``W^T G W``, shape ``(n_in, n_in)``.

    Raises
    ------
    InputError
        Non-2-D, empty or non-finite arrays; ``G`` not ``n_out x n_out``; ``W^T G W`` beyond float64 (overflow).
    InputTypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]])
    >>> chain_rule_agop(W, np.eye(3))                  # G = I gives W^T W
    array([[2., 2.],
           [2., 5.]])
    """
    who = "chain_rule_agop"
    W = finite_array(W, "W", who, 2)
    G = finite_array(G, "G", who, 2)
    check_square(G, "G", who, W.shape[0], "(n_out x n_out for W of shape (n_out, n_in))")
    (Ws, a), (Gs, b) = unit_scale(W), unit_scale(G)
    return rescaled(Ws.T @ Gs @ Ws, 2 * a + b, who, "W^T G W",
                     f"max|W| = {float(np.max(np.abs(W))):.3g} and max|G| = {float(np.max(np.abs(G))):.3g}", "W or G")


# --- matrix power and correlations --------------------------------------------------------------------------


def psd_power(M, alpha: float, *, tol: float = DEFAULT_TOL) -> np.ndarray:
    """``M^alpha`` of a symmetric positive semi-definite matrix, by eigendecomposition ``M = V diag(lam) V^T``.

    ``alpha == 1`` returns ``M`` unchanged (as float64; no symmetry required).  Any other ``alpha`` needs ``M``
    symmetric (``||M - M^T||_F <= tol ||M||_F``; only then is ``eigh``, which reads one triangle, faithful) and, for
    non-integer ``alpha``, positive semi-definite: eigenvalues ``>= -tol max|lam|``.  Eigenvalues in
    ``[-tol max|lam|, 0)`` are rounding of a PSD matrix and are taken as 0 (stated here, so not silent); anything
    more negative is an error.  Integer ``alpha`` allows any symmetric ``M`` (``lam^alpha`` is real).  A power
    beyond float64 (``max|lam|^alpha`` above about ``1.8e308``) is an error, not inf.

    Parameters
    ----------
    M : array_like, shape (n, n)
    alpha : float
        Power, ``> 0``.
    tol : float, default 1e-10
        Relative tolerance of the symmetry and PSD checks, in ``[0, 1)``.

    Returns
    -------
    numpy.ndarray
        ``V diag(lam^alpha) V^T`` (symmetric), shape ``(n, n)``.

    Raises
    ------
    InputError
        ``alpha <= 0`` or non-finite; ``M`` not square, non-finite, not symmetric (``alpha != 1``), or with an
        eigenvalue below ``-tol max|lam|`` (non-integer ``alpha``); ``tol`` outside ``[0, 1)``; ``M^alpha`` beyond
        float64 (overflow).
    InputTypeError
        Non-numeric ``M``, ``alpha`` or ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> psd_power(np.diag([4.0, 9.0]), 0.5)
    array([[2., 0.],
           [0., 3.]])
    """
    who = "psd_power"
    alpha = check_alpha(alpha, who)
    tol = check_tol(tol, who)
    M = finite_array(M, "M", who, 2)
    check_square(M, "M", who)
    return _power(M, alpha, tol, who, "M")


def _power(M: np.ndarray, alpha: float, tol: float, who: str, name: str, *, e: int | None = None) -> np.ndarray:
    """``M^alpha`` (``e=None``), or, for ``M`` given as ``name 2^-e``, a positive multiple of ``name^alpha``: the power
    of the eigenvalues divided by the power of two just above the largest, so it neither overflows nor underflows
    (for the scale-invariant correlations)."""
    if alpha == 1.0:
        return M
    check_symmetric(M, name, who, tol)
    lam, V = np.linalg.eigh(M)
    if alpha != round(alpha):
        check_psd_eigs(lam, name, who, tol, f"for the fractional power alpha={alpha:g}", e or 0)
        lam = np.where(lam < 0.0, 0.0, lam)  # only rounding-level negatives reach here (documented)
    if e is not None:
        return (V * unit_scale(lam, power_denominator(alpha))[0] ** alpha) @ V.T
    with np.errstate(over="ignore", invalid="ignore"):
        P = (V * lam ** alpha) @ V.T
    if not np.all(np.isfinite(P)):
        raise InputError(f"{who}: {name}^alpha overflows float64: the largest |eigenvalue| of {name} is "
                         f"{float(np.max(np.abs(lam))):.3g} and alpha = {alpha:g}; rescale {name} (or lower alpha)")
    return P



def nfa_correlation(W, M, *, alpha: float = 1.0, W0=None, measure: str = "cosine",
                    tol: float = DEFAULT_TOL) -> float:
    """Correlation of the neural feature matrix ``W^T W`` with a power of the AGOP ``M``: the NFA's number.

    ``nfa_correlation = corr(vec(D^T D), vec(M^alpha))`` with ``D = W`` (``W0=None``) or ``D = W - W0``, where
    ``corr`` is

    * ``measure='cosine'``: ``<A, B>_F / (||A||_F ||B||_F)`` (cosine similarity of the flattened matrices);
    * ``measure='pearson'``: the Pearson correlation of the ``n^2`` entries, i.e. the cosine after subtracting from
      each matrix the mean of its entries.  It is invariant to ``B -> c B + mu 11^T``, so Pearson = 1 does *not*
      imply proportionality (docs/feature_learning.md has a square-``W`` example with Pearson 1 and anisotropic
      ``G``).

    and ``M^alpha`` is :func:`psd_power`.  Which code uses which choice:

    * Radhakrishnan et al. (arXiv 2212.13881), code ``aradha/deep_neural_feature_ansatz`` ``verify_deep_NFA.py``:
      cosine (its ``correlate``), ``alpha = 1``, ``D = W - W0`` (``remove_init = True``), and it prints the value for
      both uncentred and centred gradients (:func:`agop` ``centered=``).  The paper's stated ansatz uses ``W``.
      ``W0=`` does *not* reproduce that file's number (on a depth-3 network, layer 1: 0.4717 here against 0.6631
      there), because the file computes a different AGOP: it subtracts ``W0`` from the weights in place, inside the
      network, so its AGOP is that of the network whose layer ``l`` is ``W - W0``, not of the trained network; and
      for ``layer_idx >= 2`` it takes the layer's input activation one layer too far.  A separate function
      reproduces that file's number (see docs/feature_learning.md).
    * Beaglehole et al., ``dmbeaglehole/centered_NFA`` (``MLP/utils.py`` ``mat_cov``, ``MLP/main.py``): Pearson,
      ``alpha = 1``, uncentred gradients, AGOP formed by the chain rule ``D^T K D`` with ``K`` the pre-activation
      gradient outer product; its "centered NFA" (``cnfa``) uses ``D = W - W0`` on *both* sides, i.e.
      ``nfa_correlation(W - W0, chain_rule_agop(W - W0, K), measure='pearson')``, not this function's ``W0=``.
    * Later work on the NFA reports Pearson for ``W^T W`` against ``AGOP^(1/2)`` (``alpha = 0.5``).

    The defaults (``alpha=1``, cosine, ``W0=None``, uncentred ``M`` from the caller) are the paper's ansatz as
    stated and the choice under which the proposition holds: value 1 iff ``G`` is proportional to the identity on
    range(W).  ``W0=`` gives ``corr((W - W0)^T (W - W0), M^alpha)`` with the ``M`` the caller passes (normally the
    AGOP of the trained network, weights ``W``).

    The value is invariant under ``W -> c W`` (with ``W0 -> c W0``) and ``M -> c M`` for ``c > 0``, and is computed
    so: ``W`` (with ``W0``), ``D``, ``M`` and the eigenvalues of ``M`` for ``alpha != 1`` are each divided by the
    power of two just above their largest entry (exact) before any product, so any finite magnitude gives the
    number of ordinary magnitudes instead of overflowing.

    Parameters
    ----------
    W : array_like, shape (n_out, n_in)
        The layer's weights (``z = h W^T + b``).
    M : array_like, shape (n_in, n_in)
        AGOP with respect to the layer's input (:func:`agop`, :func:`chain_rule_agop`), built from centred or
        uncentred gradients as the caller chooses.
    alpha : float, default 1.0
        Power of ``M`` (``> 0``); ``0.5`` for the square-root version.
    W0 : array_like, shape (n_out, n_in), optional
        Initial weights, subtracted from ``W`` when given (only in ``D``; ``M`` is used as given).
    measure : {'cosine', 'pearson'}, default 'cosine'
    tol : float, default 1e-10
        Tolerance of the symmetry/PSD checks of ``M`` when ``alpha != 1`` (:func:`psd_power`).

    Returns
    -------
    float
        In ``[-1, 1]`` (``[0, 1]`` for cosine of PSD matrices).

    Raises
    ------
    InputError
        Non-finite or wrongly shaped ``W``, ``M``, ``W0`` (``M`` must be ``n_in x n_in``, ``W0`` the shape of ``W``);
        ``alpha <= 0``; ``M`` not symmetric (``alpha != 1``) or not PSD beyond ``tol`` (fractional ``alpha``); a
        correlation that is undefined (``D`` or ``M^alpha`` zero for cosine, constant for Pearson); unknown
        ``measure``.
    InputTypeError
        Non-numeric arrays, ``alpha`` or ``tol``; ``measure`` not a str.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    >>> G = np.diag([1.0, 3.0])                        # anisotropic pre-activation AGOP
    >>> M = chain_rule_agop(W, G)
    >>> round(nfa_correlation(W, M), 6)
    0.955779
    >>> round(nfa_correlation(W, M, measure="pearson"), 6)
    0.962374
    >>> round(nfa_correlation(W, M, alpha=0.5), 6)
    0.99711
    """
    who = "nfa_correlation"
    measure = check_measure(measure, who)
    alpha = check_alpha(alpha, who)
    tol = check_tol(tol, who)
    W = finite_array(W, "W", who, 2)
    M = finite_array(M, "M", who, 2)
    check_square(M, "M", who, W.shape[1], "(n_in x n_in for W of shape (n_out, n_in))")
    if W0 is not None:
        W0 = finite_array(W0, "W0", who, 2)
        if W0.shape != W.shape:
            raise InputError(f"{who}: W0 must have the shape of W {W.shape}, got {W0.shape}")
        e = max(binary_exponent(W), binary_exponent(W0))  # one scale for both, so W - W0 is the exact scaling
        D, dname = np.ldexp(W, -e) - np.ldexp(W0, -e), "(W - W0)^T (W - W0)"
    else:
        D, dname = W, "W^T W"
    D = unit_scale(D)[0]
    M, e = unit_scale(M, power_denominator(alpha))
    Ma = _power(M, alpha, tol, who, "M", e=e)
    return flat_correlation(D.T @ D, Ma, measure, (dname, "M^alpha" if alpha != 1.0 else "M"), who)



# --- the proposition: the NFA cosine and the isotropy of the frame ---------------------------------------


@dataclass(frozen=True)
class NFAIsotropy:
    """One layer's NFA cosine and the isotropy of its pre-activation AGOP on range(W), with the bounds linking them.

    Notation: ``s_1 >= ... >= s_r > 0`` the nonzero singular values of ``W``, ``q = rms(s_i^2) = ||W^T W||_F /
    sqrt(r)``; angles ``theta_nfa = arccos(cosine)`` and ``theta_iso = arccos(isotropy)`` (both in ``[0, pi/2]``).
    Proven (docs/feature_learning.md): ``sin theta_nfa <= rho_forward sin theta_iso`` and ``sin theta_iso <=
    rho_reverse sin theta_nfa``, with equality of the angles when all ``s_i`` are equal.

    Attributes
    ----------
    cosine : float
        ``cos(W^T W, W^T G W)`` (alpha 1, uncentred as given, cosine, ``W``).
    isotropy : float
        ``frame_isotropy(Q^T G Q)``, ``Q`` an orthonormal basis of range(W).
    rank : int
        ``r``.
    condition : float
        ``kappa = s_1 / s_r``.
    rho_forward : float
        ``s_1^2 / q`` in ``[1, min(sqrt(r), kappa^2)]``.
    rho_reverse : float
        ``q / s_r^2`` in ``[1, kappa^2]``; ``rho_forward * rho_reverse = kappa^2``.
    cosine_lower, cosine_upper : float
        The interval for ``cosine`` implied by ``isotropy`` and the two sine bounds:
        ``sqrt(1 - min(1, rho_forward^2 (1 - isotropy^2))) <= cosine <= sqrt(1 - (1 - isotropy^2) / rho_reverse^2)``.
    """

    cosine: float
    isotropy: float
    rank: int
    condition: float
    rho_forward: float
    rho_reverse: float
    cosine_lower: float
    cosine_upper: float


def nfa_isotropy_relation(W, G, *, rtol: float | None = None, tol: float = DEFAULT_TOL) -> NFAIsotropy:
    """The NFA cosine ``cos(W^T W, W^T G W)`` and the isotropy of ``G`` on range(W), with the proven bounds.

    With the SVD ``W = U S V^T`` (rank ``r``, ``U`` = :func:`range_basis`) and ``C = U^T G U``,
    ``W^T W = V S^2 V^T`` and ``W^T G W = V (S C S) V^T``, so ``cosine = cos(S^2, S C S)`` and ``isotropy =
    cos(I_r, C)``: the congruence ``X -> S X S`` (singular values ``s_i s_j`` on symmetric matrices) maps one pair
    onto the other.  Hence ``cosine == isotropy`` when ``S`` is proportional to ``I``, ``cosine == 1`` iff
    ``C`` is proportional to ``I_r``, and in general ``sin theta_nfa <= (s_1^2 / q) sin theta_iso``,
    ``sin theta_iso <= (q / s_r^2) sin theta_nfa``, ``q = rms(s_i^2)``.  In terms of ``1 - cos``:
    ``1 - cosine <= 2 rho_forward^2 (1 - isotropy) <= 2 r (1 - isotropy)`` and ``1 - isotropy <= 2 rho_reverse^2
    (1 - cosine) <= 2 kappa^4 (1 - cosine)``.  See docs/feature_learning.md for the proof and sharpness.  Every
    field is invariant under ``W -> c W`` and ``G -> c G`` (``c > 0``) and is computed on ``W`` and ``G`` divided by
    the powers of two just above their largest entries (exact), so any finite magnitude gives the ordinary numbers.

    Parameters
    ----------
    W : array_like, shape (n_out, n_in)
        Nonzero.
    G : array_like, shape (n_out, n_out)
        Pre-activation AGOP: symmetric PSD to ``tol``, nonzero on range(W).
    rtol : float, optional
        Rank threshold of :func:`range_basis`.
    tol : float, default 1e-10
        Symmetry/PSD tolerance of :func:`frame_isotropy`.

    Returns
    -------
    NFAIsotropy

    Raises
    ------
    InputError
        Shapes (``G`` must be ``n_out x n_out``), non-finite values, zero ``W``, ``G`` not symmetric PSD, or ``G``
        zero on range(W).
    InputTypeError
        Non-numeric input.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.diag([3.0, 1.0])                          # condition number 3
    >>> rel = nfa_isotropy_relation(W, np.diag([1.0, 0.0]))
    >>> round(rel.isotropy, 6), round(rel.cosine, 6)     # G anisotropic, yet the NFA cosine is high
    (0.707107, 0.993884)
    >>> round(rel.rho_reverse, 6)                        # reverse bound attained: sin(iso) = rho_reverse sin(nfa)
    6.403124
    """
    who = "nfa_isotropy_relation"
    tol = check_tol(tol, who)
    W = finite_array(W, "W", who, 2)
    G = finite_array(G, "G", who, 2)
    check_square(G, "G", who, W.shape[0], "(n_out x n_out for W of shape (n_out, n_in))")
    G, e = unit_scale(G)
    W = unit_scale(W)[0]
    check_symmetric(G, "G", who, tol)
    if np.any(G):
        check_psd_eigs(np.linalg.eigvalsh(G), "G", who, tol, "(a frame operator)", e)
    rt = max(W.shape) * np.finfo(float).eps if rtol is None else check_tol(rtol, who)
    U, s, _ = np.linalg.svd(W, full_matrices=False)
    if s[0] == 0.0:
        raise InputError(f"{who}: W must be nonzero")
    r = int(np.sum(s > rt * s[0]))
    U, s = U[:, :r], s[:r]
    C = U.T @ G @ U
    if not np.any(C) or np.trace(C) <= 0.0:
        raise InputError(f"{who}: G is zero on range(W); the NFA cosine and the isotropy are undefined")
    iso = isotropy_of(C)
    q = math.sqrt(float(np.mean(s ** 4)))
    rho_f, rho_r = float(s[0] ** 2 / q), float(q / s[-1] ** 2)
    cosine = flat_correlation(W.T @ W, W.T @ G @ W, "cosine", ("W^T W", "W^T G W"), who)
    sin2 = max(0.0, 1.0 - iso * iso)
    return NFAIsotropy(cosine=cosine, isotropy=iso, rank=r, condition=float(s[0] / s[-1]), rho_forward=rho_f,
                       rho_reverse=rho_r, cosine_lower=math.sqrt(1.0 - min(1.0, rho_f ** 2 * sin2)),
                       cosine_upper=math.sqrt(1.0 - sin2 / rho_r ** 2))
