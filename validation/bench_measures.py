"""Benchmark of the trained-network measures (``sigprop bench --only measures``): :func:`run_benchmarks`.

Times :func:`sigprop.validation.measures.agop` (plain, per-output, centred) on a standard normal Jacobian stack of
shape :data:`BENCH_SHAPE` = (N, o, n) = (2000, 10, 512).  Rows as in docs/conventions.md.
"""
from __future__ import annotations

import time

import numpy as np

from sigprop.theory.bench import check_profile

from .measures import agop

__all__ = ["run_benchmarks", "BENCH_SHAPE"]

BENCH_SHAPE = (2000, 10, 512)  # (N, o, n) of run_benchmarks


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Best wall time of :func:`~sigprop.validation.measures.agop` on a (N, o, n) Jacobian stack, three variants.

    Each variant is plain NumPy (one GEMM of ``2 N o n^2`` flops); it runs once on 10 samples first, then
    3 (``'quick'``) or 10 (``'full'``) times, and the best time is reported.

    Parameters
    ----------
    profile : {'quick', 'full'}
        Number of repeats (3 or 10).

    Returns
    -------
    list of dict
        Three rows ``{"benchmark", "metric", "value", "unit", "note"}``: ``agop``, ``agop per_output``,
        ``agop centered``, wall time in s.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> BENCH_SHAPE
    (2000, 10, 512)
    """
    check_profile(profile)
    reps = 3 if profile == "quick" else 10
    N, o, n = BENCH_SHAPE
    J = np.random.default_rng(0).standard_normal((N, o, n))
    rows = []
    for label, kw in (("agop", {}), ("agop per_output", {"per_output": True}), ("agop centered", {"centered": True})):
        agop(J[:10], **kw)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            agop(J, **kw)
            times.append(time.perf_counter() - t)
        rows.append({"benchmark": f"{label}, N={N}, o={o}, n={n}", "metric": "wall time", "value": min(times),
                     "unit": "s", "note": f"float64, best of {reps}; {2 * N * o * n * n / 1e9:.1f} GFLOP as one GEMM"})
    return rows
