"""Benchmarks of the trainer (``sigprop bench --only training``): :func:`run_benchmarks`.

Training throughput of :func:`sigprop.kernels.training.train` on the equilibrium experiment's network (depth 100,
width 256, ReLU, 1000 digits, batch 32, float64, the trainer's default of one BLAS thread; the tangent-alignment
measure runs once, before training, on 20 samples), and the time of all 100 per-layer tangent-kernel alignments
(:func:`~sigprop.kernels.training.layer_alignments`, N = 100, o = 10).  Rows as in docs/conventions.md.
"""
from __future__ import annotations

import time

from sigprop.theory.errors import InputError

from .datasets import load_digits_data
from .training import TangentAlignment, init_mlp, layer_alignments, one_hot, train

__all__ = ["run_benchmarks", "EPOCHS"]

EPOCHS: dict[str, int] = {"quick": 2, "full": 50}  # epochs timed per profile (quick: extrapolated to 50)


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Seconds per training epoch, 50 epochs (extrapolated from ``EPOCHS[profile]``), and the alignment time.

    Parameters
    ----------
    profile : {'quick', 'full'}
        'quick' trains 2 epochs and extrapolates to 50; 'full' trains 50.

    Returns
    -------
    list of dict
        Three rows ``{"benchmark", "metric", "value", "unit", "note"}``: seconds per epoch, 50 epochs (goal
        < 300 s on 2 cores), and the wall time of the 100 per-layer alignments.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> EPOCHS["quick"], EPOCHS["full"]
    (2, 50)
    """
    if profile not in EPOCHS:
        raise InputError(f"run_benchmarks: profile must be 'quick' or 'full', got {profile!r}")
    X, y = load_digits_data(1000, seed=0)
    epochs = EPOCHS[profile]
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    # as the equilibrium experiment: the alignment measure runs once, before training (20 samples)
    train(mlp, X, y, epochs=epochs, lr=0.0006, measures=[TangentAlignment(X[:20], y[:20])], measure_final=False)
    dt = time.perf_counter() - t0
    rows = [{"benchmark": "train MLP depth 100 width 256, 1000 digits", "metric": "seconds per epoch",
             "value": dt / epochs, "unit": "s",
             "note": f"{epochs} epochs measured, batch 32, float64, 1 BLAS thread, full-set loss every epoch"},
            {"benchmark": "train MLP depth 100 width 256, 1000 digits",
             "metric": "50 epochs (extrapolated)" if epochs != 50 else "50 epochs",
             "value": dt / epochs * 50, "unit": "s", "note": "target < 300 s on 2 cores"}]
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    layer_alignments(mlp, X[:100], one_hot(y[:100], 10))
    rows.append({"benchmark": "per-layer tangent-kernel alignment, depth 100, N=100, o=10", "metric": "wall time",
                 "value": time.perf_counter() - t0, "unit": "s", "note": "100 kernels of 1000 x 1000"})
    return rows
