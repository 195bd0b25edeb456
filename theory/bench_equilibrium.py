"""Benchmark of the equilibrium layer (``sigprop bench --only equilibrium``): :func:`run_benchmarks`.

Times :func:`sigprop.theory.equilibrium.equilibrium_layer` for ReLU at depth ``L = 10^5`` and ``10^6`` (``'full'``
adds ``10^7``), after one call at ``L = 10`` that compiles the numba gap recursion; the goal is under 10 s at
``L = 10^6``.  Rows ``{"benchmark", "metric", "value", "unit", "note"}`` as in docs/conventions.md.
"""
from __future__ import annotations

import time

from .bench import check_profile
from .equilibrium import equilibrium_layer

__all__ = ["run_benchmarks", "DEPTHS"]

DEPTHS: dict[str, tuple[int, ...]] = {"quick": (10 ** 5, 10 ** 6), "full": (10 ** 5, 10 ** 6, 10 ** 7)}


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Wall time of ``equilibrium_layer(L)`` (ReLU, rho0 = 0) at each depth of ``DEPTHS[profile]``.

    Parameters
    ----------
    profile : {'quick', 'full'}
        Which depths to time (:data:`DEPTHS`).

    Returns
    -------
    list of dict
        One row per depth: ``benchmark`` ``equilibrium_layer(L=...)``, metric ``wall time`` in s, and the layer
        ``l*`` found in the note.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> run_benchmarks("slow")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: run_benchmarks: profile must be 'quick' or 'full', got 'slow'
    """
    check_profile(profile)
    equilibrium_layer(10)  # compile
    rows = []
    for L in DEPTHS[profile]:
        t0 = time.perf_counter()
        layer = equilibrium_layer(L)
        dt = time.perf_counter() - t0
        rows.append({"benchmark": f"equilibrium_layer(L={L})", "metric": "wall time", "value": dt, "unit": "s",
                     "note": f"l* = {layer}; target < 10 s at L = 10^6"})
    return rows
