"""Runs experiments of the validation suite, caches them, and judges every check with one z bound.

Two phases: (1) run (or load from the cache) each selected experiment, in this process (the default, no Dask), on a
Dask ``LocalCluster`` of ``jobs`` single-threaded worker processes, or on an existing Dask cluster (``scheduler``);
(2) count the judged checks ``m`` of the whole run and set ``zmax = z_bound(m, family_level)`` (Sidak), so that a
correct theory passes *all* checks with probability >= family_level.  The units of
work (:mod:`sigprop.validation.work_units`) are an experiment's finer units (``Experiment.units``, e.g. one trained
network per depth and seed), computed first, and then its ``run``, which combines them; units are cached as they
finish, by this process only, so an interrupted run recomputes only the missing ones.  An experiment that raises
(or whose worker dies more often than Dask retries) is recorded as a failed ``completed`` check (and not cached);
the others are unaffected.  How the work was spread (workers, numba and BLAS threads each) is recorded in
``settings['execution']``.

Output paths are checked before any work (:func:`check_report_folder`): the report folder, ``report.md``,
``results.json``, ``figures/`` and ``.cache/``.  A cache entry that cannot be written during the run (the folder
made unwritable, a full disk) does not stop it: the first such failure warns (:class:`CacheWarning`), the run goes
on with the finished values in memory, and ``settings['execution']['cache_not_written']`` counts the entries that
a later run will have to recompute.  A figure that cannot be written fails its experiment (a failed
``completed`` check), like any other error of the experiment.
"""
from __future__ import annotations

import contextlib
import math
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from sigprop.theory.arguments import integer_in_range, one_of, real_in_range
from sigprop.theory.errors import InputError

from .cache import CacheWarning, ResultCache, cache_key, code_fingerprint, sigprop_version, unit_cache_key
from .cli.checks import check_output_path
from .experiment import Check, Experiment, ExperimentResult, discover
from .stats import z_bound
from .work_units import UnitOutcome, attach_files, execute, execute_part, installation, run_part, run_unit

__all__ = ["ExperimentRun", "SuiteResult", "select_experiments", "run_suite", "versions", "check_report_folder",
           "PROFILES", "BACKENDS"]

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
    for pkg in ("numpy", "scipy", "numba", "numba-cuda", "mpmath", "sympy", "matplotlib", "dask", "distributed"):
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


def run_suite(*, profile: str = "quick", backend: str = "cpu", seed: int = 0, jobs: int = 1,
              out_dir: Path | str = "sigprop-report", only: Iterable[str] | None = None,
              experiments: Sequence[Experiment] | None = None, use_cache: bool = True,
              family_level: float = 0.99, progress: bool = True,
              log: Callable[[str], None] | None = None, scheduler: str | None = None,
              threads: int | None = None, connect_timeout: float = 10.0) -> SuiteResult:
    """Run the selected experiments (``experiments`` defaults to :func:`discover`), then judge all checks.

    ``jobs > 1`` starts a Dask ``LocalCluster`` of ``jobs`` worker processes (one task each, ``threads`` numba and
    BLAS threads each, default ``max(1, cores // jobs)``) when at least two experiments are left to run;
    ``scheduler`` (``tcp://host:8786`` or a scheduler file) sends them to that cluster instead, connecting before
    any work (one that does not answer within ``connect_timeout`` seconds is an :class:`InputError`).  The default
    runs them here, one after the other, without Dask.  Finished experiments are stored in ``<out_dir>/.cache`` by
    this process as they complete and reused when the key (settings, seed, backend, sigprop version and sources)
    matches, unless ``use_cache`` is False.  No number depends on ``jobs``, ``scheduler`` or ``threads``.
    Every path the run writes is checked first (:func:`check_report_folder`); a cache entry that cannot be
    written later warns once and the run goes on (see the module's docstring).
    """
    _check_suite_arguments(profile, backend, jobs, threads, seed, family_level)
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t_start = time.perf_counter()
    out = check_report_folder(out_dir, use_cache=use_cache)
    selected = select_experiments(discover() if experiments is None else experiments, only)
    cache = ResultCache(out)
    writes = _CacheWrites(cache) if use_cache else None
    version = sigprop_version()

    with contextlib.ExitStack() as stack:
        client = plan = None
        if scheduler is not None:  # connect first: a bad address fails before any work
            client, plan = _connect(stack, scheduler, threads, connect_timeout, backend, log)

        runs, todo = _from_cache(selected, profile, seed, backend, version, cache, use_cache, log)
        pending = _parts_of(todo, profile, seed, backend, version, cache if use_cache else None)

        def finish(exp: Experiment, settings: dict[str, Any], key: str, result, elapsed: float, error: str | None):
            if error is not None:
                log(f"[error] {exp.name} failed after {elapsed:.1f}s:\n{error}")
                result = ExperimentResult(checks=[_failure_check(exp.name, error.splitlines()[-1])],
                                          notes=f"The experiment raised an error:\n\n```\n{error}\n```")
            elif writes is not None:
                writes.store(exp.name, key, result, elapsed, settings)
            runs[exp.name] = ExperimentRun(exp.name, exp.title, exp.description, settings, result, elapsed,
                                           error=error)

        n_tasks = sum(len(p.todo) for p in pending) + len(pending)
        if client is None and jobs > 1 and n_tasks > 1 and (len(pending) > 1 or pending[0].todo):
            from sigprop.kernels.cluster import open_client

            client, plan = stack.enter_context(open_client(jobs=jobs, threads=threads))
        common = dict(profile=profile, backend=backend, seed=seed, jobs=jobs, threads=threads, out=out,
                      progress=progress, cache=writes)
        if client is not None:
            seen = _run_on_cluster(client, plan, pending, finish, **common)
            execution = {**plan, "threads_used": seen}
        else:
            execution = _run_here(pending, finish, **common)
        execution["units"] = {p.exp.name: len(p.ids) for p in pending if p.exp.units is not None}
        if writes is not None and writes.failed:
            execution["cache_not_written"] = writes.failed
            log(f"[cache] {writes.failed} cache entr{'y' if writes.failed == 1 else 'ies'} could not be written to "
                f"{cache.root} ({writes.first_error}); their results are in this report, and a later run will "
                "recompute them")

    ordered = _in_order(selected, runs)
    n_judged = sum(1 for run in ordered for c in run.result.checks if c.kind != "info")
    zmax = z_bound(n_judged, family_level)
    total = time.perf_counter() - t_start
    return SuiteResult(
        runs=ordered, zmax=zmax, n_judged=n_judged, family_level=family_level,
        settings={"profile": profile, "backend": backend, "seed": seed, "jobs": jobs, "out": str(out),
                  "only": list(only) if only else None, "use_cache": use_cache, "scheduler": scheduler,
                  "execution": execution},
        versions=versions(backend), seed=seed, total_time=total,
        timings={run.name: run.elapsed for run in ordered} | {"total": total},
    )


_REPORT_FILES = {"report.md": "the report", "results.json": "the results"}
_REPORT_FOLDERS = {"figures": "the figures", ".cache": "the cache", ".cache/units": "the cache of finished units"}


def check_report_folder(out_dir: Path | str, *, use_cache: bool = True, option: str = "out_dir") -> Path:
    """Check, before any work, that a run can write every path it writes in ``out_dir``; create the folder.

    The folder itself (created with its parents if missing), ``report.md`` and ``results.json`` (files),
    ``figures/`` and, with ``use_cache``, ``.cache/`` and ``.cache/units/`` (folders): each one that exists must be
    of its kind and writable (a file is created and deleted there to make sure, see
    :func:`sigprop.validation.cli.checks.check_output_path`).

    Parameters
    ----------
    out_dir : str or os.PathLike
        The report folder.
    use_cache : bool
        Whether the run writes its cache (``.cache/``); default True.
    option : str
        The argument's name in messages, e.g. ``'--out'`` (default ``'out_dir'``).

    Returns
    -------
    pathlib.Path
        ``out_dir`` as a Path.

    Raises
    ------
    InputError
        One line naming ``option`` and the offending path: a file where a folder is written or the other way
        round, or a place that cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (Path(tmp) / "report.md").mkdir()
    ...     try:
    ...         check_report_folder(tmp, option="--out")
    ...     except InputError as exc:
    ...         print(str(exc).replace(tmp, "DIR"))
    --out: 'DIR/report.md' is a folder, but the run writes the report there as a file; remove or rename it
    """
    out = Path(out_dir)
    if not out.exists() and not out.is_symlink():  # created with its parents, as the run would create it
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{option}: cannot create the report folder {str(out_dir)!r} "
                             f"({exc.strerror or exc})") from None
    check_output_path(out, option=option, kind="dir")  # a folder, and writable
    for name, what in _REPORT_FILES.items():
        path = out / name
        if path.is_dir():
            raise InputError(f"{option}: {str(path)!r} is a folder, but the run writes {what} there as a file; "
                             "remove or rename it")
        check_output_path(path, option=option, kind="file")
    folders = _REPORT_FOLDERS if use_cache else {"figures": _REPORT_FOLDERS["figures"]}
    for name, what in folders.items():
        path = out / name
        if path.exists() and not path.is_dir():
            raise InputError(f"{option}: {str(path)!r} is a file, but the run writes {what} into a folder there; "
                             "remove or rename it")
        if path.exists():
            check_output_path(path, option=option, kind="dir")
    return out


class _CacheWrites:
    """The run's writes into its cache: one that fails (``OSError``: a folder made unwritable, a full disk) warns
    the first time (:class:`CacheWarning`) and is counted; the run goes on with the value in memory."""

    def __init__(self, cache: ResultCache):
        self.cache = cache
        self.failed = 0
        self.first_error = ""

    def store(self, *args: Any) -> None:
        self._try(self.cache.store, args)

    def store_unit(self, *args: Any) -> None:
        self._try(self.cache.store_unit, args)

    def _try(self, store: Callable[..., Path], args: tuple) -> None:
        try:
            store(*args)
        except OSError as exc:
            self.failed += 1
            if self.failed == 1:
                where = exc.filename or self.cache.root
                self.first_error = f"{exc.strerror or exc}: {where}"
                warnings.warn(f"cannot write the cache entry of {args[0]} ({self.first_error}); the run goes on "
                              "with the finished results in memory, but a later run will recompute what is not "
                              "cached", CacheWarning, stacklevel=2)


def _check_suite_arguments(profile, backend, jobs, threads, seed, family_level) -> None:
    one_of("profile", profile, PROFILES)
    one_of("backend", backend, BACKENDS)
    integer_in_range("jobs", jobs, 1)
    if threads is not None:
        integer_in_range("threads", threads, 1)
    integer_in_range("seed", seed, 0)
    real_in_range("family_level", family_level, 0.0, 1.0, lo_open=True, hi_open=True)


def _connect(stack: contextlib.ExitStack, scheduler: str, threads, timeout: float, backend: str, log):
    """Client and thread plan of an existing Dask cluster (closed with ``stack``); with backend cuda every worker
    must have a usable GPU."""
    from sigprop.kernels.cluster import open_client

    client, plan = stack.enter_context(open_client(scheduler=scheduler, threads=threads, timeout=timeout))
    log(f"[dask] connected to {plan['address']} ({plan['workers']} workers)")
    if backend == "cuda":
        from sigprop.kernels.backend import cuda_available

        no_gpu = sorted(w for w, ok in client.run(cuda_available).items() if not ok)
        if no_gpu:
            raise InputError(f"backend cuda: {len(no_gpu)} worker(s) of {scheduler} have no usable CUDA GPU "
                             f"({', '.join(no_gpu[:3])}); start them with dask-cuda, or use backend cpu")
    return client, plan


def _from_cache(selected, profile, seed, backend, version, cache, use_cache, log):
    """The runs found in the cache, and the (experiment, settings, key) left to run."""
    runs: dict[str, ExperimentRun] = {}
    todo: list[tuple[Experiment, dict[str, Any], str]] = []
    for exp in selected:
        settings = exp.settings(profile)
        key = cache_key(exp.name, settings, seed, backend, version)
        hit = cache.load(exp.name, key) if use_cache else None
        if hit is not None:
            result, elapsed = hit
            runs[exp.name] = ExperimentRun(exp.name, exp.title, exp.description, settings, result, elapsed,
                                           cached=True)
            log(f"[cached] {exp.name} (from {cache.path(exp.name, key)})")
        else:
            todo.append((exp, settings, key))
    return runs, todo


def _in_order(selected, runs) -> list[ExperimentRun]:
    """The runs in the order of ``selected``; every check's experiment field set to its run's name (the runner's
    business, whatever the module wrote)."""
    ordered = [runs[e.name] for e in selected]
    for run in ordered:
        run.result.checks = [c if c.experiment == run.name else replace(c, experiment=run.name)
                             for c in run.result.checks]
    return ordered


@dataclass
class _Pending:
    """An experiment left to run: its finer units (``ids``: unit id -> key; ``values`` found or computed so far,
    ``keys`` their cache keys) and what is still to compute (``todo``)."""

    exp: Experiment
    settings: dict[str, Any]
    key: str
    ids: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    error: str | None = None

    @property
    def todo(self) -> list[str]:
        return [uid for uid in self.ids if uid not in self.values]

    def record(self, uid: str, value: Any, elapsed: float, error: str | None, cache: _CacheWrites | None) -> None:
        """A finished unit: its value kept (and cached, if the cache can be written), or its error kept (the
        experiment then fails)."""
        self.elapsed += elapsed
        if error is not None:
            self.error = self.error or f"unit {uid} of {self.exp.name} raised:\n{error}"
            return
        self.values[uid] = value
        if cache is not None:
            cache.store_unit(self.exp.name, self.keys[uid], uid, value, elapsed)


def _parts_of(todo, profile, seed, backend, version, cache: ResultCache | None) -> list[_Pending]:
    """Each experiment left to run with its finer units; units found in the cache are taken from it."""
    from .experiment import unit_id

    pending = []
    for exp, settings, key in todo:
        p = _Pending(exp, settings, key)
        for k in (exp.units(settings) if exp.units is not None else []):
            uid = unit_id(k)
            p.ids[uid] = k
            p.keys[uid] = unit_cache_key(exp.name, settings, uid, seed, backend, version)
            hit = cache.load_unit(exp.name, p.keys[uid]) if cache is not None else None
            if hit is not None:
                p.values[uid], elapsed = hit
                p.elapsed += elapsed
        pending.append(p)
    return pending


def _run_here(pending: list[_Pending], finish, *, profile, backend, seed, jobs, threads, out, progress,
              cache) -> dict[str, Any]:
    """The experiments one after the other in this process (each one's units first); returns the execution
    record."""
    import os

    from sigprop.kernels.cluster import limit_threads

    def bar(items, desc, total):
        if not progress or total < 2:
            return items
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, total=total, dynamic_ncols=True, file=sys.stderr, leave=False)

    outer = bar(pending, "experiments", len(pending))
    limits = limit_threads(threads, threads) if threads is not None else contextlib.nullcontext()
    with limits:
        for p in outer:
            if hasattr(outer, "set_postfix_str"):
                outer.set_postfix_str(p.exp.name)
            for uid in bar(p.todo, f"{p.exp.name}: units", len(p.todo)):
                value, elapsed, error = execute_part(p.exp, p.settings, p.ids[uid], profile, backend, seed,
                                                     str(out))
                p.record(uid, value, elapsed, error, cache)
                if p.error is not None:
                    break
            if p.error is not None:
                finish(p.exp, p.settings, p.key, None, p.elapsed, p.error)
                continue
            result, elapsed, error = execute(p.exp, p.settings, profile, backend, seed, jobs, str(out), progress,
                                             p.values or None)
            finish(p.exp, p.settings, p.key, result, p.elapsed + elapsed, error)
        from sigprop.kernels.cluster import threads_in_use

        used = threads_in_use()
    return {"mode": "in-process", "address": None, "workers": 1, **used, "cores": os.cpu_count()}


def _run_on_cluster(client, plan, pending: list[_Pending], finish, *, profile, backend, seed, jobs, threads, out,
                    progress, cache) -> list[dict[str, int]]:
    """Every unit as a Dask task: the finer units of all experiments first, then each experiment's ``run`` once its
    units are in (the units' values travel with it); units are cached and experiments combined here as they
    finish.  Returns the distinct numba/BLAS thread counts the units ran with."""
    from distributed import as_completed

    fingerprint, origin = code_fingerprint(), installation()
    threads = threads if threads is not None else plan.get("numba_threads")  # None: each worker's own share
    futures: dict[str, tuple[Any, _Pending, str | None]] = {}  # future key -> (future, experiment, unit id)

    def submit_run(p: _Pending):
        fut = client.submit(run_unit, p.exp, p.settings, profile, backend, seed, jobs, threads, fingerprint, origin,
                            p.values or None, key=f"sigprop-unit-{p.exp.name}-{p.key[:12]}-{time.time_ns()}",
                            pure=False)
        futures[fut.key] = (fut, p, None)
        return fut

    first = []
    for p in pending:
        for uid in p.todo:
            fut = client.submit(run_part, p.exp, p.settings, p.ids[uid], profile, backend, seed, threads,
                                fingerprint, origin, key=f"sigprop-part-{p.exp.name}-{p.keys[uid][:12]}-"
                                f"{time.time_ns()}", pure=False)
            futures[fut.key] = (fut, p, uid)
            first.append(fut)
    first += [submit_run(p) for p in pending if not p.todo]
    seen: list[dict[str, int]] = []
    done_iter = as_completed(first)
    ticker = None
    if progress:
        from tqdm.auto import tqdm

        ticker = tqdm(total=sum(len(p.todo) for p in pending) + len(pending), dynamic_ncols=True, file=sys.stderr,
                      desc=f"units ({plan['workers']} Dask workers)")
    try:
        for fut in done_iter:
            _, p, uid = futures[fut.key]
            try:
                outcome: UnitOutcome = fut.result()
            except Exception as exc:  # the worker died more often than Dask retries, or the cluster went away
                outcome = UnitOutcome(None, math.nan, f"worker process failed: {type(exc).__name__}: {exc}")
            fut.release()
            if ticker is not None:
                ticker.update(1)
            if outcome.threads and outcome.threads not in seen:
                seen.append(outcome.threads)
            if uid is None:  # an experiment's run: combine (and cache) it here
                result, error = _attached(outcome, out)
                finish(p.exp, p.settings, p.key, result, p.elapsed + outcome.elapsed, error)
                continue
            had_error = p.error is not None
            p.record(uid, outcome.value, outcome.elapsed, outcome.error, cache)
            if p.error is not None and not had_error:  # the experiment fails; its other units are not needed
                client.cancel([f for f, q, u in futures.values() if q is p and u is not None and not f.done()])
                finish(p.exp, p.settings, p.key, None, p.elapsed, p.error)
                if ticker is not None:
                    ticker.update(1)
            elif p.error is None and not p.todo:
                done_iter.add(submit_run(p))
    finally:
        client.cancel([f for f, *_ in futures.values() if not f.done()])
        if ticker is not None:
            ticker.close()
    return seen


def _attached(outcome: UnitOutcome, out: Path) -> tuple[ExperimentResult | None, str | None]:
    """(result, error) of an experiment's run on a worker once its files are written into ``out``; files that
    cannot be written (``OSError``) or whose paths leave ``out`` (``ValueError``) fail the experiment."""
    try:
        result = attach_files(outcome, out)
    except (OSError, ValueError) as exc:
        why = f"{type(exc).__name__}: {exc}"
        return None, (f"{outcome.error}\n{why}" if outcome.error else f"could not write the unit's files: {why}")
    return result, outcome.error
