"""Measures of the rainbow model (docs/rainbow.md): orthogonal Procrustes alignment of two networks' activations.

The rainbow statement: two independently drawn (or trained) networks of the same width have activations that
differ, to leading order, by an orthogonal transformation of the neurons.  :func:`procrustes` finds the best one,
``A = argmin_{A^T A = I} |F_a A - F_b|_F``, which is ``A = U V^T`` from the SVD ``F_a^T F_b = U S V^T`` of the
(uncentred) cross-covariance, and reports the relative error ``|F_a A - F_b|_F / |F_b|_F``.  Pure functions of
NumPy arrays: nothing is trained or simulated.

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
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError

__all__ = ["ProcrustesAlignment", "procrustes"]


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


def _features(F, name: str) -> np.ndarray:
    return real_array(F, name, "procrustes", 2, allow_empty=False)


def procrustes(F_a, F_b) -> ProcrustesAlignment:
    """Orthogonal Procrustes alignment of ``F_a`` onto ``F_b``: ``A = U V^T`` from ``F_a^T F_b = U S V^T``.

    ``A`` minimises ``|F_a A - F_b|_F`` over orthogonal matrices (the same ``A`` as
    ``scipy.linalg.orthogonal_procrustes(F_a, F_b)``; unique when ``F_a^T F_b`` has full rank, otherwise one of the
    minimisers, all with the same error).  The minimum is ``|F_a|^2 + |F_b|^2 - 2 sum(S)``.

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
    F_a = _features(F_a, "F_a")
    F_b = _features(F_b, "F_b")
    if F_a.shape[0] != F_b.shape[0]:
        raise InputError(f"procrustes: F_a and F_b must have the same number of samples (rows), "
                         f"got {F_a.shape[0]} and {F_b.shape[0]}")
    if F_a.shape[1] != F_b.shape[1]:
        raise InputError(f"procrustes: F_a and F_b must have the same number of neurons (columns), got "
                         f"{F_a.shape[1]} and {F_b.shape[1]} (pad the narrower with zero columns)")
    norm_b = float(np.linalg.norm(F_b))
    if norm_b == 0.0:
        raise InputError("procrustes: F_b is identically zero, so the relative error is undefined")
    U, _, Vt = np.linalg.svd(F_a.T @ F_b)
    A = U @ Vt
    err = float(np.linalg.norm(F_a @ A - F_b)) / norm_b
    raw = float(np.linalg.norm(F_a - F_b)) / norm_b
    return ProcrustesAlignment(rotation=A, relative_error=err, raw_error=raw)
