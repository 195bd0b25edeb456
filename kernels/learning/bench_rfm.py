"""Benchmark of the Recursive Feature Machine (``sigprop bench --only rfm``): :func:`run_benchmarks`.

RFM fit time at the issue's size: N = 2000, d = 64, 5 iterations (goal < 5 s on a 2-core CPU); teacher
``y = x1 x2`` with ``x ~ N(0, I)``, Laplace bandwidth 10, reg 1e-3, float64.  Rows as in docs/conventions.md.
"""
from __future__ import annotations

import time

import numpy as np

from sigprop.theory.bench import check_profile

from . import rfm

__all__ = ["run_benchmarks", "N", "D"]

N, D = 2000, 64  # samples and input dimension of the benchmark fit


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Wall time of :func:`sigprop.kernels.learning.rfm.rfm` (5 iterations) with the default and with one BLAS thread.

    On a busy 2-core machine the default BLAS threads can be several times slower than one, so both are timed.
    ``'full'`` adds a 10-output fit (one-hot classification over deciles of ``x1 x2``: 10 gradient GEMMs per AGOP)
    on one BLAS thread.  The note gives the share of ``tr(M)`` on ``span(e1, e2)``, the teacher's subspace.

    Parameters
    ----------
    profile : {'quick', 'full'}
        'quick': two rows (one output, default and one BLAS thread); 'full': also the 10-class fit.

    Returns
    -------
    list of dict
        Rows ``{"benchmark", "metric", "value", "unit", "note"}`` with the wall time in s.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> run_benchmarks("slow")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: profile must be 'quick' or 'full', got 'slow'
    """
    from threadpoolctl import threadpool_limits

    check_profile(profile, who=None)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D))
    prod = X[:, 0] * X[:, 1]
    cases = [("1 output", prod, None), ("1 output", prod, 1)]
    if profile == "full":
        cases.append(("10 classes", np.digitize(prod, np.quantile(prod, np.linspace(0.1, 0.9, 9))), 1))
    rows = []
    for name, y, threads in cases:
        with threadpool_limits(threads, user_api="blas"):
            t0 = time.perf_counter()
            res = rfm.rfm(X, y, iters=5)  # looked up in the module (a test swaps in a small fit)
            dt = time.perf_counter() - t0
        frac = float((res.M[0, 0] + res.M[1, 1]) / np.trace(res.M))
        label = "default BLAS threads" if threads is None else "BLAS 1 thread"
        rows.append({"benchmark": f"RFM fit, N={N}, d={D}, {name}, 5 iterations ({label})", "metric": "wall time",
                     "value": dt, "unit": "s",
                     "note": f"target < 5 s on 2 cores; 6 kernel solves + 5 AGOPs, float64; share of tr(M) on "
                             f"span(e1, e2) {frac:.3f}"})
    return rows
