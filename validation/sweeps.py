"""Width sweeps of simulated networks: per width, the mean and standard error over networks of one statistic.

The experiments that extrapolate a finite-width statistic in ``1/n`` share this sweep: at each width ``n`` it
simulates ``S = max(min_networks, budget // n)`` networks (equal cost per width) on inputs with the Gram ``G0``
(:func:`sigprop.kernels.learning.datasets.inputs_with_gram`) with the seed ``seed_of(n)``, applies ``statistic`` to the
:class:`~sigprop.kernels.SimulationResult`, drops (and counts) the networks whose statistic is not finite, and
returns the mean and standard error over the rest (:func:`sigprop.validation.stats.mean_se`).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from sigprop.kernels.learning.datasets import inputs_with_gram
from sigprop.theory.arguments import integer_in_range

from . import stats

__all__ = ["networks_per_width", "width_sweep"]


def networks_per_width(budget: int, n: int, min_networks: int = 50) -> int:
    """``max(min_networks, budget // n)``: the number of networks that spends ``budget`` neuron-networks at width ``n``.

    Examples
    --------
    >>> networks_per_width(6400, 32), networks_per_width(6400, 512)
    (200, 50)
    """
    n = integer_in_range("n", n, 1, who="networks_per_width")
    budget = integer_in_range("budget", budget, 0, who="networks_per_width")
    min_networks = integer_in_range("min_networks", min_networks, 1, who="networks_per_width")
    return max(min_networks, budget // n)


def width_sweep(act, *, G0: np.ndarray, widths, depth: int, budget: int, seed_of: Callable[[int], int],
                statistic: Callable[[Any], np.ndarray], track=lambda it, **kw: it, desc: str | None = None,
                **simulate_kwargs) -> dict[int, dict[str, Any]]:
    """Per width ``n``: ``{"mean", "se", "n_networks", "n_dropped"}`` of ``statistic(result)`` over networks.

    ``statistic`` maps the :class:`~sigprop.kernels.SimulationResult` to an array whose first axis is the network;
    a network is dropped when any of its entries is not finite (overflowed networks, counted in ``n_dropped``).
    ``simulate_kwargs`` go to :func:`sigprop.kernels.simulate` (``C_W``, ``C_b``, ``method``, ``backend``,
    ``residual``, ``norm``, ...); ``track`` wraps the loop over widths (a progress bar).
    """
    from sigprop.kernels import simulate

    X = inputs_with_gram(G0)  # X X^T / n_0 = G0
    out = {}
    for n in track(list(widths), desc=desc or f"{getattr(act, 'label', act)} widths"):
        S = networks_per_width(budget, n)
        res = simulate(X, depth=depth, width=int(n), activation=act, n_networks=S, seed=seed_of(n), **simulate_kwargs)
        with np.errstate(over="ignore", invalid="ignore"):  # overflowed networks are dropped below
            values = np.asarray(statistic(res))
        ok = np.all(np.isfinite(values), axis=tuple(range(1, values.ndim)))
        m, se = stats.mean_se(values[ok])
        out[int(n)] = {"mean": m, "se": se, "n_networks": S, "n_dropped": int((~ok).sum())}
    return out
