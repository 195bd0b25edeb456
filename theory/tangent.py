"""Layerwise tangent kernels at infinite width, and their centred kernel alignment with labels.

Conventions (docs/conventions.md): P inputs with Gram G0 = X X^T / n_0; preactivation kernels K^(1) = C_b + C_W G0,
K^(l+1) = C_b + C_W H^(l), H^(l) = <phi(u_a) phi(u_b)>_{K^(l)}; array index l <-> layer l+1.
Backward (scalar readout f = v . phi(z^(L)) / sqrt(n_L)): B^(L) = <phi' phi'>_{K^(L)},
B^(l) = C_W <phi'(u_a) phi'(u_b)>_{K^(l)} o B^(l+1).  Tangent kernel of layer l+1's weights and biases
(NTK parametrisation): Theta^(l+1) = (C_b + C_W H^(l)) o B^(l+1) with H^(0) = G0 (Hadamard products).

Centred kernel alignment (Cortes et al.; Baratin et al.): A(K, K') = <K_c, K'_c>_F / (|K_c|_F |K'_c|_F),
K_c = C K C, C = I - 1 1^T / m, m the side of the kernel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sigprop.theory.arguments import integer_in_range, nonnegative_real, positive_real
from sigprop.theory.errors import InputError

from .activations import Activation, as_activation
from .deprecation import renamed_attributes

__all__ = [
    "TangentKernels",
    "backward_kernels",
    "centered_kernel_alignment",
    "centered_kernel_alignment_rank_one",
    "center_kernel",
    "forward_kernels",
    "label_alignment",
    "label_kernel",
    "label_alignments",
    "pair_expectations",
    "tangent_kernels",
    "vectorised_label_kernel",
]


# --------------------------------------------------------------------------------------------
# Centred kernel alignment and label targets
# --------------------------------------------------------------------------------------------
def _square(K, name: str, min_side: int = 2) -> np.ndarray:
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < min_side:
        raise InputError(f"{name} must be a square matrix of side >= {min_side}, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise InputError(f"{name} has non-finite entries")
    return K


def center_kernel(K) -> np.ndarray:
    """K_c = C K C with C = I - 1 1^T / m (row and column means removed)."""
    K = _square(K, "K")
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def centered_kernel_alignment(K1, K2) -> float:
    """A(K1, K2) = <C K1 C, C K2 C>_F / (|C K1 C|_F |C K2 C|_F), in [-1, 1] for symmetric PSD kernels."""
    K1, K2 = _square(K1, "K1"), _square(K2, "K2")
    if K1.shape != K2.shape:
        raise InputError(f"K1 and K2 must have the same shape, got {K1.shape} and {K2.shape}")
    a, b = center_kernel(K1), center_kernel(K2)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    for name, n, K in (("K1", na, K1), ("K2", nb, K2)):
        if not n > 1e-14 * max(np.abs(K).max(), 1e-300) or n == 0.0:
            raise InputError(f"{name} has zero centred norm (a constant kernel): its alignment is undefined")
    return float(np.vdot(a, b) / (na * nb))


def centered_kernel_alignment_rank_one(K, y) -> float:
    """A(K, y y^T) for a square kernel K and a vector y, in O(m^2) without forming or centring y y^T.

    With C = I - 1 1^T / m, y_c = C y, r = K 1, c = K^T 1 and s = 1^T K 1:
    ``<C K C, C y y^T C>_F = y_c^T K y_c``, ``|C K C|_F^2 = |K|_F^2 - (|r|^2 + |c|^2) / m + s^2 / m^2`` and
    ``|C y y^T C|_F = |y_c|^2``, so ``A(K, y y^T) = y_c^T K y_c / (|C K C|_F |y_c|^2)``; equal to
    :func:`centered_kernel_alignment` ``(K, np.outer(y, y))`` to rounding.

    Parameters
    ----------
    K : array_like, shape (m, m)
        A finite square kernel, m >= 2.
    y : array_like, shape (m,)
        The finite vector of the rank-one target, e.g. vec(Y) of :func:`vectorised_label_kernel`.

    Returns
    -------
    float
        The centred kernel alignment, in [-1, 1].

    Raises
    ------
    InputError
        K not square (side >= 2) or non-finite (or |K|_F^2 overflows); y not of length m or non-finite; K or y y^T
        with zero centred norm.

    Examples
    --------
    >>> K = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    >>> y = np.array([1.0, 1.0, 0.0])
    >>> a = centered_kernel_alignment_rank_one(K, y)
    >>> bool(abs(a - centered_kernel_alignment(K, np.outer(y, y))) < 1e-14)
    True
    """
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
        raise InputError(f"K must be a square matrix of side >= 2, got shape {K.shape}")
    m = K.shape[0]
    y = np.asarray(y, dtype=float)
    if y.shape != (m,) or not np.all(np.isfinite(y)):
        raise InputError(f"y must be a finite vector of length {m} (the side of K), got shape {y.shape}")
    kk = float(np.vdot(K, K))
    if not math.isfinite(kk):  # |K|_F^2 is finite iff every entry is (short of overflow)
        raise InputError("K has non-finite entries (or entries too large to square)")
    yc = y - y.mean()
    yy = float(np.dot(yc, yc))
    if not yy > 0:
        raise InputError("y y^T has zero centred norm (all entries of y equal): its alignment is undefined")
    r, c = K.sum(axis=1), K.sum(axis=0)
    tot = r.sum()
    norm2 = kk - (np.dot(r, r) + np.dot(c, c)) / m + tot * tot / (m * m)
    if not norm2 > 1e-24 * max(kk, 1e-300):
        raise InputError("K has zero centred norm (a constant kernel): its alignment is undefined")
    return float(yc @ K @ yc / (math.sqrt(norm2) * yy))


def _labels(Y, num_classes: int | None = None) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim == 1:
        if not np.issubdtype(Y.dtype, np.integer):
            raise InputError("labels Y of shape (N,) must be integer class indices")
        if Y.size and Y.min() < 0:
            raise InputError("class indices in Y must be >= 0")
        o = int(Y.max()) + 1 if num_classes is None else int(num_classes)
        if Y.size and Y.max() >= o:
            raise InputError(f"class index {int(Y.max())} >= num_classes = {o}")
        out = np.zeros((Y.size, o))
        out[np.arange(Y.size), Y] = 1.0
        return out
    if Y.ndim == 2:
        Y = Y.astype(float)
        if not np.all(np.isfinite(Y)):
            raise InputError("label matrix Y has non-finite entries")
        return Y
    raise InputError(f"label matrix Y must be (N,) class indices or (N, o), got shape {Y.shape}")


def label_kernel(Y, num_classes: int | None = None) -> np.ndarray:
    """Y Y^T (N x N) for Y one-hot (from class indices) or an (N, o) label matrix: 1 where two labels agree."""
    Y = _labels(Y, num_classes)
    return Y @ Y.T


def vectorised_label_kernel(Y, num_classes: int | None = None) -> np.ndarray:
    """y y^T (oN x oN) with y = vec(Y) in output-major order: entry (i N + a, j N + b) = Y_ai Y_bj.

    The target matching a per-output tangent kernel Theta[(i,a),(j,b)] = <df_i(x_a)/dtheta, df_j(x_b)/dtheta>.
    """
    Y = _labels(Y, num_classes)
    y = Y.T.reshape(-1)
    return np.outer(y, y)


def label_alignment(K, Y, num_classes: int | None = None) -> float:
    """CKA of a kernel with the labels: N x N kernels against Y Y^T, oN x oN kernels against vec(Y) vec(Y)^T."""
    K = _square(K, "K")
    Yl = _labels(Y, num_classes)
    N, o = Yl.shape
    if K.shape[0] == N:
        return centered_kernel_alignment(K, Yl @ Yl.T)
    if K.shape[0] == o * N:
        return centered_kernel_alignment(K, vectorised_label_kernel(Yl))
    raise InputError(f"label matrix of shape {Yl.shape} does not match a kernel of side {K.shape[0]}: "
                     f"need N = {K.shape[0]} or o * N = {K.shape[0]}")


def label_alignments(kernels, Y, num_classes: int | None = None) -> np.ndarray:
    """:func:`label_alignment` for each kernel of a (layers, m, m) stack (the alignments of given kernels; the
    per-layer alignments of a network are :func:`sigprop.kernels.learning.training.layer_alignments`)."""
    kernels = np.asarray(kernels, dtype=float)
    if kernels.ndim != 3:
        raise InputError(f"kernels must be a (layers, m, m) stack, got shape {kernels.shape}")
    return np.array([label_alignment(k, Y, num_classes) for k in kernels])


# --------------------------------------------------------------------------------------------
# Gaussian pair expectations on whole kernels
# --------------------------------------------------------------------------------------------
def pair_expectations(act: Activation, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(<phi(u_a) phi(u_b)>_K, <phi'(u_a) phi'(u_b)>_K) for all pairs a, b of a P x P kernel K.

    Closed forms for phi = a+ max(x,0) + a- min(x,0), theta_ab = arccos(K_ab / sqrt(K_aa K_bb)):
      <phi phi> = sqrt(K_aa K_bb) [ (a+ - a-)^2/(2 pi) sin(theta)
                  + ((a+^2 + a-^2)/2 - (a+ - a-)^2 theta/(2 pi)) cos(theta) ],
      <phi' phi'> = (a+^2 + a-^2)/2 - (a+ - a-)^2 theta / (2 pi).
    Other activations: sigprop.theory.meanfield.gaussian_pair_expectation(_deriv), vectorised over pairs.
    """
    K = np.asarray(K, dtype=float)
    d = np.sqrt(np.diag(K))
    if act.slopes is not None:
        ap, am = (float(x) for x in act.slopes)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = K / np.outer(d, d)
        rho = np.where(np.outer(d, d) > 0, rho, 0.0)
        if np.any(np.abs(rho) > 1 + 1e-9):
            raise InputError("kernel is not positive semi-definite (|correlation| > 1)")
        rho = np.clip(rho, -1.0, 1.0)  # rounding excursions only (checked above)
        np.fill_diagonal(rho, 1.0)
        theta = np.arccos(rho)
        q = (ap - am) ** 2 / (2 * math.pi)
        m2 = (ap * ap + am * am) / 2
        phiphi = np.outer(d, d) * (q * np.sin(theta) + (m2 - q * theta) * rho)
        dd = m2 - q * theta
        return phiphi, dd
    from .meanfield import gaussian_pair_expectation, gaussian_pair_expectation_deriv

    P = K.shape[0]
    iu, ju = np.triu_indices(P)
    kaa, kbb = K[iu, iu], K[ju, ju]
    lim = np.sqrt(kaa * kbb)
    if np.any(np.abs(K[iu, ju]) > lim * (1 + 1e-9) + 1e-300):
        raise InputError("kernel is not positive semi-definite (|correlation| > 1)")
    kab = np.clip(K[iu, ju], -lim, lim)  # rounding excursions only (checked above)
    phiphi = np.empty((P, P))
    dd = np.empty((P, P))
    phiphi[iu, ju] = phiphi[ju, iu] = gaussian_pair_expectation(act, kaa, kab, kbb)
    dd[iu, ju] = dd[ju, iu] = gaussian_pair_expectation_deriv(act, kaa, kab, kbb)
    return phiphi, dd


def _check_common(G0, depth, C_W, C_b) -> np.ndarray:
    G0 = _square(G0, "G0", min_side=1)
    if not np.allclose(G0, G0.T, rtol=1e-12, atol=1e-14 * np.abs(G0).max()):
        raise InputError("G0 must be symmetric")
    integer_in_range("depth", depth, 1)
    positive_real("C_W", C_W)
    nonnegative_real("C_b", C_b)
    return G0


def forward_kernels(act, G0, depth: int, C_W: float, C_b: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, H, D): K[l] = K^(l+1) preactivation kernels, H[l] = <phi phi>_{K^(l+1)}, D[l] = <phi' phi'>_{K^(l+1)}."""
    act = as_activation(act)
    G0 = _check_common(G0, depth, C_W, C_b)
    P = G0.shape[0]
    K = np.empty((depth, P, P))
    H = np.empty((depth, P, P))
    D = np.empty((depth, P, P))
    k = C_b + C_W * G0
    for l in range(depth):
        K[l] = k
        H[l], D[l] = pair_expectations(act, k)
        k = C_b + C_W * H[l]
    return K, H, D


def backward_kernels(D: np.ndarray, C_W: float) -> np.ndarray:
    """B[l] (layer l+1) from D[l] = <phi'phi'>_{K^(l+1)}: B[L-1] = D[L-1], B[l] = C_W D[l] o B[l+1]."""
    D = np.asarray(D, dtype=float)
    B = np.empty_like(D)
    B[-1] = D[-1]
    for l in range(D.shape[0] - 2, -1, -1):
        B[l] = C_W * D[l] * B[l + 1]
    return B


@dataclass(frozen=True)
class TangentKernels:
    """Infinite-width kernels, each (depth, P, P), array index l <-> layer l+1 (docs/conventions.md)."""

    preact: np.ndarray    # K^(l+1)
    postact: np.ndarray   # H^(l+1) = <phi phi>_{K^(l+1)}
    backward: np.ndarray  # B^(l+1)
    tangent: np.ndarray   # (C_b + C_W H^(l)) o B^(l+1), H^(0) = G0
    C_W: float
    C_b: float

    @property
    def depth(self) -> int:
        return self.tangent.shape[0]

    def alignments(self, Y, num_classes: int | None = None) -> np.ndarray:
        """CKA of each layer's tangent kernel with Y Y^T."""
        return label_alignments(self.tangent, Y, num_classes)


def tangent_kernels(act, G0, depth: int, C_W: float, C_b: float = 0.0) -> TangentKernels:
    """Forward, backward and layerwise tangent kernels of the infinite-width network at initialisation."""
    K, H, D = forward_kernels(act, G0, depth, C_W, C_b)
    B = backward_kernels(D, C_W)
    G0 = np.asarray(G0, dtype=float)
    inputs = np.concatenate([G0[None], H[:-1]], axis=0)
    T = (C_b + C_W * inputs) * B
    return TangentKernels(K, H, B, T, float(C_W), float(C_b))


__getattr__ = renamed_attributes(__name__, {"layer_alignments": "label_alignments"}, globals())
