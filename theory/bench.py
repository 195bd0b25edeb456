"""Benchmarks of the theory engine: ``run_benchmarks(profile="quick") -> list[dict]`` (rows as in docs/conventions.md).

* wall time of ``sigprop theory relu`` and ``sigprop theory gelu`` as subprocesses (including interpreter start
  and imports);
* set-up time of ``KernelMap(name)`` and the time of kappa on 10^4 points after set-up, for relu, gelu, tanh, selu
  (best of several repeats);
* ``kernel_recursion`` with P = 8 inputs, depth 50, for relu and tanh.
The "full" profile repeats each timing more often.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sigprop.theory.errors import InputError

__all__ = ["run_benchmarks", "check_profile"]

PROFILE_NAMES = ("quick", "full")


def check_profile(profile, who: str | None = "run_benchmarks") -> None:
    """The profile check every benchmark module makes: ``profile`` must be 'quick' or 'full', else an
    :class:`~sigprop.theory.errors.InputError` (prefixed ``who: `` when given) before any work.

    Examples
    --------
    >>> check_profile("quick")
    >>> check_profile("slow", who=None)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: profile must be 'quick' or 'full', got 'slow'
    """
    if not isinstance(profile, str) or profile not in PROFILE_NAMES:
        prefix = f"{who}: " if who else ""
        raise InputError(f"{prefix}profile must be 'quick' or 'full', got {profile!r}")


def _row(benchmark: str, metric: str, value: float, unit: str, note: str = "") -> dict:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "note": note}


def _cli_time(name: str) -> float:
    exe = Path(sys.executable).with_name("sigprop")
    cmd = ([str(exe), "theory", name] if exe.exists()
           else [sys.executable, "-m", "sigprop.validation.cli", "theory", name])
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"sigprop theory {name} failed: {res.stderr.strip()}")
    return dt


def run_benchmarks(profile: str = "quick") -> list[dict]:
    check_profile(profile)
    from .kernel_map import KernelMap
    from .meanfield import kernel_recursion

    reps = 3 if profile == "quick" else 10
    rows = []
    for name in ("relu", "gelu"):
        best = min(_cli_time(name) for _ in range(reps))
        rows.append(_row(f"cli_theory_{name}", "wall_time", best, "s",
                         f"`sigprop theory {name}` as a subprocess incl. imports, best of {reps}"))
    rho = np.linspace(-1.0, 1.0, 10_000)
    for name in ("relu", "gelu", "tanh", "selu"):
        t = time.perf_counter()
        km = KernelMap(name)
        setup = time.perf_counter() - t
        km(rho)
        times = []
        for _ in range(reps * 3):
            t = time.perf_counter()
            km(rho)
            times.append(time.perf_counter() - t)
        rows.append(_row(f"kernel_map_{name}", "setup_time", setup, "s", f"KernelMap({name!r}), method={km.method}"))
        rows.append(_row(f"kernel_map_{name}", "eval_time_1e4", min(times), "s",
                         f"kappa on 10^4 points after set-up, best of {len(times)}"))
    X = np.random.default_rng(0).standard_normal((8, 64))
    G0 = X @ X.T / 64
    for name, cw in (("relu", 2.0), ("tanh", 1.2)):
        kernel_recursion(name, G0, 2, cw)
        t = time.perf_counter()
        kernel_recursion(name, G0, 50, cw, 0.05)
        rows.append(_row(f"kernel_recursion_{name}", "wall_time", time.perf_counter() - t, "s", "P=8, depth=50"))
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run_benchmarks():
        print(f"{r['benchmark']:28s} {r['metric']:14s} {r['value']:.4g} {r['unit']}  {r['note']}")
