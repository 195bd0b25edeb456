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

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

__all__ = ["DBL_MIN", "SimulationOverflowWarning", "SimulationUnderflowWarning", "RangeReport", "check_statistics",
           "FORWARD_FIELDS", "BACKWARD_FIELDS"]

DBL_MIN: float = float(np.finfo(np.float64).tiny)  # 2^-1022, the smallest normal float64
_DBL_MAX: float = float(np.finfo(np.float64).max)

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


@numba.njit(cache=True)
def _scan_layers(a, flags):  # pragma: no cover - compiled
    """One pass over ``a`` (S, L, K): per (network, layer) whether any entry is non-finite, subnormal, non-zero
    (``flags[0]``, ``flags[1]``, ``flags[2]``, each (S, L))."""
    S, L, K = a.shape
    for s in range(S):
        for l in range(L):
            bad = sub = nz = 0  # counts, which the compiler vectorises
            for k in range(K):
                x = abs(a[s, l, k])
                bad += not (x <= _DBL_MAX)  # inf or NaN
                nz += x != 0
                sub += (x != 0) & (x < DBL_MIN)
            flags[0, s, l], flags[1, s, l], flags[2, s, l] = bad > 0, sub > 0, nz > 0


@numba.njit(cache=True)
def _scan_zero_beside_nonzero(a, b, found):  # pragma: no cover - compiled
    """Per (network, layer) of ``a``, ``b`` (S, L, K): whether some entry has ``a == 0`` and ``b != 0``."""
    S, L, K = a.shape
    for s in range(S):
        for l in range(L):
            n = 0
            for k in range(K):
                n += (a[s, l, k] == 0) & (b[s, l, k] != 0)
            found[s, l] = n > 0


class _Layers(NamedTuple):
    """Per (network, layer) facts of one statistic (S, L, ...): any entry non-finite, subnormal, non-zero (NaN
    counts as non-zero)."""

    nonfinite: np.ndarray
    subnormal: np.ndarray
    nonzero: np.ndarray


def _as_layers(a: np.ndarray) -> np.ndarray:
    """``a`` (S, L, ...) as a C-contiguous float64 (S, L, K) array (a view where possible, else a copy)."""
    return np.ascontiguousarray(a, dtype=np.float64).reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def _scan(a: np.ndarray) -> _Layers:
    """The :class:`_Layers` of ``a`` (S, L, ...), from one pass over it."""
    flags = np.empty((3,) + a.shape[:2], dtype=np.bool_)
    _scan_layers(_as_layers(a), flags)
    return _Layers(*flags)


def _layers(out: dict[str, np.ndarray], key: str, facts: dict[str, _Layers]) -> _Layers:
    """The :class:`_Layers` of ``out[key]``, kept in ``facts`` until the arrays change (the caller clears it)."""
    if key not in facts:
        facts[key] = _scan(out[key])
    return facts[key]


def _zero_beside_nonzero(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(S, L): whether some entry of a layer has ``a == 0`` next to ``b != 0`` (elementwise, broadcast)."""
    a, b = np.broadcast_arrays(a, b)
    found = np.empty(a.shape[:2], dtype=np.bool_)
    _scan_zero_beside_nonzero(_as_layers(a), _as_layers(b), found)
    return found


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


def _overflow(out: dict[str, np.ndarray], facts: dict[str, _Layers]) -> tuple[int, int | None, str | None]:
    """The overflow convention on ``out`` in place (writes only to networks with a non-finite statistic); the
    number of such networks, the first layer and its field.  ``facts`` (:func:`_layers`) is cleared on a write."""
    pre_fields = ("preact_gram", "preact_m2", "preact_m4")
    S, L = out["preact_gram"].shape[:2]
    # stages in the order a network computes them: 2l = layer l's pre-activation statistics (one z), 2l+1 = its
    # post-activation Gram matrix; NaN from the first stage with a non-finite statistic on
    bad_pre = {k: _layers(out, k, facts).nonfinite for k in pre_fields}
    bad_post = _layers(out, "postact_gram", facts).nonfinite
    stages = np.empty((S, 2 * L), dtype=bool)
    stages[:, 0::2] = np.logical_or.reduce(list(bad_pre.values()))
    stages[:, 1::2] = bad_post
    first = np.where(stages.any(axis=1), stages.argmax(axis=1), 2 * L)
    bad = first < 2 * L
    layer = field = None
    if bad.any():
        for k in pre_fields:
            out[k][np.arange(L)[None, :] >= (first[:, None] + 1) // 2] = np.nan
        out["postact_gram"][np.arange(L)[None, :] >= first[:, None] // 2] = np.nan
        facts.clear()
        f = int(first.min())
        layer = f // 2
        field = ("postact_gram" if f % 2 else
                 next(k for k in pre_fields if bad_pre[k][:, layer][first == f].any()))
    bwd = {k: out[k] for k in BACKWARD_FIELDS if out.get(k) is not None}
    if bwd:
        # the backward pass runs from layer L-1 down to 0 and starts after the forward pass: NaN from the highest
        # non-finite layer down, and at every layer after a forward overflow
        flags = {k: _layers(out, k, facts).nonfinite[:, ::-1] for k in bwd}
        top, btop, bfield = _first_layer(flags)
        top = np.where(bad, L - 1, L - 1 - top)  # top = -1: no backward overflow
        if (top >= 0).any():
            lower = np.arange(L)[None, :] <= top[:, None]
            for a in bwd.values():
                a[lower] = np.nan
            facts.clear()
        if layer is None and btop is not None:
            layer, field = L - 1 - btop, bfield
        bad = bad | (top >= 0)
    return int(bad.sum()), layer, field


def _underflow(out: dict[str, np.ndarray], G0: np.ndarray, C_b: float,
               facts: dict[str, _Layers]) -> tuple[int, int | None, str | None, int | None]:
    """The underflow convention on ``out`` in place (writes only to layers with a subnormal statistic); the number
    of networks with an underflow, its first layer and field, and the first layer of a Gram matrix's underflow."""
    fields = [k for k in FORWARD_FIELDS + BACKWARD_FIELDS if out.get(k) is not None]
    pre, post = _layers(out, "preact_gram", facts), _layers(out, "postact_gram", facts)
    S, L = pre.nonzero.shape
    # the layer covariance C_b + C_W H is non-zero if C_b > 0 or its H (G0, then the previous post Gram) is
    prev_nonzero = np.empty((S, L), dtype=bool)
    prev_nonzero[:, 0] = bool(np.any(G0 != 0))
    prev_nonzero[:, 1:] = post.nonzero[:, :-1]
    subnormal = {k: _layers(out, k, facts).subnormal for k in fields}
    flags = dict(subnormal)
    flags["preact_m4"] = flags["preact_m4"] | _zero_beside_nonzero(out["preact_m4"], out["preact_m2"])
    zero_pre = ~pre.nonzero  # all entries exactly 0 (NaN counts as non-zero)
    flags["preact_gram"] = flags["preact_gram"] | (zero_pre & ((C_b > 0) | prev_nonzero))
    first, layer, field = _first_layer(flags)
    gram_layer = _first_layer({k: flags[k] for k in ("preact_gram", "postact_gram")})[1]
    for k in fields:
        if subnormal[k].any():
            a = out[k]
            x = a[subnormal[k]]
            x[(x != 0) & (np.abs(x) < DBL_MIN)] = 0.0
            a[subnormal[k]] = x
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

    Notes
    -----
    Reads each statistic once (a compiled pass giving, per network and layer, whether it has a non-finite, a
    subnormal and a non-zero entry), and again only after the overflow convention wrote NaN; writes only to the
    networks and layers where a convention applies, so a run with nothing to report is not written to.
    """
    for k in FORWARD_FIELDS:
        if k not in out:
            raise KeyError(f"out must hold the forward statistics {FORWARD_FIELDS}, missing {k!r}")
    X = np.asarray(X, dtype=np.float64)
    G0 = X @ X.T / X.shape[1]
    S = out["preact_gram"].shape[0]
    facts: dict[str, _Layers] = {}  # one pass over each statistic, repeated only after the overflow's writes
    n_over, lo, fo = _overflow(out, facts)
    n_under, lu, fu, lg = _underflow(out, G0, C_b, facts)
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
