"""Covariance models of the weights of :func:`sigprop.kernels.simulate`: the specification objects it accepts.

``simulate(..., covariance=None)`` (the default) is the i.i.d. model, ``W_ij ~ N(0, C_W / n_{l-1})``.
``covariance=RainbowCovariance(C1, a, b, anchors)`` is the rainbow model (docs/rainbow.md,
:mod:`sigprop.theory.rainbow`): layer 1 has rows ``N(0, C1 / d)``, layer ``l >= 2`` rows of covariance
``(a_l I + sum_k b_lk hhat_k hhat_k^T / n) / n`` built from the finite-width features ``hhat_k`` of ``m`` anchor
inputs propagated through the same network.  The object is immutable and checked once, at construction
(:func:`sigprop.theory.rainbow.check_rainbow_arguments`); :func:`~sigprop.kernels.simulate` then only checks that
its dimension matches the inputs ``X``.

Examples
--------
>>> import numpy as np
>>> cov = RainbowCovariance(2.0, a=[2.0], b=[[1.0]], anchors=[[0.0, 1.0]])
>>> cov.depth, cov.n_anchors, cov.b.shape
(2, 1, (1, 1))
>>> RainbowCovariance.from_settings(cov.to_settings()) == cov
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sigprop.theory.arguments import real_array
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import check_rainbow_arguments

__all__ = ["RainbowCovariance", "covariance_from_settings", "check_covariance_argument"]

# L = len(a) + 1 hidden layers, at most simulate's 2^24 - 2 (the random generator's range of layers)
_MAX_DEPTH = 2**24 - 2


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, order="C")  # a copy: the caller's array may change, this one does not
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class RainbowCovariance:
    """The rainbow weight-covariance model (module docstring), checked at construction.

    Parameters
    ----------
    C1 : float or array_like
        First-layer covariance shape: a scalar ``c >= 0`` (``c I``) or a ``(d, d)`` symmetric PSD matrix; the rows
        of the first weight matrix are ``N(0, C1 / d)``.
    a : array_like
        ``(L - 1,)`` white parts ``a_2..a_L >= 0`` of the hidden layers 2..L (empty for one layer), so the network
        has ``depth = len(a) + 1`` hidden layers.
    b : array_like, optional
        ``(L - 1, m)`` anchor weights ``b_lk >= 0``; default zeros.
    anchors : array_like, optional
        ``(m, d)`` anchor inputs; default none (``m = 0``).

    Attributes
    ----------
    C1 : float or numpy.ndarray
        As given (a read-only float64 copy of a matrix; not symmetrised).
    a, b : numpy.ndarray
        Read-only float64 ``(L - 1,)`` and ``(L - 1, m)``.
    anchors : numpy.ndarray or None
        Read-only float64 ``(m, d)``, or None when ``m = 0``.

    Raises
    ------
    InputError, InputTypeError
        As :func:`sigprop.theory.rainbow.rainbow_kernels`, naming the argument: ``C1`` not symmetric PSD beyond
        rounding (with its most negative eigenvalue), negative or non-finite ``a``/``b``, ``b`` not
        ``(len(a), m)``, ``anchors`` and a matrix ``C1`` of different dimensions, more than ``2^24 - 3`` entries
        of ``a``.

    Examples
    --------
    >>> cov = RainbowCovariance(1.0, [1.0, 0.5])
    >>> cov.depth, cov.anchors is None, cov.b.shape
    (3, True, (2, 0))
    """

    C1: float | np.ndarray
    a: np.ndarray
    b: np.ndarray | None = None
    anchors: np.ndarray | None = None

    def __post_init__(self) -> None:
        who = "RainbowCovariance"
        Z = None
        if self.anchors is not None and np.size(self.anchors):
            Z = real_array(self.anchors, "anchors", who, 2)
        if Z is not None:
            d = Z.shape[1]
        elif np.ndim(self.C1) == 2:
            d = int(np.shape(self.C1)[0])
        else:
            d = 1  # a scalar C1 and no anchors: any input dimension
        if np.ndim(self.a) == 1 and np.size(self.a) + 1 > _MAX_DEPTH:
            raise InputError(f"{who}: a must have at most {_MAX_DEPTH - 1} entries (L = len(a) + 1 hidden layers, "
                             f"at most 2^24 - 2, the random generator's range of layers), got {np.size(self.a)}")
        _, C1, a, b, _, _ = check_rainbow_arguments(np.zeros((1, d)), self.C1, self.a, self.b, Z, 0.0, who)
        object.__setattr__(self, "C1", C1 if np.ndim(C1) == 0 else _read_only(C1))
        object.__setattr__(self, "a", _read_only(a))
        object.__setattr__(self, "b", _read_only(b))
        object.__setattr__(self, "anchors", None if Z is None else _read_only(Z))

    @property
    def depth(self) -> int:
        """``L = len(a) + 1``, the number of hidden layers of the model."""
        return int(self.a.size) + 1

    @property
    def n_anchors(self) -> int:
        """``m``, the number of anchors (their rows follow the ``P`` inputs in the Gram matrices)."""
        return 0 if self.anchors is None else int(self.anchors.shape[0])

    def check_inputs(self, n0: int, who: str = "simulate") -> None:
        """An :class:`InputError` naming ``covariance`` when the model's dimension is not the inputs' ``n0``."""
        if np.ndim(self.C1) == 2 and self.C1.shape[0] != n0:
            raise InputError(f"{who}: covariance.C1 must be ({n0}, {n0}) for inputs X of dimension n_0 = {n0}, "
                             f"got shape {self.C1.shape}")
        if self.anchors is not None and self.anchors.shape[1] != n0:
            raise InputError(f"{who}: covariance.anchors must have the input dimension n_0 = {n0} columns, got "
                             f"shape {self.anchors.shape}")

    def rows(self, X: np.ndarray) -> np.ndarray:
        """``Y = [X; anchors]``, the ``(P + m, d)`` points a simulation propagates (anchors last)."""
        Z = np.zeros((0, X.shape[1])) if self.anchors is None else self.anchors
        return np.concatenate([X, Z], axis=0)

    def to_settings(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``model``, ``C1``, ``a``, ``b``, ``anchors``); :meth:`from_settings` reads it."""
        return {"model": "rainbow", "C1": self.C1 if np.ndim(self.C1) == 0 else self.C1.tolist(),
                "a": self.a.tolist(), "b": self.b.tolist(),
                "anchors": None if self.anchors is None else self.anchors.tolist()}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> RainbowCovariance:
        """The object :meth:`to_settings` described (floats round-trip exactly through JSON)."""
        if not isinstance(settings, dict) or settings.get("model") != "rainbow":
            raise InputError(f"RainbowCovariance.from_settings: settings must be a dict with model 'rainbow', got "
                             f"{settings!r:.80}")
        b = np.array(settings["b"], dtype=np.float64).reshape(len(settings["a"]), -1)  # (L - 1, 0) survives
        return cls(settings["C1"], settings["a"], b, settings["anchors"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RainbowCovariance):
            return NotImplemented
        same = [np.array_equal(u, v) for u, v in ((self.C1, other.C1), (self.a, other.a), (self.b, other.b))]
        anchors = (self.anchors is None and other.anchors is None) or (
            self.anchors is not None and other.anchors is not None and np.array_equal(self.anchors, other.anchors))
        return all(same) and np.ndim(self.C1) == np.ndim(other.C1) and anchors

    __hash__ = None  # type: ignore[assignment]  # holds arrays

    def __repr__(self) -> str:
        c1 = f"{self.C1!r}" if np.ndim(self.C1) == 0 else f"<{self.C1.shape[0]}x{self.C1.shape[1]} matrix>"
        return f"RainbowCovariance(C1={c1}, a={self.a.tolist()}, n_anchors={self.n_anchors})"


def covariance_from_settings(settings: dict[str, Any] | None) -> RainbowCovariance | None:
    """The covariance of a result's ``settings["covariance"]`` (as :func:`sigprop.kernels.load_npz` reads it):
    None for the i.i.d. model.

    Examples
    --------
    >>> covariance_from_settings(None) is None
    True
    """
    if settings is None:
        return None
    return RainbowCovariance.from_settings(settings)


def check_covariance_argument(covariance, who: str = "simulate") -> RainbowCovariance | None:
    """``covariance`` if it is None or a :class:`RainbowCovariance`, else an :class:`InputTypeError` naming it."""
    if covariance is None or isinstance(covariance, RainbowCovariance):
        return covariance
    raise InputTypeError(f"{who}: covariance must be None (i.i.d. weights of variance C_W / n) or a "
                         f"RainbowCovariance, got {type(covariance).__name__}")
