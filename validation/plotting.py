"""Shared matplotlib helpers of the validation experiments (Agg backend, no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plt", "subplots", "save", "errorbar", "cobweb", "COLORS"]

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def subplots(nrows: int = 1, ncols: int = 1, panel: tuple[float, float] = (3.4, 2.7), **kw):
    """A figure of ``nrows x ncols`` panels of size ``panel`` inches, constrained layout, always a 2-D axes array."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows), squeeze=False,
                             layout="constrained", **kw)
    return fig, axes


def save(fig, path: Path | str, dpi: int = 110) -> str:
    """Write ``fig`` as PNG and close it; returns the path as a string."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return str(path)


def errorbar(ax, x, y, se, label: str | None = None, color=None, marker: str = "o", ms: float = 3.5, **kw):
    """Points with +-1 standard-error bars (the convention of every figure of the suite)."""
    return ax.errorbar(np.asarray(x), np.asarray(y), yerr=np.asarray(se), fmt=marker, ms=ms, capsize=2,
                       lw=1, label=label, color=color, **kw)


def cobweb(ax, f, x0: float, steps: int, color: str = "C3", lw: float = 0.8) -> None:
    """Cobweb diagram of the iteration ``x_{l+1} = f(x_l)`` from ``x0`` (``f`` maps a float to a float)."""
    xs: list[float] = [x0]
    ys: list[float] = [x0]
    x = x0
    for _ in range(steps):
        y = float(f(x))
        xs += [x, y]
        ys += [y, y]
        x = y
    ax.plot(xs, ys, color=color, lw=lw)


def log_safe(values: Sequence[float], floor: float = 1e-300) -> np.ndarray:
    """Values clipped below at ``floor`` for a log axis (only for display; never for a check)."""
    return np.maximum(np.asarray(values, dtype=float), floor)
