"""Benchmark of the Monte-Carlo NTK statistics (``sigprop bench --only ntk_mc``): :func:`run_benchmarks`.

The per-network NTK of GELU networks at the double-critical point ``(C_W, C_b) = (1.98305826, 0.17292239)``,
``P = 4`` inputs (Gram :data:`sigprop.theory.bench_ntk.GRAM`), ``L = 10`` layers of width ``n = 64``:
:func:`sigprop.kernels.simulate` (``method='explicit'``, ``backward=True``: ``tangent_gram``, the per-layer terms
of the NTK) against :func:`numpy_ntk`, a plain NumPy loop over the networks (forward ``z = W h + b`` and backward
``delta = phi'(z) o (W^T delta)`` by matrix products).  The two run alternately in one process (load changes hit
both alike), after one warm-up run each (numba compilation is not timed); each row is the median over the
repeats, in networks per second.  The Examples of :func:`numpy_ntk` (run as a doctest) check that it gives the
engine's ``tangent_gram`` to rounding on the engine's own numbers (:func:`engine_draws`).  The theory side of the NTK is
``sigprop bench --only ntk`` (:mod:`sigprop.theory.bench_ntk`).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import numpy as np

from sigprop.theory.activations import as_activation
from sigprop.theory.bench import check_profile
from sigprop.theory.bench_ntk import GELU_DOUBLE_CRITICAL, GRAM

from . import rng
from .rng_numpy import draws_numpy, normals_numpy
from .simulate import simulate

__all__ = ["run_benchmarks", "numpy_ntk", "engine_draws", "numpy_draws", "bench_inputs", "PROFILES", "PROBLEM"]

PROBLEM = (4, 10, 64)  # P inputs, L layers, width n
#: profile -> (networks per engine run, networks per NumPy run, repeats)
PROFILES: dict[str, tuple[int, int, int]] = {"quick": (256, 32, 5), "full": (4096, 256, 7)}

#: ``draw(kind, layer, rows, cols)``: unit-variance numbers for one network; kind 'W' (weights), 'b' (bias),
#: 'v' (readout).
Draw = Callable[[str, int, int, int], np.ndarray]


def bench_inputs(P: int) -> np.ndarray:
    """``X`` (P, P) with ``X X^T / P`` the leading ``P x P`` block of :data:`~sigprop.theory.bench_ntk.GRAM`."""
    return math.sqrt(P) * np.linalg.cholesky(GRAM[:P, :P])


def engine_draws(seed: int, net: int) -> Draw:
    """The explicit engine's numbers for network ``net`` (the NumPy twin of its generator)."""
    stream = {"W": rng.STREAM_WEIGHTS, "b": rng.STREAM_BIAS, "v": rng.STREAM_READOUT}

    def draw(kind: str, layer: int, rows: int, cols: int) -> np.ndarray:
        if kind == "W":
            return draws_numpy("gaussian", seed, stream[kind], net, layer, rows, cols)
        return normals_numpy(seed, stream[kind], net, layer, 1, cols)[0]
    return draw


def numpy_draws(gen: np.random.Generator) -> Draw:
    """Plain NumPy Gaussian numbers from ``gen`` (what a NumPy loop would draw)."""
    def draw(kind: str, layer: int, rows: int, cols: int) -> np.ndarray:
        return gen.standard_normal((rows, cols)) if kind == "W" else gen.standard_normal(cols)
    return draw


def numpy_ntk(X: np.ndarray, widths: tuple[int, ...], activation: str, C_W: float, C_b: float,
              draw: Draw) -> np.ndarray:
    """The NTK terms of one network, (L, P, P): ``(C_b + C_W H^(l-1)) o (delta^(l)^T delta^(l))`` (the engine's
    ``tangent_gram``, docs/conventions.md), by matrix products.

    ``W^(l) = sqrt(C_W / n_{l-1}) draw('W', l, n_l, n_{l-1})``, ``b^(l) = sqrt(C_b) draw('b', l, 1, n_l)``,
    ``z^(l) = W^(l) h^(l-1) + b^(l)``, ``h^(l) = phi(z^(l))``, ``h^(0) = x``; ``delta^(L) = v o phi'(z^(L)) /
    sqrt(n_L)`` with ``v = draw('v', L + 1, 1, n_L)``, ``delta^(l) = phi'(z^(l)) o (W^(l+1)^T delta^(l+1))``;
    ``H^(l) = h^(l)^T h^(l) / n_l``.

    Examples
    --------
    On the engine's own numbers it gives the engine's ``tangent_gram`` (to rounding):

    >>> X, (C_W, C_b) = bench_inputs(3), GELU_DOUBLE_CRITICAL
    >>> eng = simulate(X, depth=3, width=[8, 6, 5], activation="gelu", C_W=C_W, C_b=C_b, n_networks=2, seed=0,
    ...                method="explicit", backward=True).tangent_gram
    >>> loop = np.stack([numpy_ntk(X, (8, 6, 5), "gelu", C_W, C_b, engine_draws(0, s)) for s in range(2)])
    >>> loop.shape, bool(np.allclose(loop, eng, rtol=1e-12, atol=0.0))
    ((2, 3, 3, 3), True)
    """
    act = as_activation(activation)
    h, Hs, Ws, Ds = X.T, [], [], []
    for layer, n in enumerate(widths, start=1):
        n_prev = h.shape[0]
        Hs.append(h.T @ h / n_prev)
        W = math.sqrt(C_W / n_prev) * draw("W", layer, n, n_prev)
        z = W @ h
        if C_b != 0.0:
            z += math.sqrt(C_b) * draw("b", layer, 1, n)[:, None]
        Ws.append(W)
        Ds.append(act.deriv(z))
        h = act.fn(z)
    L = len(widths)
    delta = (draw("v", L + 1, 1, widths[-1]) / math.sqrt(widths[-1]))[:, None] * Ds[-1]
    out = np.empty((L, X.shape[0], X.shape[0]))
    for layer in range(L, 0, -1):
        out[layer - 1] = (C_b + C_W * Hs[layer - 1]) * (delta.T @ delta)
        if layer > 1:
            delta = Ds[layer - 2] * (Ws[layer - 1].T @ delta)
    return out


def _engine_run(X: np.ndarray, widths: tuple[int, ...], S: int) -> np.ndarray:
    C_W, C_b = GELU_DOUBLE_CRITICAL
    return simulate(X, depth=len(widths), width=list(widths), activation="gelu", C_W=C_W, C_b=C_b, n_networks=S,
                    seed=0, method="explicit", backward=True).tangent_gram


def _numpy_run(X: np.ndarray, widths: tuple[int, ...], S: int, gen: np.random.Generator) -> np.ndarray:
    C_W, C_b = GELU_DOUBLE_CRITICAL
    draw = numpy_draws(gen)
    return np.stack([numpy_ntk(X, widths, "gelu", C_W, C_b, draw) for _ in range(S)])


def _rates(X: np.ndarray, widths: tuple[int, ...], S_engine: int, S_numpy: int, repeats: int) -> dict[str, list]:
    """Networks per second of each side, run alternately ``repeats`` times after one warm-up run each."""
    gen = np.random.default_rng(0)
    _engine_run(X, widths, 2)
    _numpy_run(X, widths, 2, gen)
    rates: dict[str, list] = {"explicit": [], "numpy": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        _engine_run(X, widths, S_engine)
        rates["explicit"].append(S_engine / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        _numpy_run(X, widths, S_numpy, gen)
        rates["numpy"].append(S_numpy / (time.perf_counter() - t0))
    return rates


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Networks per second of the per-network NTK statistics: the explicit engine and a plain NumPy loop
    (:data:`PROFILES`: networks per run and repeats; :data:`PROBLEM`: P, L, n).

    Parameters
    ----------
    profile : {'quick', 'full'}
        ``'quick'``: 256 engine and 32 NumPy networks per run, 5 repeats; ``'full'``: 4096 and 256, 7 repeats.

    Returns
    -------
    list of dict
        One row per side (median networks/s) and their ratio.

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
    import numba

    S_engine, S_numpy, repeats = PROFILES[profile]
    P, L, n = PROBLEM
    widths = (n,) * L
    rates = _rates(bench_inputs(P), widths, S_engine, S_numpy, repeats)
    med = {k: statistics.median(v) for k, v in rates.items()}
    C_W, C_b = GELU_DOUBLE_CRITICAL
    size = f"gelu at ({C_W:.8f}, {C_b:.8f}), P={P}, L={L}, n={n}"
    spread = {k: f"runs {min(v):.4g}..{max(v):.4g}" for k, v in rates.items()}
    return [{"benchmark": f"per-network NTK, explicit engine (backward=True), {size}", "metric": "throughput",
             "value": med["explicit"], "unit": "networks/s",
             "note": f"median of {repeats}, {S_engine} networks per run, {numba.get_num_threads()} numba threads; "
                     f"{spread['explicit']}"},
            {"benchmark": f"per-network NTK, plain NumPy loop (matrix products), {size}", "metric": "throughput",
             "value": med["numpy"], "unit": "networks/s",
             "note": f"median of {repeats}, {S_numpy} networks per run, interleaved with the engine; "
                     f"{spread['numpy']}"},
            {"benchmark": f"per-network NTK, explicit engine / NumPy loop, {size}", "metric": "speed-up",
             "value": med["explicit"] / med["numpy"], "unit": "x", "note": "ratio of the medians"}]
