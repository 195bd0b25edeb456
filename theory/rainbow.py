"""Rainbow kernels: the infinite-width kernels of networks whose weight rows are Gaussian with a covariance.

Model (Guth, Menard, Rochette & Mallat, "A Rainbow in Deep Network Black Boxes", arXiv 2305.18512; docs/rainbow.md,
docs/derivations.md section 8).  Layer ``j`` computes ``z^(j)_i(x) = <w_i, h^(j-1)(x)> + beta_i`` with i.i.d. rows
``w_i ~ N(0, Sigma_j)`` and biases ``beta_i ~ N(0, C_b)``, ``h^(j) = phi(z^(j))``, ``h^(0) = x``.  Normalisation
(the one of docs/conventions.md, where ``Sigma_j = (C_W / n_{j-1}) I``): the row covariance is written
``Sigma_j = C_j / n_{j-1}`` with an order-one "shape" ``C_j``, and kernels are per-neuron means,
``K^(j)(x, x') = E z_i(x) z_i(x')`` (the limit of ``z^T z / n_j``) and ``H^(j)(x, x') = <phi(u) phi(u')>_{K^(j)}``
(the limit of ``h^T h / n_j``), ``H^(0) = G0 = X X^T / n_0``.

* Layer 1, any symmetric PSD ``C_1`` (``d x d``, or a scalar ``c`` meaning ``c I``):
  ``K^(1) = C_b + Y C_1 Y^T / d``.
* Layers ``j >= 2``, the data-defined covariance with ``m`` anchor inputs ``z_k`` (propagated through the same
  network): ``C_j = a_j I + sum_k b_jk h^(j-1)(z_k) h^(j-1)(z_k)^T / n_{j-1}``, ``a_j, b_jk >= 0``.  Then
  ``<h(x), C_j h(x')> / n = a_j H(x, x') + sum_k b_jk H(x, z_k) H(z_k, x')``, so on the Gram matrix of the
  ``P`` inputs and the ``m`` anchors together (inputs first, anchors last, ``N = P + m``)::

      K^(j) = C_b + a_j H^(j-1) + H^(j-1)[:, A] diag(b_j) H^(j-1)[A, :],     A = the anchor indices P..N-1

  With ``C_1 = C_W I``, ``a_j = C_W`` and ``b = 0`` this is :func:`sigprop.theory.meanfield.kernel_recursion`
  (tested to be bitwise equal on the inputs block).  The recursion is our derivation (docs/rainbow.md): it is
  checked against the finite-width simulation of :mod:`sigprop.kernels.rainbow` in tests/test_rainbow.py.

Accuracy: the Gaussian pair expectations are those of the kernel maps
(:func:`~sigprop.theory.meanfield.gaussian_pair_expectation`, ~1e-11 absolute for variances up to ~10 and
unit-scale activations); the rest is matrix arithmetic.

Every public function checks its arguments first and raises :class:`~sigprop.theory.errors.InputError` naming
the argument; a covariance that is not symmetric PSD (beyond rounding) is an error that reports its most negative
eigenvalue.  Nothing is symmetrised or clipped silently.

Examples
--------
ReLU with two inputs and one anchor, white first layer (C_W = 2), one anchored layer:

>>> import numpy as np
>>> X = np.array([[1.0, 0.0], [0.6, 0.8]])
>>> Z = np.array([[0.0, 1.0]])
>>> rk = rainbow_kernels("relu", X, C1=2.0, a=[2.0], b=[[1.0]], anchors=Z)
>>> rk.preact.shape, rk.n_inputs, rk.n_anchors
((2, 3, 3), 2, 1)
>>> np.round(rk.preact[0], 6)     # K^(1) = 2 Y Y^T / 2 on inputs and anchor
array([[1. , 0.6, 0. ],
       [0.6, 1. , 0.8],
       [0. , 0.8, 1. ]])
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError, InputTypeError

from .activations import Activation, as_activation
from .meanfield import pair_values
from .pair_formulas import sqrt_product

__all__ = [
    "RainbowKernels",
    "anchor_covariance",
    "anchored_gram",
    "check_covariance",
    "check_rainbow_arguments",
    "first_layer_gram",
    "psd_sqrt",
    "rainbow_kernels",
    "COV_TOL",
]

COV_TOL = 1e-10  # relative tolerance for symmetry and PSD-ness of a covariance (rounding, not a modelling choice)


# --- argument checks --------------------------------------------------------------------------------------


def _nonneg_scalar(v, name: str, who: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InputTypeError(f"{who}: {name} must be a real number >= 0, got {type(v).__name__}")
    if not (math.isfinite(v) and v >= 0):
        raise InputError(f"{who}: {name} must be a finite number >= 0, got {v!r}")
    return float(v)


def check_covariance(C, d: int, name: str = "C1", who: str = "check_covariance",
                     tol: float = COV_TOL) -> np.ndarray | float:
    """Validate a covariance shape: a scalar ``c >= 0`` (meaning ``c I``) or a ``(d, d)`` symmetric PSD matrix.

    Parameters
    ----------
    C : float or array_like
        The covariance (scalar or ``(d, d)``).
    d : int
        The required side.
    name, who : str
        Argument and caller names for the error message.
    tol : float
        Relative tolerance: ``|C - C^T|_max <= tol |C|_max`` and smallest eigenvalue ``>= -tol * max|eigenvalue|``.

    Returns
    -------
    float or numpy.ndarray
        The scalar, or the matrix as a float64 array (unchanged: not symmetrised).

    Raises
    ------
    InputError
        Negative or non-finite scalar, wrong shape, non-finite entries, asymmetry beyond ``tol``, or an eigenvalue
        below ``-tol max|eigenvalue|`` (the message reports the most negative eigenvalue).

    Examples
    --------
    >>> check_covariance(2.0, 3)
    2.0
    >>> try:
    ...     check_covariance([[1.0, 2.0], [2.0, 1.0]], 2)
    ... except InputError as exc:
    ...     print(str(exc)[:68])
    check_covariance: C1 must be positive semi-definite: most negative e
    """
    if np.ndim(C) == 0 and not isinstance(C, (str, bytes)) and C is not None:
        return _nonneg_scalar(C.item() if isinstance(C, np.ndarray) else C, name, who)
    M = real_array(C, name, who, 2)
    if M.shape != (d, d):
        raise InputError(f"{who}: {name} must be a scalar or a ({d}, {d}) matrix (the input dimension), "
                         f"got shape {M.shape}")
    scale = float(np.max(np.abs(M))) if M.size else 0.0
    asym = float(np.max(np.abs(M - M.T))) if M.size else 0.0
    if asym > tol * scale:
        raise InputError(f"{who}: {name} must be symmetric, got max|{name} - {name}^T| = {asym:.3g} "
                         f"(> {tol:g} max|{name}|; it is not symmetrised silently)")
    lam = np.linalg.eigvalsh(M)
    top = float(np.max(np.abs(lam))) if lam.size else 0.0
    if lam.size and lam[0] < -tol * top:
        raise InputError(f"{who}: {name} must be positive semi-definite: most negative eigenvalue {lam[0]:.6g} "
                         f"(largest |eigenvalue| {top:.6g}, tolerance {tol:g} relative)")
    return M


def psd_sqrt(C, tol: float = COV_TOL) -> np.ndarray:
    """Symmetric PSD square root ``C^(1/2) = V diag(sqrt(lambda)) V^T`` by eigendecomposition.

    Eigenvalues in ``[-tol max|lambda|, 0)`` are rounding and count as 0; any below that is an error.

    Parameters
    ----------
    C : array_like
        ``(d, d)`` symmetric PSD matrix.
    tol : float
        Relative tolerance of :func:`check_covariance`.

    Returns
    -------
    numpy.ndarray
        ``S`` with ``S = S^T`` and ``S S = C`` to rounding.

    Raises
    ------
    InputError
        ``C`` not square, not finite, not symmetric or not PSD (most negative eigenvalue reported).

    Examples
    --------
    >>> import numpy as np
    >>> S = psd_sqrt(np.array([[4.0, 0.0], [0.0, 9.0]]))
    >>> np.round(S, 12)
    array([[2., 0.],
           [0., 3.]])
    """
    M = real_array(C, "C", "psd_sqrt", 2)
    M = check_covariance(M, M.shape[0], "C", "psd_sqrt", tol)
    lam, V = np.linalg.eigh(M)
    lam = np.where(lam < 0.0, 0.0, lam)  # only rounding-sized negatives reach here (checked above)
    return (V * np.sqrt(lam)) @ V.T


def anchor_covariance(a: float, b, F) -> np.ndarray:
    """The data-defined covariance shape ``a I + sum_k b_k f_k f_k^T / n`` of features ``F`` (rows ``f_k``, width n).

    Formed explicitly (``n x n``): for a first layer (``F`` = anchor inputs) or for checks; the simulation never
    forms it at hidden layers.

    Parameters
    ----------
    a : float
        White part, ``>= 0``.
    b : array_like
        ``(m,)`` anchor weights, ``>= 0``.
    F : array_like
        ``(m, n)`` anchor features.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` symmetric PSD matrix.

    Raises
    ------
    InputError
        Negative or non-finite ``a`` or ``b``, ``b`` and ``F`` of mismatched lengths, non-finite ``F``.

    Examples
    --------
    >>> import numpy as np
    >>> anchor_covariance(1.0, [2.0], np.array([[1.0, 1.0]]))
    array([[2., 1.],
           [1., 2.]])
    """
    who = "anchor_covariance"
    a = _nonneg_scalar(a, "a", who)
    b = real_array(b, "b", who, 1)
    F = real_array(F, "F", who, 2)
    if np.any(b < 0):
        raise InputError(f"{who}: b must be >= 0, got min {b.min():.6g}")
    if b.shape[0] != F.shape[0]:
        raise InputError(f"{who}: b has {b.shape[0]} weights but F has {F.shape[0]} rows")
    n = F.shape[1]
    return a * np.eye(n) + (F.T * b) @ F / n


def anchored_gram(H, a: float, b, n_inputs: int, C_b: float = 0.0) -> np.ndarray:
    """One rainbow step on a Gram matrix: ``K = C_b + a H + H[:, A] diag(b) H[A, :]``, ``A = n_inputs..N-1``.

    This is ``<h(x), C h(x')> / n + C_b`` for ``C = a I + sum_k b_k h(z_k) h(z_k)^T / n`` when ``H = h^T h / n``
    is the Gram of ``N = P + m`` points, the ``m`` anchors last; it holds at finite width as well as in the limit.

    Parameters
    ----------
    H : array_like
        ``(N, N)`` symmetric Gram matrix (post-activation kernel of the previous layer).
    a : float
        White part, ``>= 0``.
    b : array_like
        ``(m,)`` anchor weights, ``>= 0``, ``m = N - n_inputs``.
    n_inputs : int
        ``P``, the number of leading rows that are inputs.
    C_b : float
        Bias variance, ``>= 0``.

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` pre-activation kernel.

    Raises
    ------
    InputError
        Bad shapes, negative or non-finite numbers.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> anchored_gram(H, 1.0, [2.0], n_inputs=1)   # 1 H + 2 H[:, 1] H[1, :]
    array([[1.5, 1.5],
           [1.5, 3. ]])
    """
    who = "anchored_gram"
    H = real_array(H, "H", who, 2)
    if H.shape[0] != H.shape[1]:
        raise InputError(f"{who}: H must be square, got shape {H.shape}")
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)) or not 0 <= n_inputs <= H.shape[0]:
        raise InputError(f"{who}: n_inputs must be an integer in [0, {H.shape[0]}], got {n_inputs!r}")
    a = _nonneg_scalar(a, "a", who)
    C_b = _nonneg_scalar(C_b, "C_b", who)
    b = real_array(b, "b", who, 1)
    if b.shape[0] != H.shape[0] - n_inputs:
        raise InputError(f"{who}: b must have N - n_inputs = {H.shape[0] - n_inputs} entries, got {b.shape[0]}")
    if np.any(b < 0):
        raise InputError(f"{who}: b must be >= 0, got min {b.min():.6g}")
    return _step(H, a, b, int(n_inputs), C_b)


def _step(H: np.ndarray, a: float, b: np.ndarray, P: int, C_b: float) -> np.ndarray:
    HA = H[:, P:]
    K = C_b + a * H
    if b.size and np.any(b > 0):
        K = K + (HA * b) @ HA.T
    return 0.5 * (K + K.T)  # exact for the symmetric inputs the recursion produces; removes matmul rounding


# --- the recursion ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RainbowKernels:
    """Infinite-width kernels of a rainbow network on ``P`` inputs and ``m`` anchors (inputs first).

    Attributes
    ----------
    preact : numpy.ndarray
        ``(L, N, N)``, index ``l`` = layer ``l + 1``: ``K^(l+1)``, the pre-activation kernel.
    postact : numpy.ndarray
        ``(L, N, N)``: ``H^(l+1) = <phi(u) phi(u')>_{K^(l+1)}``, the activation ("rainbow") kernel.
    n_inputs : int
        ``P``; the inputs block is ``[..., :P, :P]``, the anchors ``[..., P:, P:]``.
    """

    preact: np.ndarray
    postact: np.ndarray
    n_inputs: int

    @property
    def depth(self) -> int:
        return int(self.preact.shape[0])

    @property
    def n_anchors(self) -> int:
        return int(self.preact.shape[1]) - self.n_inputs


def _pair_kernel(act: Activation, K: np.ndarray) -> np.ndarray:
    """<phi(u_a) phi(u_b)>_K on the upper triangle, mirrored (as kernel_recursion evaluates it)."""
    N = K.shape[0]
    iu, ju = np.triu_indices(N)
    d = np.diag(K)
    kaa, kbb, kab = d[iu], d[ju], K[iu, ju]
    lim = sqrt_product(kaa, kbb)
    kab = np.clip(kab, -lim, lim)  # rounding-sized PSD violations only: K is PSD by construction
    with np.errstate(over="ignore", invalid="ignore"):
        vals = pair_values(act, kaa, kab, kbb)  # inf where it overflows: reported by the caller with the layer
    H = np.empty((N, N))
    H[iu, ju] = vals
    H[ju, iu] = vals
    return H


def _check_layers(a, b, m: int, who: str) -> tuple[np.ndarray, np.ndarray]:
    a = real_array(a, "a", who, 1)
    if np.any(a < 0):
        raise InputError(f"{who}: a must be >= 0 (a_j is the white part of C_j), got min {a.min():.6g}")
    if b is None:
        b = np.zeros((a.size, m))
    else:
        b = real_array(b, "b", who, 2) if np.size(b) else np.zeros((np.shape(b)[0] if np.ndim(b) else 0, m))
        if b.shape != (a.size, m):
            raise InputError(f"{who}: b must have shape (len(a), m) = ({a.size}, {m}) (one row per layer 2..L, "
                             f"one column per anchor), got {b.shape}")
        if np.any(b < 0):
            raise InputError(f"{who}: b must be >= 0 (b_jk weights anchor k in C_j), got min {b.min():.6g}")
    return a, b


def check_rainbow_arguments(X, C1, a, b, anchors, C_b, who: str):
    """Shared validation of :func:`rainbow_kernels` and the simulation: returns ``(Y, C1, a, b, P, C_b)``."""
    X = real_array(X, "X", who, 2)
    P, d = X.shape
    if P < 1 or d < 1:
        raise InputError(f"{who}: X must be (P, d) with P, d >= 1, got shape {X.shape}")
    if anchors is None:
        Z = np.zeros((0, d))
    else:
        Z = real_array(anchors, "anchors", who, 2) if np.size(anchors) else np.zeros((0, d))
        if Z.shape[1] != d:
            raise InputError(f"{who}: anchors must have the input dimension d = {d} columns, got shape {Z.shape}")
    C1 = check_covariance(C1, d, "C1", who)
    a, b = _check_layers(a, b, Z.shape[0], who)
    C_b = _nonneg_scalar(C_b, "C_b", who)
    return np.concatenate([X, Z], axis=0), C1, a, b, P, C_b


def first_layer_gram(Y: np.ndarray, C1, C_b: float) -> np.ndarray:
    """``C_b + Y C_1 Y^T / d`` (validated arguments; a scalar ``C1`` is ``C1 I``)."""
    d = Y.shape[1]
    if np.ndim(C1) == 0:
        G0 = Y @ Y.T / d
        return C_b + C1 * (0.5 * (G0 + G0.T))  # the exact expression of kernel_recursion's K^(1)
    G = Y @ C1 @ Y.T / d
    return C_b + 0.5 * (G + G.T)


def rainbow_kernels(act: str | Activation, X, C1, a, b=None, anchors=None, *, C_b: float = 0.0) -> RainbowKernels:
    """The rainbow kernels ``K^(1..L)`` and ``H^(1..L)`` of inputs ``X`` and anchors ``Z`` (module docstring).

    ``K^(1) = C_b + Y C_1 Y^T / d`` with ``Y = [X; Z]``; for ``j = 2..L``,
    ``K^(j) = C_b + a_j H^(j-1) + H^(j-1)[:, A] diag(b_j) H^(j-1)[A, :]``; ``H^(j) = <phi phi>_{K^(j)}``.

    Parameters
    ----------
    act : str or Activation
        The activation ``phi``.
    X : array_like
        ``(P, d)`` inputs, one per row.
    C1 : float or array_like
        First-layer covariance shape: a scalar ``c >= 0`` (``c I``) or a ``(d, d)`` symmetric PSD matrix; the rows
        of the first weight matrix are ``N(0, C1 / d)``.  (A data-defined first layer is
        ``anchor_covariance(a_1, b_1, Z)``.)
    a : array_like
        ``(L - 1,)`` white parts ``a_2..a_L >= 0`` of the hidden layers (empty for a one-layer network).
    b : array_like, optional
        ``(L - 1, m)`` anchor weights ``b_jk >= 0``; default zeros.
    anchors : array_like, optional
        ``(m, d)`` anchor inputs ``z_k``; default none (``m = 0``).
    C_b : float
        Bias variance ``>= 0`` (every layer); default 0.

    Returns
    -------
    RainbowKernels
        ``preact`` and ``postact`` of shape ``(L, P + m, P + m)``.

    Raises
    ------
    InputError
        Non-finite or wrongly shaped ``X``/``anchors`` (anchors must have ``d`` columns), ``C1`` not symmetric PSD
        (most negative eigenvalue reported), negative ``a``, ``b`` or ``C_b``, ``b`` of the wrong shape, or an
        overflowing kernel.

    Examples
    --------
    With ``C1 = C_W I``, ``a_j = C_W`` and no anchors this is the mean-field kernel recursion:

    >>> import numpy as np
    >>> from sigprop.theory.meanfield import kernel_recursion
    >>> X = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> rk = rainbow_kernels("tanh", X, C1=1.5, a=[1.5, 1.5])
    >>> bool(np.array_equal(rk.preact, kernel_recursion("tanh", X @ X.T / 2, depth=3, C_W=1.5)))
    True
    """
    who = "rainbow_kernels"
    act = as_activation(act)
    Y, C1, a, b, P, C_b = check_rainbow_arguments(X, C1, a, b, anchors, C_b, who)
    L = a.size + 1
    N = Y.shape[0]
    pre = np.empty((L, N, N))
    post = np.empty((L, N, N))
    K = first_layer_gram(Y, C1, C_b)
    for layer in range(L):
        if layer > 0:
            K = _step(post[layer - 1], float(a[layer - 1]), b[layer - 1], P, C_b)
        pre[layer] = K
        H = _pair_kernel(act, K)
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(H))):
            raise InputError(f"{who}: the kernel overflowed at layer {layer + 1}")
        post[layer] = H
    return RainbowKernels(preact=pre, postact=post, n_inputs=P)
