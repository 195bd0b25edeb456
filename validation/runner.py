"""Runs experiments of the validation suite, caches them, and judges every check with one z bound.

Two phases: (1) run (or load from the cache) each selected experiment, in this process or in
``jobs`` spawned worker processes; (2) count the judged checks ``m`` of the whole run and set
``zmax = z_bound(m, family_level)`` (Sidak), so that a correct theory passes *all* checks with
probability >= family_level.  An experiment that raises is recorded as a failed ``completed`` check
(and not cached); the others are unaffected.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sigprop.theory.errors import InputError

from .cache import ResultCache, cache_key, sigprop_version
from .experiment import Check, Context, Experiment, ExperimentResult, discover
from .stats import z_bound

__all__ = ["ExperimentRun", "SuiteResult", "select_experiments", "run_suite", "versions", "PROFILES", "BACKENDS"]

PROFILES = ("smoke", "quick", "full")
BACKENDS = ("cpu", "cuda")


@dataclass
class ExperimentRun:
    """One experiment's outcome in a run: its result, settings, time, whether it came from the cache."""

    name: str
    title: str
    description: str
    settings: dict[str, Any]
    result: ExperimentResult
    elapsed: float
    cached: bool = False
    error: str | None = None


@dataclass
class SuiteResult:
    """All runs of one ``sigprop validate`` and the judgement of their checks."""

    runs: list[ExperimentRun]
    zmax: float
    n_judged: int
    family_level: float
    settings: dict[str, Any]
    versions: dict[str, str]
    seed: int
    total_time: float
    timings: dict[str, float] = field(default_factory=dict)

    def checks(self) -> list[tuple[ExperimentRun, Check]]:
        return [(run, c) for run in self.runs for c in run.result.checks]

    @property
    def n_failed(self) -> int:
        return sum(1 for _, c in self.checks() if c.passed(self.zmax) is False)

    @property
    def passed(self) -> bool:
        """True iff every judged check passed (and so every experiment completed)."""
        return self.n_failed == 0


def versions(backend: str = "cpu") -> dict[str, str]:
    """Versions of the interpreter and the libraries the numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform(), "sigprop": sigprop_version()}
    for pkg in ("numpy", "scipy", "numba", "numba-cuda", "mpmath", "sympy", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    if backend == "cuda":
        try:
            from numba import cuda

            name = cuda.get_current_device().name
            out["cuda_device"] = name.decode() if isinstance(name, bytes) else str(name)
        except Exception as exc:  # reported, never fatal here
            out["cuda_device"] = f"unavailable ({exc})"
    return out


def select_experiments(experiments: Sequence[Experiment], only: Iterable[str] | None) -> list[Experiment]:
    """The experiments named in ``only`` (all if None/empty), in suite order; unknown names -> ValueError."""
    if not only:
        return list(experiments)
    names = {e.name for e in experiments}
    wanted = list(dict.fromkeys(only))
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise InputError(f"--only: unknown experiment(s) {', '.join(unknown)}; available: {', '.join(sorted(names))}")
    return [e for e in experiments if e.name in wanted]


def _failure_check(name: str, message: str) -> Check:
    return Check(experiment=name, name="completed", theory=0.0, estimate=math.nan, stderr=0.0,
                 rule="the experiment must run to the end without an error", kind="exact", tol=0.0,
                 details={"error": message})


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _worker_init(threads: int) -> None:
    """Spawned worker: fix the numba thread count before numba is imported by an experiment."""
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    os.environ.setdefault("MPLBACKEND", "Agg")


def _execute(exp: Experiment, settings: dict[str, Any], profile: str, backend: str, seed: int, jobs: int,
             out_dir: str, show_progress: bool,
             threads: int | None = None) -> tuple[ExperimentResult | None, float, str | None]:
    """Run one experiment; returns (result, elapsed, error traceback or None). Never raises."""
    _set_threads(threads)
    progress = None
    if show_progress:
        from functools import partial

        from tqdm.auto import tqdm

        progress = partial(tqdm, leave=False, dynamic_ncols=True, file=sys.stderr)
    ctx = Context(profile=profile, backend=backend, seed=seed, jobs=jobs, out_dir=Path(out_dir), progress=progress)
    t0 = time.perf_counter()
    try:
        result = exp.run(ctx, settings)
        if not isinstance(result, ExperimentResult):
            raise TypeError(f"experiment {exp.name!r}: run() returned {type(result).__name__}, not ExperimentResult")
        return result, time.perf_counter() - t0, None
    except BaseException as exc:  # noqa: BLE001 - one experiment's crash must not kill the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        return None, time.perf_counter() - t0, "".join(traceback.format_exception(exc)).strip()


def run_suite(*, profile: str = "quick", backend: str = "cpu", seed: int = 0, jobs: int = 1,
              out_dir: Path | str = "sigprop-report", only: Iterable[str] | None = None,
              experiments: Sequence[Experiment] | None = None, use_cache: bool = True,
              family_level: float = 0.99, progress: bool = True,
              log: Callable[[str], None] | None = None) -> SuiteResult:
    """Run the selected experiments (``experiments`` defaults to :func:`discover`), then judge all checks.

    ``jobs > 1`` runs experiments in that many spawned processes with ``max(1, cores // jobs)`` numba
    threads each.  Finished experiments are stored in ``<out_dir>/.cache`` as they complete and reused
    when the key (settings, seed, backend, sigprop version) matches, unless ``use_cache`` is False.
    """
    if profile not in PROFILES:
        raise InputError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 < family_level < 1.0:
        raise InputError(f"family_level must be in (0, 1), got {family_level!r}")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    selected = select_experiments(discover() if experiments is None else experiments, only)
    cache = ResultCache(out)
    version = sigprop_version()

    runs: dict[str, ExperimentRun] = {}
    todo: list[tuple[Experiment, dict[str, Any], str]] = []
    for exp in selected:
        settings = exp.settings(profile)
        key = cache_key(exp.name, settings, seed, backend, version)
        hit = cache.load(exp.name, key) if use_cache else None
        if hit is not None:
            result, elapsed = hit
            runs[exp.name] = ExperimentRun(exp.name, exp.title, exp.description, settings, result, elapsed, cached=True)
            log(f"[cached] {exp.name} (from {cache.path(exp.name, key)})")
        else:
            todo.append((exp, settings, key))

    def finish(exp: Experiment, settings: dict[str, Any], key: str, result, elapsed: float, error: str | None):
        if error is not None:
            log(f"[error] {exp.name} failed after {elapsed:.1f}s:\n{error}")
            result = ExperimentResult(checks=[_failure_check(exp.name, error.splitlines()[-1])],
                                      notes=f"The experiment raised an error:\n\n```\n{error}\n```")
        elif use_cache:
            cache.store(exp.name, key, result, elapsed, settings)
        runs[exp.name] = ExperimentRun(exp.name, exp.title, exp.description, settings, result, elapsed, error=error)

    cores = os.cpu_count() or 1
    if jobs == 1 or len(todo) <= 1:
        outer = todo
        if progress and len(todo) > 1:
            from tqdm.auto import tqdm

            outer = tqdm(todo, desc="experiments", dynamic_ncols=True, file=sys.stderr)
        for exp, settings, key in outer:
            if hasattr(outer, "set_postfix_str"):
                outer.set_postfix_str(exp.name)
            result, elapsed, error = _execute(exp, settings, profile, backend, seed, jobs, str(out), progress)
            finish(exp, settings, key, result, elapsed, error)
    else:
        threads = max(1, cores // jobs)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                                    initializer=_worker_init, initargs=(threads,)) as pool:
            futures = {pool.submit(_execute, exp, settings, profile, backend, seed, jobs, str(out), False, threads):
                       (exp, settings, key) for exp, settings, key in todo}
            done_iter = cf.as_completed(futures)
            if progress:
                from tqdm.auto import tqdm

                done_iter = tqdm(done_iter, total=len(futures), desc=f"experiments ({jobs} processes)",
                                 dynamic_ncols=True, file=sys.stderr)
            for fut in done_iter:
                exp, settings, key = futures[fut]
                try:
                    result, elapsed, error = fut.result()
                except Exception as exc:  # the worker process died (e.g. killed for memory)
                    result, elapsed, error = None, math.nan, f"worker process failed: {exc!r}"
                finish(exp, settings, key, result, elapsed, error)

    ordered = [runs[e.name] for e in selected]
    for run in ordered:  # the experiment field is the runner's business, whatever the module wrote
        run.result.checks = [c if c.experiment == run.name else replace(c, experiment=run.name)
                             for c in run.result.checks]
    n_judged = sum(1 for run in ordered for c in run.result.checks if c.kind != "info")
    zmax = z_bound(n_judged, family_level)
    total = time.perf_counter() - t_start
    return SuiteResult(
        runs=ordered, zmax=zmax, n_judged=n_judged, family_level=family_level,
        settings={"profile": profile, "backend": backend, "seed": seed, "jobs": jobs, "out": str(out),
                  "only": list(only) if only else None, "use_cache": use_cache},
        versions=versions(backend), seed=seed, total_time=total,
        timings={run.name: run.elapsed for run in ordered} | {"total": total},
    )
