"""Recursive Feature Machine (RFM): kernel ridge regression with a learned Mahalanobis Laplace kernel.

Radhakrishnan, Beaglehole, Pandit, Belkin, arXiv 2212.13881 (reference code ``aradha/recursive_feature_machines``,
Laplace kernel, bandwidth 10, reg 1e-3).  Public entry point: :func:`rfm`.

Mathematics
-----------
Kernel, for a symmetric positive semidefinite (PSD) ``M`` (d x d) and bandwidth ``L > 0``::

    k_M(x, z) = exp(-||x - z||_M / L),   ||v||_M = sqrt(v^T M v).

Predictor (kernel ridge regression on N training pairs, o outputs)::

    f(x) = sum_i alpha_i k_M(x, x_i)  (in R^o),   alpha = (K + reg I)^{-1} Y,   K_ij = k_M(x_i, x_j),

solved by a Cholesky factorisation of the symmetric positive definite ``K + reg I`` (no explicit inverse).

Gradient, in closed form (for output c)::

    grad f_c(x) = -(1/L) M sum_i alpha_ic k_M(x, x_i) (x - x_i) / ||x - x_i||_M.

Convention: terms with ``||x - x_i||_M = 0`` (in particular ``x = x_i``) are dropped.  There the term
``alpha_i exp(-||x - x_i||_M / L)`` has a kink (``exp(-|t| / L)`` along every line through ``x_i``), so it has no
gradient; dropping it takes the symmetric choice: the term is even about ``x_i``, so its central difference, and
the midpoint of its one-sided slopes ``-/+ alpha_i ||v||_M / L`` along any direction v, is exactly 0.  Here every
term whose distance is zero to within its rounding bound (below) is dropped.  The reference code (``get_grads``)
does not drop all of them: it drops a term only when its computed distance is below ``1e-10``, and it computes the
distances in float32 as ``sqrt(max(0, x^T M x + z^T M z - 2 x^T M z))``, where the distance of ``x = x_i`` to itself
is a rounding residue that often exceeds ``1e-10``; those self terms stay in its gradients with weight ``1 /
residue``.  In float32 a fifth to a third of the self terms escape the threshold (20-37% in a NumPy float32 replay of
its distance formula on Gaussian data, N = 500-1000, d = 10-50).

Average gradient outer product (AGOP) at the training points, mean over the N points and the o outputs::

    AGOP = (1 / (N o)) sum_j sum_c grad f_c(x_j) grad f_c(x_j)^T

(``centering=True`` subtracts each output's mean gradient first).  The reference code sums over the outputs instead
of averaging: its matrix is o times ours, which changes the kernel unless ``normalise_trace=True``.

Feature update: ``M <- AGOP^power`` (``power`` in (0, 1]; the literature uses 1 and 1/2), through the
eigendecomposition ``AGOP = V diag(w) V^T`` of the symmetrised AGOP; ``diag=True`` keeps only the diagonal of the
AGOP first; ``normalise_trace=True`` then rescales ``M`` to ``tr(M) = d`` (the trace of the starting identity).
The AGOP is a sum of outer products, PSD in exact arithmetic: an eigenvalue below ``-(N o + d) eps sum_k |w_k|``
(the first-order rounding bound of forming the sum and of the eigensolver) is a bug and raises
``FloatingPointError``; negative eigenvalues within that bound are rounding noise of a zero eigenvalue and are set
to exactly 0 (so M is exactly PSD before the final rounding of ``V diag(w^power) V^T``).

Iteration: rounds t = 0, ..., iters fit the predictor with ``M_t`` (``M_0 = I``); after rounds t < iters,
``M_{t+1} = update(AGOP(f_t))``.  So ``iters`` AGOP updates and ``iters + 1`` kernel solves; the returned predictor
is the last round's, and the history holds ``iters + 1`` rounds.

Vectorisation and rounding
--------------------------
Squared distances by BLAS: ``D2_ij = s_i + s_j - 2 (Z M X^T)_ij``, ``s_i = z_i^T M z_i``.  The three terms are
dot products of length <= d, so (with ``|z|^T |M| |x| <= ||M||_F ||z|| ||x||``) the rounding error of ``D2_ij``
is below ``tol_i = 4 (d + 2) eps ||M||_F (||z_i||^2 + max_j ||x_j||^2)``.  Entries with ``D2_ij <= tol_i`` are
coincident to within rounding: they are set to exactly 0 (kernel 1, gradient term dropped) -- the clamp acts only
at that level; an entry below ``-tol_i`` cannot come from rounding (M would not be PSD) and raises
``FloatingPointError``.  The points are centred on the training mean first (distances are translation invariant),
which keeps ``||x||^2``, and with it the cancellation and ``tol``, small.  Caveat: near coincidence the distance
``sqrt(D2)`` carries an absolute error up to ``sqrt(tol)``, as for any Gram-matrix distance.

Gradients at evaluation points Z (m x d) from ``W_ji = k_M(z_j, x_i) / (L ||z_j - x_i||_M)`` (0 for dropped
terms): for output c, ``s = W alpha_c`` and ``B = W (alpha_c * X)`` (one GEMM), and the gradients are the rows of
``G_c = -(Z * s[:, None] - B) M``.

Cost per round: ``O(N^2 d)`` (distances), ``N^3 / 3`` (Cholesky), ``O(o (N^2 d + N d^2))`` (gradients, AGOP),
``O(d^3)`` (eigendecomposition).  Memory: three N x N float64 arrays at once (distances, then gradient weights;
kernel; Cholesky factor) plus ``O(N (d + o) + d^2)``: about ``25 N^2`` bytes (N = 2000: 100 MB), estimated by
:func:`rfm_memory_bytes` and checked against the available host memory before any work.  Predictions at new points
(and the validation error) work on blocks of at most ``2^22`` kernel entries.  Speed: N = 2000, d = 64, 5 iterations
take 0.9-2.5 s with one BLAS thread on a 2-core AMD EPYC (:func:`sigprop.kernels.learning.bench_rfm.run_benchmarks`);
on a busy machine the default BLAS threads can be several times slower than one (:func:`rfm`'s ``blas_threads=1``).

Threads and reproducibility: OpenBLAS splits its sums by thread count, so the fit's numbers depend on the number of
BLAS threads at the rounding level (measured: 2.3e-13 between 1 and 2 threads).  ``blas_threads=1`` gives the same
numbers whatever the process's default BLAS threads (and on any machine with the same BLAS build).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.standard_normal((300, 5))
>>> res = rfm(X, X[:, 0] * X[:, 1], iters=3)
>>> frac = (res.M[0, 0] + res.M[1, 1]) / np.trace(res.M)   # share of tr(M) on the relevant coordinates
>>> print(bool(frac > 0.8), len(res.history))
True 4
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from sigprop.theory.arguments import flag, integer_in_range, one_of, positive_real, real_number
from sigprop.theory.deprecation import renamed_attributes
from sigprop.theory.errors import InputError, InputTypeError

from .. import backend
from ..cluster import blas_thread_limit

__all__ = [
    "rfm",
    "RFMResult",
    "RFMRound",
    "laplace_kernel",
    "predictor_gradients",
    "predictor_agop",
    "rfm_memory_bytes",
    "KERNELS",
    "TASKS",
]

KERNELS = ("laplace",)
TASKS = ("auto", "regression", "classification")
_EPS = float(np.finfo(np.float64).eps)
_F8 = 8
# Fraction of the available host memory a fit may plan to use.
_MEMORY_FRACTION = 0.8
# Kernel blocks outside the training fit (predict, gradients, validation) hold at most this many entries.
_BLOCK_ELEMENTS = 1 << 22


# ---------------------------------------------------------------------------------------------------------------
# argument checks (each raises InputError / InputTypeError naming the argument and its allowed range)

def _real_array(name: str, a, ndims: tuple[int, ...], shape_text: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception:  # ragged nested sequences and the like
        raise InputTypeError(f"{name} must be a real array of shape {shape_text}, got {type(a).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise InputTypeError(f"{name} must be a real array of shape {shape_text}, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        raise InputError(f"{name} must have shape {shape_text}, got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, order="C")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite (it contains NaN or inf)")
    return arr


def _points(name: str, a, d: int | None, min_rows: int = 1) -> np.ndarray:
    what = "(n, d)" if d is None else f"(n, {d})"
    arr = _real_array(name, a, (2,), what)
    if arr.shape[0] < min_rows or arr.shape[1] < 1 or (d is not None and arr.shape[1] != d):
        raise InputError(f"{name} must have shape {what} with n >= {min_rows} rows and d >= 1 columns, "
                         f"got shape {arr.shape}")
    return arr


def _check_M(M, d: int) -> np.ndarray:
    """A finite, symmetric (to rounding), PSD (to rounding) d x d matrix, returned exactly symmetrised."""
    M = _real_array("M", M, (2,), f"({d}, {d})")
    if M.shape != (d, d):
        raise InputError(f"M must have shape ({d}, {d}) (d = the columns of X), got {M.shape}")
    scale = float(np.abs(M).max()) if M.size else 0.0
    if np.abs(M - M.T).max() > 8 * d * _EPS * scale:
        raise InputError("M must be symmetric (to rounding)")
    M = 0.5 * (M + M.T)
    w = np.linalg.eigvalsh(M)
    if w[0] < -4 * d * _EPS * float(np.abs(w).sum()):
        raise InputError(f"M must be positive semidefinite, its smallest eigenvalue is {w[0]!r}")
    return M


# ---------------------------------------------------------------------------------------------------------------
# the numerical core (inputs already checked; Z and X centred on the same point)

def _sqdist(Z: np.ndarray, X: np.ndarray, M: np.ndarray, same: bool = False) -> np.ndarray:
    """Squared Mahalanobis distances ``||z_j - x_i||_M^2`` (m x N) by BLAS, clamped to 0 at the rounding level.

    ``same``: Z is X (the diagonal is set to exactly 0).  See the module notes for the tolerance.
    """
    d = X.shape[1]
    XM = X @ M
    sx = np.einsum("ij,ij->i", XM, X)
    if same:
        sz, nz = sx, np.einsum("ij,ij->i", X, X)
        nx_max = float(nz.max())
    else:
        sz = np.einsum("ij,ij->i", Z @ M, Z)
        nz = np.einsum("ij,ij->i", Z, Z)
        nx_max = float(np.einsum("ij,ij->i", X, X).max())
    D2 = Z @ XM.T
    D2 *= -2.0
    D2 += sz[:, None]
    D2 += sx[None, :]
    tol = (4.0 * (d + 2) * _EPS * float(np.linalg.norm(M))) * (nz + nx_max)
    low = D2.min(axis=1) < -tol
    if low.any():
        i = int(np.argmax(low))
        raise FloatingPointError(f"squared Mahalanobis distance {D2[i].min()!r} below -{tol[i]!r}, beyond rounding: "
                                 "M is not positive semidefinite (a bug)")
    D2[D2 <= tol[:, None]] = 0.0
    if same:
        np.fill_diagonal(D2, 0.0)
    return D2


def _kernel_and_weights(D2: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    """From squared distances (overwritten): the kernel ``K`` and ``W = K / (L D)`` (0 where D = 0), in D2's buffer."""
    D = np.sqrt(D2, out=D2)
    K = np.multiply(D, -1.0 / bandwidth)
    np.exp(K, out=K)
    W = np.divide(K, D, out=D, where=D > 0.0)  # entries with D == 0 keep their value 0
    W *= 1.0 / bandwidth
    return K, W


def _gradient_blocks(W: np.ndarray, Z: np.ndarray, X: np.ndarray, alpha: np.ndarray, M: np.ndarray):
    """Yield, for each output c, the m x d gradients ``G_c = -(Z * (W a_c)[:, None] - W (a_c * X)) M``."""
    for c in range(alpha.shape[1]):
        a = alpha[:, c]
        s = W @ a
        H = Z * s[:, None]
        H -= W @ (a[:, None] * X)
        yield -(H @ M)


def _agop_from_weights(W, X, alpha, M, centering: bool) -> np.ndarray:
    d = X.shape[1]
    A = np.zeros((d, d))
    for G in _gradient_blocks(W, X, X, alpha, M):
        if centering:
            G -= G.mean(axis=0)
        A += G.T @ G
    A /= X.shape[0] * alpha.shape[1]
    return A


def _psd_power(A: np.ndarray, power: float, n_terms: int, diag: bool) -> np.ndarray:
    """``A^power`` of the PSD sum of ``n_terms`` outer products A (or of its diagonal), negative eigenvalues within
    the rounding bound ``(n_terms + d) eps sum|w|`` set to 0 and beyond it an error (see the module notes)."""
    d = A.shape[0]
    if not np.all(np.isfinite(A)):
        raise FloatingPointError("the AGOP is not finite (overflow in the predictor's gradients)")
    if diag:
        w = np.diag(A).copy()  # sums of squares: >= 0 exactly
        return np.diag(w ** power)
    A = 0.5 * (A + A.T)
    w, V = np.linalg.eigh(A)
    tol = (n_terms + d) * _EPS * float(np.abs(w).sum())
    if w[0] < -tol:
        raise FloatingPointError(f"the AGOP has eigenvalue {w[0]!r} below -{tol!r} (its rounding bound): "
                                 "it is not positive semidefinite (a bug)")
    w = np.where(w > 0.0, w, 0.0)
    P = (V * w ** power) @ V.T
    return 0.5 * (P + P.T)


def _predict_centred(Zc: np.ndarray, Xc: np.ndarray, alpha: np.ndarray, M: np.ndarray, bandwidth: float):
    out = np.empty((Zc.shape[0], alpha.shape[1]))
    rows = max(1, _BLOCK_ELEMENTS // max(1, Xc.shape[0]))
    for s in range(0, Zc.shape[0], rows):
        D = np.sqrt(_sqdist(Zc[s:s + rows], Xc, M))
        D *= -1.0 / bandwidth
        np.exp(D, out=D)
        out[s:s + rows] = D @ alpha
    return out


def _gradients_centred(Zc, Xc, alpha, M, bandwidth) -> np.ndarray:
    m, d = Zc.shape
    out = np.empty((m, alpha.shape[1], d))
    rows = max(1, _BLOCK_ELEMENTS // max(1, Xc.shape[0]))
    for s in range(0, m, rows):
        _, W = _kernel_and_weights(_sqdist(Zc[s:s + rows], Xc, M), bandwidth)
        for c, G in enumerate(_gradient_blocks(W, Zc[s:s + rows], Xc, alpha, M)):
            out[s:s + rows, c] = G
    return out


# ---------------------------------------------------------------------------------------------------------------
# public helpers

def _kernel_args(Z, X, M, bandwidth):
    X = _points("X", X, None)
    d = X.shape[1]
    Z = _points("Z", Z, d)
    M = np.eye(d) if M is None else _check_M(M, d)
    bandwidth = positive_real("bandwidth", bandwidth)
    c = X.mean(axis=0)
    return Z - c, X - c, M, bandwidth


def _alpha_arg(alpha, n: int) -> np.ndarray:
    alpha = _real_array("alpha", alpha, (1, 2), f"({n},) or ({n}, o)")
    if alpha.shape[0] != n or alpha.ndim == 2 and alpha.shape[1] < 1:
        raise InputError(f"alpha must have shape ({n},) or ({n}, o) with o >= 1 (one row per point of X), "
                         f"got {alpha.shape}")
    return alpha.reshape(n, -1)


def laplace_kernel(Z, X, M=None, bandwidth: float = 10.0) -> np.ndarray:
    """Mahalanobis Laplace kernel matrix ``K_ji = exp(-||z_j - x_i||_M / bandwidth)``.

    Parameters
    ----------
    Z : array_like
        Evaluation points, (m, d), finite.
    X : array_like
        Centres, (N, d), finite.
    M : array_like, optional
        Symmetric PSD (d, d) matrix (default: the identity, the plain Laplace kernel).
    bandwidth : float
        ``L > 0``.

    Returns
    -------
    numpy.ndarray
        (m, N) kernel values in (0, 1]; coincident points (to rounding, see the module notes) give exactly 1.

    Raises
    ------
    InputError, InputTypeError
        Bad shapes, non-finite entries, M not symmetric PSD, bandwidth <= 0.

    Examples
    --------
    >>> import numpy as np
    >>> K = laplace_kernel(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [0.0, 0.0]]), bandwidth=5.0)
    >>> print(np.round(K, 6))
    [[0.367879 1.      ]]
    """
    Zc, Xc, M, bandwidth = _kernel_args(Z, X, M, bandwidth)
    return np.exp(-np.sqrt(_sqdist(Zc, Xc, M)) / bandwidth)


def predictor_gradients(Z, X, alpha, M=None, bandwidth: float = 10.0) -> np.ndarray:
    """Closed-form gradients of ``f(x) = sum_i alpha_i k_M(x, x_i)`` at the points Z.

    ``grad f_c(z) = -(1/L) M sum_i alpha_ic k_M(z, x_i) (z - x_i) / ||z - x_i||_M``, terms with
    ``||z - x_i||_M = 0`` (to rounding) dropped (the kernel's kink; see the module notes).

    Parameters
    ----------
    Z : array_like
        Evaluation points, (m, d).
    X : array_like
        Centres, (N, d).
    alpha : array_like
        Coefficients, (N,) or (N, o).
    M : array_like, optional
        Symmetric PSD (d, d) matrix (default identity).
    bandwidth : float
        ``L > 0``.

    Returns
    -------
    numpy.ndarray
        (m, o, d): ``out[j, c]`` is ``grad f_c(z_j)`` (o = 1 for a 1-D alpha).

    Raises
    ------
    InputError, InputTypeError
        Bad shapes, non-finite entries, M not symmetric PSD, bandwidth <= 0.

    Examples
    --------
    One centre at the origin: ``f(z) = exp(-||z|| / L)``, so ``grad f = -f z / (L ||z||)``:

    >>> import numpy as np
    >>> g = predictor_gradients(np.array([[3.0, 4.0]]), np.zeros((1, 2)), np.ones(1), bandwidth=5.0)
    >>> print(np.round(g[0, 0] / np.exp(-1.0), 6))
    [-0.12 -0.16]
    """
    Zc, Xc, M, bandwidth = _kernel_args(Z, X, M, bandwidth)
    alpha = _alpha_arg(alpha, Xc.shape[0])
    return _gradients_centred(Zc, Xc, alpha, M, bandwidth)


def predictor_agop(X, alpha, M=None, bandwidth: float = 10.0, *, centering: bool = False) -> np.ndarray:
    """Average gradient outer product of ``f(x) = sum_i alpha_i k_M(x, x_i)`` at its own centres X.

    ``AGOP = (1 / (N o)) sum_j sum_c grad f_c(x_j) grad f_c(x_j)^T`` with the self term ``i = j`` (and any
    other coincident centre) dropped from each gradient; ``centering=True`` subtracts each output's mean gradient.

    Parameters
    ----------
    X : array_like
        Centres and evaluation points, (N, d), N >= 1.
    alpha : array_like
        Coefficients, (N,) or (N, o).
    M : array_like, optional
        Symmetric PSD (d, d) matrix (default identity).
    bandwidth : float
        ``L > 0``.
    centering : bool
        Centre the gradients of each output before the outer products.

    Returns
    -------
    numpy.ndarray
        (d, d) symmetric PSD matrix (to rounding).

    Raises
    ------
    InputError, InputTypeError
        Bad shapes, non-finite entries, M not symmetric PSD, bandwidth <= 0.

    Examples
    --------
    Two centres on the first axis: the gradients point along it, so only ``AGOP[0, 0]`` is non-zero.

    >>> import numpy as np
    >>> A = predictor_agop(np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([1.0, -1.0]), bandwidth=1.0)
    >>> print(np.round(A, 6))
    [[0.135335 0.      ]
     [0.       0.      ]]
    """
    _, Xc, M, bandwidth = _kernel_args(X, X, M, bandwidth)
    alpha = _alpha_arg(alpha, Xc.shape[0])
    centering = flag("centering", centering)
    _, W = _kernel_and_weights(_sqdist(Xc, Xc, M, same=True), bandwidth)
    return _agop_from_weights(W, Xc, alpha, M, centering)


def rfm_memory_bytes(n: int, d: int, outputs: int = 1, n_val: int = 0) -> int:
    """Bytes :func:`rfm` holds at its peak for N = ``n`` training points of dimension d, ``outputs`` outputs and
    ``n_val`` validation points.

    Three N x N float64 arrays (distances then gradient weights, kernel, Cholesky factor), an N x N boolean mask,
    ``O(N (d + o) + d^2)`` vectors and matrices, and a validation block of ``b = min(n_val, 2^22 // N)`` rows:
    ``8 (3 N^2 + 6 N d + 4 N o + 6 d^2) + N^2 + 9 b N + 8 n_val (d + 2 o)`` bytes.

    Examples
    --------
    >>> print(f"{rfm_memory_bytes(2000, 64) / 2**20:.0f} MiB")
    101 MiB
    """
    n, d, o, m = int(n), int(d), int(outputs), int(n_val)
    b = min(m, max(1, _BLOCK_ELEMENTS // max(1, n)))
    return _F8 * (3 * n * n + 6 * n * d + 4 * n * o + 6 * d * d) + n * n + 9 * b * n + _F8 * m * (d + 2 * o)


# ---------------------------------------------------------------------------------------------------------------
# results

def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=a.dtype, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class RFMRound:
    """One round of :func:`rfm`: the feature matrix ``M`` the predictor was fitted with and its errors.

    ``train_mse``/``val_mse``: mean over samples and outputs of ``(f - y)^2`` (one-hot targets for
    classification); ``train_accuracy``/``val_accuracy``: fraction of argmax labels right (classification only);
    ``val_*`` are None without validation data.
    """

    iteration: int
    M: np.ndarray
    train_mse: float
    val_mse: float | None
    train_accuracy: float | None
    val_accuracy: float | None


@dataclass(frozen=True)
class RFMResult:
    """The fitted Recursive Feature Machine (arrays read-only).

    Attributes
    ----------
    M : numpy.ndarray
        The final feature matrix (d, d), symmetric PSD; the predictor's kernel is ``k_M``.
    alpha : numpy.ndarray
        Kernel ridge coefficients (N, o) of the predictor ``f(x) = sum_i alpha_i k_M(x, x_i)``.
    X_train : numpy.ndarray
        The training inputs (N, d).
    center : numpy.ndarray
        The training mean (d,); all distances are computed between points shifted by it (translation invariant).
    bandwidth, reg, power : float
        The settings.
    diag, centering, normalise_trace : bool
        The settings of the update.
    classes : numpy.ndarray or None
        For classification the sorted labels (output c scores ``classes[c]``), else None.
    scalar_output : bool
        Regression on a 1-D y: :meth:`predict` returns shape (m,).
    history : tuple of RFMRound
        Rounds 0..iters; ``history[t].M`` is ``M_t`` (``M_0 = I``), ``history[-1].M`` is ``M``.
    """

    M: np.ndarray
    alpha: np.ndarray
    X_train: np.ndarray
    center: np.ndarray
    bandwidth: float
    reg: float
    power: float
    diag: bool
    centering: bool
    normalise_trace: bool
    classes: np.ndarray | None
    scalar_output: bool
    history: tuple[RFMRound, ...]
    kernel: str = "laplace"

    @property
    def train_mse(self) -> np.ndarray:
        """Training MSE per round, (iters + 1,)."""
        return np.array([r.train_mse for r in self.history])

    @property
    def val_mse(self) -> np.ndarray | None:
        """Validation MSE per round, (iters + 1,), or None without validation data."""
        return None if self.history[0].val_mse is None else np.array([r.val_mse for r in self.history])

    @property
    def Ms(self) -> np.ndarray:
        """Feature matrix per round, (iters + 1, d, d)."""
        return np.stack([r.M for r in self.history])

    def _centred(self, X_new) -> np.ndarray:
        return _points("X_new", X_new, self.X_train.shape[1]) - self.center

    def predict(self, X_new) -> np.ndarray:
        """Predictor values ``f(x) = sum_i alpha_i k_M(x, x_i)``: (m,) for a 1-D regression target, else (m, o)
        (class scores for classification; :meth:`predict_labels` takes the argmax)."""
        out = _predict_centred(self._centred(X_new), self.X_train - self.center, self.alpha, self.M, self.bandwidth)
        return out[:, 0] if self.scalar_output else out

    def predict_labels(self, X_new) -> np.ndarray:
        """Classification: the label of the largest score per point, (m,)."""
        if self.classes is None:
            raise InputError("predict_labels needs a classification fit (integer labels y), this one is regression")
        return self.classes[np.argmax(self.predict(X_new), axis=1)]

    def accuracy(self, X_new, y_new) -> float:
        """Classification: fraction of points of X_new whose predicted label equals y_new (m,)."""
        labels = self.predict_labels(X_new)
        y_new = np.asarray(y_new)
        if y_new.shape != labels.shape:
            raise InputError(f"y_new must have shape {labels.shape} (one label per row of X_new), got {y_new.shape}")
        return float(np.mean(labels == y_new))

    def gradients(self, X_new) -> np.ndarray:
        """Closed-form gradients of the predictor at X_new, (m, o, d) (see :func:`predictor_gradients`)."""
        return _gradients_centred(self._centred(X_new), self.X_train - self.center, self.alpha, self.M,
                                  self.bandwidth)


# ---------------------------------------------------------------------------------------------------------------
# the fit

def _targets(name: str, y, n: int, task: str, classes: np.ndarray | None):
    """(Y float (n, o), classes or None, scalar_output)."""
    if classes is not None:  # validation labels of a classification fit
        arr = np.asarray(y)
        if arr.shape != (n,):
            raise InputError(f"{name} must have shape ({n},) (one label per row), got {arr.shape}")
        ok = np.isin(arr, classes)
        if not ok.all():
            raise InputError(f"{name} must hold only labels seen in y {classes.tolist()}, got {arr[~ok][0]!r}")
        return (arr[:, None] == classes[None, :]).astype(np.float64), classes, False
    arr = np.asarray(y) if not isinstance(y, (str, bytes)) else np.array(y, dtype=object)
    if task == "auto":
        task = "classification" if arr.ndim == 1 and arr.dtype.kind in "iu" else "regression"
    if task == "classification":
        if arr.dtype.kind not in "iu":
            raise InputTypeError(f"{name} must hold integer labels for classification, got dtype {arr.dtype}")
        if arr.shape != (n,):
            raise InputError(f"{name} must have shape ({n},) (one label per row of X), got {arr.shape}")
        cls = np.unique(arr)
        if cls.size < 2:
            raise InputError(f"{name} must hold at least 2 distinct labels for classification, got {cls.tolist()}")
        return (arr[:, None] == cls[None, :]).astype(np.float64), cls, False
    Y = _real_array(name, arr, (1, 2), f"({n},) or ({n}, o)")
    if Y.shape[0] != n or Y.ndim == 2 and Y.shape[1] < 1:
        raise InputError(f"{name} must have shape ({n},) or ({n}, o) with o >= 1 (one row per row of X), "
                         f"got {Y.shape}")
    return Y.reshape(n, -1), None, Y.ndim == 1


def _mse(F: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean((F - Y) ** 2))


def _acc(F: np.ndarray, Y: np.ndarray) -> float:
    return float(np.mean(np.argmax(F, axis=1) == np.argmax(Y, axis=1)))


def _validation_data(X_val, y_val, d: int, Y: np.ndarray, classes, scalar_output: bool, task: str):
    """Checked (X_val, Y_val), or (None, None): labels must occur in y's classes; regression targets match y's shape."""
    if (X_val is None) != (y_val is None):
        raise InputError("X_val and y_val must be given together (both or neither)")
    if X_val is None:
        return None, None
    X_val = _points("X_val", X_val, d)
    if classes is not None:
        return X_val, _targets("y_val", y_val, X_val.shape[0], task, classes)[0]
    Y_val = _targets("y_val", y_val, X_val.shape[0], "regression", None)[0]
    if Y_val.shape[1] != Y.shape[1] or (np.ndim(y_val) == 1) != scalar_output:
        raise InputError(f"y_val must have shape ({X_val.shape[0]},{'' if scalar_output else Y.shape[1]}) "
                         f"(as y), got {np.shape(y_val)}")
    return X_val, Y_val


def _check_memory(N: int, d: int, outputs: int, n_val: int) -> None:
    """MemoryError before any work when the fit would need more than the allowed share of the host memory."""
    need = rfm_memory_bytes(N, d, outputs, n_val)
    avail = backend.host_memory_available()
    if need > _MEMORY_FRACTION * avail:
        raise MemoryError(f"rfm with N = {N} training points needs about {need / 2**30:.2f} GiB (three N x N float64 "
                          f"arrays: distances, kernel, Cholesky factor), more than {_MEMORY_FRACTION:.0%} of the "
                          f"{avail / 2**30:.2f} GiB available; use fewer training points")


def _ridge_solve(Xc: np.ndarray, M: np.ndarray, Y: np.ndarray, bandwidth: float, reg: float):
    """One round's kernel ridge solve ``(K + reg I) alpha = Y`` (Cholesky): alpha, the fit ``K alpha`` on the
    training points and the gradient weights W of the kernel (K itself is freed on return)."""
    N = Xc.shape[0]
    K, W = _kernel_and_weights(_sqdist(Xc, Xc, M, same=True), bandwidth)
    A = K.copy()
    A.flat[::N + 1] += reg
    factor = scipy.linalg.cho_factor(A, lower=True, overwrite_a=True, check_finite=False)
    alpha = scipy.linalg.cho_solve(factor, Y, check_finite=False)
    del A, factor
    return alpha, K @ alpha, W


def _round(t: int, M, F, Y, classes, Xv, Y_val, Xc, alpha, bandwidth: float) -> RFMRound:
    """The history entry of round t: M, train (and validation) MSE and, for classification, accuracy."""
    val_mse = val_acc = None
    if Xv is not None:
        Fv = _predict_centred(Xv, Xc, alpha, M, bandwidth)
        val_mse = _mse(Fv, Y_val)
        val_acc = None if classes is None else _acc(Fv, Y_val)
    return RFMRound(iteration=t, M=_frozen(M), train_mse=_mse(F, Y), val_mse=val_mse,
                    train_accuracy=None if classes is None else _acc(F, Y), val_accuracy=val_acc)


def _metric_from_agop(A_gop: np.ndarray, power: float, n_terms: int, diag: bool, normalise_trace: bool) -> np.ndarray:
    """The next metric ``M = AGOP^power`` (diagonal part with ``diag``), rescaled to trace d if asked (not when 0)."""
    M = _psd_power(A_gop, power, n_terms, diag)
    if normalise_trace:
        tr = float(np.trace(M))
        if tr > 0.0:
            M *= M.shape[0] / tr
    return M


def rfm(X, y, *, kernel: str = "laplace", bandwidth: float = 10.0, reg: float = 1e-3, iters: int = 5,
        power: float = 1.0, diag: bool = False, centering: bool = False, normalise_trace: bool = False,
        X_val=None, y_val=None, task: str = "auto", blas_threads: int | None = None) -> RFMResult:
    """Fit a Recursive Feature Machine: kernel ridge regression with ``k_M``, then ``M <- AGOP^power``, repeated.

    Round t (t = 0..iters) solves ``(K_t + reg I) alpha_t = Y`` for ``K_t = k_{M_t}(X, X)``, ``M_0 = I``, and
    (t < iters) sets ``M_{t+1} = AGOP(f_t)^power`` (diagonal part only with ``diag``, rescaled to trace d with
    ``normalise_trace``).  See the module docstring for the formulas, the self-term convention and the rounding.

    Parameters
    ----------
    X : array_like
        Training inputs (N, d), finite, N >= 2.
    y : array_like
        Targets: integer labels (N,) (classification by one-hot regression, outputs = sorted distinct labels,
        at least 2), or real (N,) / (N, o) (regression).  ``task`` overrides the choice by dtype.
    kernel : str
        ``'laplace'`` (the only kernel so far).
    bandwidth : float
        ``L > 0`` (reference code: 10).
    reg : float
        Ridge ``> 0`` (reference code: 1e-3).
    iters : int
        Number of AGOP updates, >= 1 (``iters + 1`` kernel solves).
    power : float
        Exponent of the update, ``0 < power <= 1`` (1: the original RFM, 0.5: the later ``AGOP^(1/2)`` form).
    diag : bool
        Keep only the diagonal of the AGOP (a diagonal M: per-coordinate weights).
    centering : bool
        Subtract each output's mean gradient before the outer products.
    normalise_trace : bool
        Rescale each new M to trace d (left at 0 if the AGOP is 0, a constant predictor).
    X_val, y_val : array_like, optional
        Validation data (both or neither), shapes as X (same d) and y; labels must occur in y.
    task : str
        ``'auto'`` (integer 1-D y: classification, else regression), ``'regression'``, ``'classification'``.
    blas_threads : int or None
        Caps the BLAS threads during the fit (threadpoolctl), as :func:`sigprop.kernels.learning.training.train` does;
        an integer >= 1.  None (default) leaves BLAS alone.  The fit's numbers depend on the BLAS thread count at the
        rounding level (2.3e-13 measured between 1 and 2 OpenBLAS threads): pass 1 for results that are identical
        whatever the process's default BLAS threads (also the fastest choice on a busy machine).

    Returns
    -------
    RFMResult
        Frozen: ``M``, the predictor (``predict``, ``predict_labels``, ``accuracy``, ``gradients``) and ``history``
        (``iters + 1`` rounds of M, train and validation MSE and accuracy).

    Raises
    ------
    InputError, InputTypeError
        A bad argument, named with its allowed range, before any work.
    MemoryError
        When the three N x N arrays would not fit in the available host memory (before any work).
    numpy.linalg.LinAlgError
        When ``K + reg I`` is not numerically positive definite (reg far below the rounding of K; raise reg).

    Examples
    --------
    Classification of XOR-like labels that depend on 2 of 8 coordinates:

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> X = rng.standard_normal((400, 8))
    >>> labels = (X[:, 0] * X[:, 1] > 0).astype(int)
    >>> res = rfm(X[:300], labels[:300], iters=3, X_val=X[300:], y_val=labels[300:])
    >>> res.M.shape, res.alpha.shape, len(res.history)
    ((8, 8), (300, 2), 4)
    >>> first, last = res.history[0].val_accuracy, res.history[-1].val_accuracy  # 0.83 and 0.93 on one CPU
    >>> print(bool(last > first), bool(last >= 0.9))
    True True
    >>> res.predict_labels(X[300:303]).shape
    (3,)
    """
    kernel = one_of("kernel", kernel, KERNELS)
    task = one_of("task", task, TASKS)
    X = _points("X", X, None, min_rows=1)
    N, d = X.shape
    if N < 2:
        raise InputError(f"X must have N >= 2 training points (rows), got N = {N}")
    Y, classes, scalar_output = _targets("y", y, N, task, None)
    bandwidth = positive_real("bandwidth", bandwidth)
    reg = positive_real("reg", reg)
    if isinstance(iters, bool) or not isinstance(iters, numbers.Integral) or iters < 1:
        raise InputError(f"iters must be an integer >= 1 (the number of AGOP updates), got {iters!r}")
    iters = int(iters)
    power = real_number("power", power)
    if not 0.0 < power <= 1.0:
        raise InputError(f"power must be in (0, 1] (1: AGOP, 0.5: AGOP^(1/2)), got {power!r}")
    diag = flag("diag", diag)
    centering = flag("centering", centering)
    normalise_trace = flag("normalise_trace", normalise_trace)
    X_val, Y_val = _validation_data(X_val, y_val, d, Y, classes, scalar_output, task)
    threads = None if blas_threads is None else integer_in_range("blas_threads", blas_threads, 1)
    _check_memory(N, d, Y.shape[1], 0 if X_val is None else X_val.shape[0])

    # ---- the rounds --------------------------------------------------------------------------------------------
    center = X.mean(axis=0)
    Xc = X - center
    Xv = None if X_val is None else X_val - center
    M = np.eye(d)
    history = []
    with blas_thread_limit(threads):
        for t in range(iters + 1):
            alpha, F, W = _ridge_solve(Xc, M, Y, bandwidth, reg)
            history.append(_round(t, M, F, Y, classes, Xv, Y_val, Xc, alpha, bandwidth))
            if t == iters:
                break
            A_gop = _agop_from_weights(W, Xc, alpha, M, centering)
            del W
            M = _metric_from_agop(A_gop, power, N * Y.shape[1], diag, normalise_trace)
    return RFMResult(M=history[-1].M, alpha=_frozen(alpha), X_train=_frozen(X), center=_frozen(center),
                     bandwidth=bandwidth, reg=reg, power=power, diag=diag, centering=centering,
                     normalise_trace=normalise_trace, classes=None if classes is None else _frozen(classes),
                     scalar_output=bool(scalar_output), history=tuple(history), kernel=kernel)


# one public name per meaning: sigprop.validation.measures.agop is the AGOP of a Jacobian stack
__getattr__ = renamed_attributes(__name__, {"agop": "predictor_agop"}, globals())
