"""One convention for statistics that leave float64's normal range, shared by every method and backend.

:func:`sigprop.kernels.simulate` applies :func:`check_statistics` once per run to the outputs of whichever method
(``gram``, ``explicit``, ``numpy``) and backend ran them, so all of them follow the same rules and a run gives at
most one warning of each kind.  (The engines themselves return their raw numbers, which the tests compare with
each other: e.g. ``explicit`` with the NumPy reference.)

- **Overflow** (or 0/0, e.g. normalising a zero-variance column): a network's statistics are NaN, never inf or
  a mix, from the first non-finite one on, in the order the network computes them: layer by layer, first the
  pre-activation statistics (``preact_gram``, ``preact_m2``, ``preact_m4``, all of the same ``z``, so NaN together),
  then ``postact_gram``.  (Pre-activation statistics computed before an overflow of the post-activations of the
  same layer keep their values; NaN from a 0/0 propagates this way by itself.)  Its backward statistics
  (``backward_gram``, ``tangent_gram``) are then NaN at every layer (the backward pass starts after the
  overflow); without a forward overflow, they are NaN from the highest layer with a non-finite one down (the
  backward pass runs from the last layer to the first).  Warns :class:`SimulationOverflowWarning`.
- **Underflow**: a statistic below the smallest normal double (:data:`DBL_MIN`, 2.2e-308) in magnitude is
  subnormal (it has lost its relative precision) and is set to 0, as the ``gram`` method's factorisation takes
  a covariance with every entry below :data:`DBL_MIN` as rank 0 (:func:`gram_device.factor_psd`): once the
  variance underflows the chain stays at 0 (for ``phi(0) = 0`` and ``C_b = 0``).  Also counted as underflow: a
  fourth moment 0 next to a non-zero second moment, and a zero pre-activation Gram matrix although its layer's
  covariance ``C_b + C_W H`` is not zero.  Warns :class:`SimulationUnderflowWarning`.

Exact zeros (a dead ReLU layer, zero inputs) are not underflow and are left alone.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["DBL_MIN", "SimulationOverflowWarning", "SimulationUnderflowWarning", "RangeReport", "check_statistics",
           "FORWARD_FIELDS", "BACKWARD_FIELDS"]

DBL_MIN: float = float(np.finfo(np.float64).tiny)  # 2^-1022, the smallest normal float64

FORWARD_FIELDS: tuple[str, ...] = ("preact_gram", "postact_gram", "preact_m2", "preact_m4")
BACKWARD_FIELDS: tuple[str, ...] = ("backward_gram", "tangent_gram")


class SimulationOverflowWarning(RuntimeWarning):
    """Some networks' statistics became inf/NaN (overflow, or 0/0); they are NaN from that layer on."""


class SimulationUnderflowWarning(RuntimeWarning):
    """Some networks' statistics fell below the smallest normal float64; they are reported as 0."""


@dataclass(frozen=True)
class RangeReport:
    """What :func:`check_statistics` found: numbers of networks and the first layer (0-based array index, None
    if none) with an overflow / underflow, the statistic in which the earliest one was seen, and the first layer
    at which a Gram matrix (not just a fourth moment, which underflows at about the square root of the
    variance's threshold) underflowed."""

    n_networks: int
    overflow_networks: int
    overflow_layer: int | None
    overflow_field: str | None
    underflow_networks: int
    underflow_layer: int | None
    underflow_field: str | None
    gram_underflow_layer: int | None


def _per_layer(a: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(S, L) reduction of an elementwise mask of an (S, L, ...) array: any over the trailing axes."""
    return mask.any(axis=tuple(range(2, mask.ndim)))


def _first_layer(flags: dict[str, np.ndarray]) -> tuple[np.ndarray, int | None, str | None]:
    """Per network the first flagged layer (L if none), the earliest of all and the field flagged there first."""
    any_flag = np.logical_or.reduce(list(flags.values()))
    S, L = any_flag.shape
    first = np.where(any_flag.any(axis=1), any_flag.argmax(axis=1), L)
    if not any_flag.any():
        return first, None, None
    layer = int(first.min())
    field = next(name for name, f in flags.items() if f[:, layer].any())
    return first, layer, field


def _overflow(out: dict[str, np.ndarray]) -> tuple[int, int | None, str | None]:
    pre_fields = ("preact_gram", "preact_m2", "preact_m4")
    S, L = out["preact_gram"].shape[:2]
    # stages in the order a network computes them: 2l = layer l's pre-activation statistics (one z), 2l+1 = its
    # post-activation Gram matrix; NaN from the first stage with a non-finite statistic on
    bad_pre = {k: _per_layer(out[k], ~np.isfinite(out[k])) for k in pre_fields}
    bad_post = _per_layer(out["postact_gram"], ~np.isfinite(out["postact_gram"]))
    stages = np.empty((S, 2 * L), dtype=bool)
    stages[:, 0::2] = np.logical_or.reduce(list(bad_pre.values()))
    stages[:, 1::2] = bad_post
    first = np.where(stages.any(axis=1), stages.argmax(axis=1), 2 * L)
    for k in pre_fields:
        out[k][np.arange(L)[None, :] >= (first[:, None] + 1) // 2] = np.nan
    out["postact_gram"][np.arange(L)[None, :] >= first[:, None] // 2] = np.nan
    layer = field = None
    if (first < 2 * L).any():
        f = int(first.min())
        layer = f // 2
        field = ("postact_gram" if f % 2 else
                 next(k for k in pre_fields if bad_pre[k][:, layer][first == f].any()))
    bad = first < 2 * L
    bwd = {k: out[k] for k in BACKWARD_FIELDS if out.get(k) is not None}
    if bwd:
        # the backward pass runs from layer L-1 down to 0 and starts after the forward pass: NaN from the highest
        # non-finite layer down, and at every layer after a forward overflow
        flags = {k: _per_layer(a, ~np.isfinite(a))[:, ::-1] for k, a in bwd.items()}
        top, btop, bfield = _first_layer(flags)
        top = np.where(bad, L - 1, L - 1 - top)  # top = -1: no backward overflow
        lower = np.arange(L)[None, :] <= top[:, None]
        for a in bwd.values():
            a[lower] = np.nan
        if layer is None and btop is not None:
            layer, field = L - 1 - btop, bfield
        bad = bad | (top >= 0)
    return int(bad.sum()), layer, field


def _underflow(out: dict[str, np.ndarray], G0: np.ndarray, C_b: float) -> tuple[int, int | None, str | None,
                                                                                int | None]:
    fields = [k for k in FORWARD_FIELDS + BACKWARD_FIELDS if out.get(k) is not None]
    pre, post = out["preact_gram"], out["postact_gram"]
    S, L = pre.shape[:2]
    # the layer covariance C_b + C_W H is non-zero if C_b > 0 or its H (G0, then the previous post Gram) is
    prev_nonzero = np.empty((S, L), dtype=bool)
    prev_nonzero[:, 0] = bool(np.any(G0 != 0))
    prev_nonzero[:, 1:] = _per_layer(post[:, :-1], post[:, :-1] != 0)
    flags = {}
    for k in fields:
        a = out[k]
        flags[k] = _per_layer(a, (a != 0) & (np.abs(a) < DBL_MIN))
    flags["preact_m4"] = flags["preact_m4"] | _per_layer(out["preact_m4"], (out["preact_m4"] == 0)
                                                         & (out["preact_m2"] != 0))
    zero_pre = ~_per_layer(pre, pre != 0)  # all entries exactly 0 (NaN counts as non-zero)
    flags["preact_gram"] = flags["preact_gram"] | (zero_pre & ((C_b > 0) | prev_nonzero))
    first, layer, field = _first_layer(flags)
    gram_layer = _first_layer({k: flags[k] for k in ("preact_gram", "postact_gram")})[1]
    for k in fields:
        a = out[k]
        a[(a != 0) & (np.abs(a) < DBL_MIN)] = 0.0
    return int((first < L).sum()), layer, field, gram_layer


def check_statistics(out: dict[str, np.ndarray], X: np.ndarray, C_b: float, method: str, warn: bool = True,
                     stacklevel: int = 2) -> RangeReport:
    """Apply the overflow and underflow conventions (module docstring) to ``out`` in place, and warn.

    Parameters
    ----------
    out : dict of str to ndarray
        An engine's statistics: ``preact_gram``, ``postact_gram`` (S, L, P, P), ``preact_m2``, ``preact_m4``
        (S, L, P), optionally ``backward_gram``, ``tangent_gram`` (S, L, P, P) (absent or None when not computed).
        Modified in place (float64, writable).
    X : ndarray
        The inputs (P, n_0), for the first layer's input covariance ``X X^T / n_0``.
    C_b : float
        The bias variance (a layer covariance with ``C_b > 0`` is never zero).
    method : str
        Named in the warnings.
    warn : bool, optional
        Issue at most one :class:`SimulationOverflowWarning` and one :class:`SimulationUnderflowWarning`.
    stacklevel : int, optional
        Of the warnings, counted from the caller of this function (2: the caller's caller).

    Returns
    -------
    RangeReport
        What was found (layers as 0-based array indices; hidden layer = index + 1).
    """
    for k in FORWARD_FIELDS:
        if k not in out:
            raise KeyError(f"out must hold the forward statistics {FORWARD_FIELDS}, missing {k!r}")
    X = np.asarray(X, dtype=np.float64)
    G0 = X @ X.T / X.shape[1]
    S = out["preact_gram"].shape[0]
    n_over, lo, fo = _overflow(out)
    n_under, lu, fu, lg = _underflow(out, G0, C_b)
    rep = RangeReport(S, n_over, lo, fo, n_under, lu, fu, lg)
    if warn:
        warn_range(rep, method, stacklevel=stacklevel + 1)
    return rep


def warn_range(rep: RangeReport, method: str, stacklevel: int = 2) -> None:
    """The warnings for a :class:`RangeReport` (none if nothing was found)."""
    if rep.overflow_networks:
        warnings.warn(
            f"{method} method: {rep.overflow_networks} of {rep.n_networks} network(s) reached non-finite statistics "
            f"(overflow, or 0/0 from normalising a zero-variance column), first at hidden layer "
            f"{rep.overflow_layer + 1} ({rep.overflow_field}); their statistics are NaN from there on",
            SimulationOverflowWarning, stacklevel=stacklevel + 1)
    if rep.underflow_networks:
        gram = ("" if rep.gram_underflow_layer is None else
                f"; Gram matrices from hidden layer {rep.gram_underflow_layer + 1}")
        warnings.warn(
            f"{method} method: statistics of {rep.underflow_networks} of {rep.n_networks} network(s) underflowed "
            f"below the smallest normal float64 ({DBL_MIN:.3g}), first at hidden layer {rep.underflow_layer + 1} "
            f"({rep.underflow_field}){gram}; they are reported as 0 (an underflowed covariance has rank 0)",
            SimulationUnderflowWarning, stacklevel=stacklevel + 1)
