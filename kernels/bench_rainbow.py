"""Benchmark of the rainbow engines (``sigprop bench --only rainbow``): :func:`run_benchmarks`.

On one workload (``P = 32`` inputs and ``m = 8`` anchors, ``d = 64``, depth 4, width 512 (``'full'``: also 1024),
32 networks) it times :func:`sigprop.kernels.simulate` with a rainbow covariance
(:class:`~sigprop.kernels.covariance.RainbowCovariance`): covariance weights (a full-rank ``C_1``, ``a = 1``,
``b = 0.5``) against white weights (``C_1 = I``, ``b = 0``), alternating runs in one process, and then the three
engines (``method='numpy'``, ``'explicit'``, ``'gram'``) side by side.  Rows as in docs/conventions.md;
docs/rainbow.md and docs/benchmarks.md record the figures.
"""
from __future__ import annotations

import math
import time

import numpy as np

from sigprop.theory.bench import check_profile
from sigprop.theory.errors import InputError

from .covariance import RainbowCovariance
from .rainbow import BACKENDS
from .simulate import simulate

__all__ = ["run_benchmarks", "PROBLEM", "PROFILES"]

PROBLEM = (32, 8, 64, 4, 32)  # P inputs, m anchors, input dimension d, depth L, S networks
PROFILES: dict[str, tuple[tuple[int, ...], int]] = {"quick": ((512,), 3), "full": ((512, 1024), 7)}  # widths, repeats


def _bench_problem(P: int, m: int, d: int):
    """Inputs, anchors and a full-rank ``C_1`` (trace ``d``) for :func:`run_benchmarks`."""
    rng = np.random.default_rng(0)
    X, Z = rng.standard_normal((P, d)), rng.standard_normal((m, d))
    A = rng.standard_normal((d, d))
    C1 = A @ A.T / d + 0.5 * np.eye(d)
    return X, Z, C1 * d / np.trace(C1)


def _run(X, Z, c1, b, n: int, L: int, S: int, method: str = "numpy", backend: str = "cpu") -> None:
    """One timed call: ``S`` relu networks of depth ``L`` and width ``n`` with ``a = 1``, on ``X`` and anchors ``Z``."""
    simulate(X, depth=L, width=n, activation="relu", covariance=RainbowCovariance(c1, [1.0] * (L - 1), b, Z),
             n_networks=S, seed=1, method=method, backend=backend)


def _time_pair(cases: dict, X, Z, n: int, L: int, S: int, repeats: int) -> dict[str, float]:
    """Best wall time of each case, the cases run alternately ``repeats`` times (load changes hit both alike)."""
    best = {k: math.inf for k in cases}
    for _ in range(repeats):
        for name, (c1, b) in cases.items():
            t0 = time.perf_counter()
            _run(X, Z, c1, b, n, L, S)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _time_engines(cases: dict, X, Z, n: int, L: int, S: int, repeats: int, backend: str) -> dict[str, float]:
    """Best wall time of each ``(method, C_1, b)`` case, run alternately ``repeats`` times after one warm-up run
    each (which compiles the kernels: compilation is not timed)."""
    def run(method: str, c1, b, networks: int) -> None:
        _run(X, Z, c1, b, n, L, networks, method, "cpu" if method == "numpy" else backend)

    for method, c1, b in cases.values():
        run(method, c1, b, 1)
    best = {k: math.inf for k in cases}
    for _ in range(repeats):
        for name, (method, c1, b) in cases.items():
            t0 = time.perf_counter()
            run(method, c1, b, S)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _engine_rows(X, Z, C1, n: int, L: int, S: int, repeats: int, backend: str) -> list[dict]:
    """numpy vs explicit vs gram (covariance weights) and, per compiled engine, covariance vs white weights."""
    import numba
    from threadpoolctl import threadpool_limits

    m = Z.shape[0]
    cov, white = (C1, np.full((L - 1, m), 0.5)), (1.0, np.zeros((L - 1, m)))
    cases = {"numpy": ("numpy", *cov)}
    for method in ("explicit", "gram"):
        cases[method] = (method, *cov)
        cases[f"{method} white"] = (method, *white)
    with threadpool_limits(1, user_api="blas"):  # NumPy's fastest setting on a busy machine (rows above)
        best = _time_engines(cases, X, Z, n, L, S, repeats, backend)
    size = f"P={X.shape[0]} inputs + m={m} anchors, d={X.shape[1]}, depth {L}, n={n}, {S} networks"
    where = {"numpy": "NumPy float64, CPU, BLAS 1 thread",
             "explicit": f"compiled, {backend}" + (f", {numba.get_num_threads()} numba threads" if backend == "cpu"
                                                   else ""),
             "gram": f"compiled, {backend}" + (f", {numba.get_num_threads()} numba threads" if backend == "cpu"
                                               else "")}
    rows = []
    for method in ("numpy", "explicit", "gram"):
        rows.append({"benchmark": f"rainbow engines, covariance weights, {size}: {method}",
                     "metric": "layer-samples/s", "value": L * S / best[method], "unit": "1/s",
                     "note": f"best of {repeats} ({best[method]:.3f} s), {where[method]}; compile excluded"})
    for method in ("explicit", "gram"):
        rows.append({"benchmark": f"rainbow engines, {method} / numpy, {size}", "metric": "speed-up",
                     "value": best["numpy"] / best[method], "unit": "x",
                     "note": f"{where[method]} vs NumPy; measured side by side (alternating runs) in one process"})
        rows.append({"benchmark": f"rainbow engines, {method}: covariance / white, {size}", "metric": "cost ratio",
                     "value": best[method] / best[f"{method} white"], "unit": "x",
                     "note": f"target < 1.5x; {where[method]}; alternating runs"})
    return rows


def run_benchmarks(profile: str = "quick", backend: str = "cpu") -> list[dict]:
    """Covariance-weight simulation against the white one, side by side: cost ratio at ``m = 8`` anchors, ``n = 512``;
    and the three engines (``method='numpy'``, ``'explicit'``, ``'gram'``) side by side.

    Both simulate ``P = 32`` inputs and the ``m = 8`` anchors (``N = 40`` rows), ``d = 64``, depth 4, width 512, 32
    networks, with the same :func:`simulate` (a rainbow covariance): *covariance* has a full-rank ``C_1``, ``a = 1``
    and anchor weights ``b = 0.5``; *white* has ``C_1 = I`` (scalar 1), ``a = 1``, ``b = 0`` (so no anchor
    coefficients are drawn).  The two are timed alternately, ``repeats`` times each, with the default BLAS threads
    and with one BLAS thread (small GEMMs on a busy 2-core machine suffer from thread contention); the best of each
    is reported with
    the ratio (target under 1.5x).  ``'full'`` also times width 1024.

    Then, on the same problem, the NumPy reference (one BLAS thread), the compiled explicit engine and the Gram chain
    (numba's default threads) with covariance weights, and each compiled engine with white weights, timed
    alternately after one warm-up run each (compilation not timed): layer-samples per second (layers times networks
    per second of wall time), the speed-ups over NumPy and each compiled engine's covariance / white cost ratio.

    Parameters
    ----------
    profile : {'quick', 'full'}
        ``'quick'``: width 512, 3 repeats; ``'full'``: widths 512 and 1024, 7 repeats.
    backend : {'cpu', 'cuda'}
        Where the compiled engines run (the NumPy rows always run on the CPU).

    Returns
    -------
    list of dict
        Rows ``{"benchmark", "metric", "value", "unit", "note"}``: per width and thread setting the white and
        covariance wall times and their ratio; per width the engines' rates, speed-ups and cost ratios.

    Raises
    ------
    InputError
        An unknown profile or backend; ``backend='cuda'`` without a GPU.

    Examples
    --------
    >>> run_benchmarks("slow")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: profile must be 'quick' or 'full', got 'slow'
    """
    from threadpoolctl import threadpool_limits

    check_profile(profile, who=None)
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "cuda":
        from .backend import cuda_available

        if not cuda_available():
            raise InputError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False)")
    widths, repeats = PROFILES[profile]
    P, m, d, L, S = PROBLEM
    X, Z, C1 = _bench_problem(P, m, d)
    cases = {"white": (1.0, np.zeros((L - 1, m))), "covariance": (C1, np.full((L - 1, m), 0.5))}
    rows = []
    for n in widths:
        for threads in (None, 1):
            with threadpool_limits(threads, user_api="blas"):
                best = _time_pair(cases, X, Z, n, L, S, repeats)
            size = (f"P={P} inputs + m={m} anchors, d={d}, depth {L}, n={n}, {S} networks "
                    f"({'default BLAS threads' if threads is None else 'BLAS 1 thread'})")
            for name in cases:
                rows.append({"benchmark": f"rainbow simulation, {name} weights, {size}", "metric": "wall time",
                             "value": best[name], "unit": "s", "note": f"best of {repeats}, NumPy float64"})
            rows.append({"benchmark": f"rainbow simulation, covariance / white, {size}", "metric": "cost ratio",
                         "value": best["covariance"] / best["white"], "unit": "x",
                         "note": "target < 1.5x; measured side by side (alternating runs) in one process"})
        rows += _engine_rows(X, Z, C1, n, L, S, repeats, backend)
    return rows
