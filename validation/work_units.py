"""One unit of work of the validation suite, run anywhere, with its files carried back.

Two kinds of unit go to Dask workers: an experiment's ``run`` (:func:`run_unit`), and one of an experiment's finer
units, ``Experiment.run_unit(ctx, settings, key)`` (:func:`run_part`; e.g. one trained network per depth and seed),
whose values the experiment's ``run`` then combines.  A worker runs a unit in a temporary folder of its own with
explicit numba/BLAS threads and returns a :class:`UnitOutcome`: the result (or a finer unit's value), the elapsed
time, the traceback if it raised, the threads it used, and the bytes of every file it wrote (figures).  The process
that combines the results writes those files into the report folder with :func:`attach_files` and then caches the
unit, so a worker killed mid-unit leaves nothing behind, and workers need no shared filesystem.  The paths of
those files come from the workers: one that would land outside the report folder (absolute, ``..``, or through a
symbolic link that points elsewhere) is refused and fails the unit's experiment.
"""
from __future__ import annotations

import os
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from .experiment import Context, Experiment, ExperimentResult

__all__ = ["UnitOutcome", "execute", "execute_part", "run_unit", "run_part", "attach_files", "installation"]


@dataclass
class UnitOutcome:
    """What a unit gives back: ``result`` (None if it raised), ``elapsed`` seconds, ``error`` (the traceback),
    ``threads`` (numba/BLAS threads it ran with), ``files`` (report-relative path -> bytes) and ``worker``."""

    result: ExperimentResult | None
    elapsed: float
    error: str | None = None
    threads: dict[str, int] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    worker: str = ""
    value: Any = None  # a finer unit's value (run_part)


def execute(exp: Experiment, settings: dict[str, Any], profile: str, backend: str, seed: int, jobs: int,
            out_dir: str, show_progress: bool,
            unit_results: dict[str, Any] | None = None) -> tuple[ExperimentResult | None, float, str | None]:
    """Run one experiment in this process; ``(result, elapsed, traceback or None)``.  Raises only on Ctrl-C."""
    progress = None
    if show_progress:
        import sys

        from tqdm.auto import tqdm

        progress = partial(tqdm, leave=False, dynamic_ncols=True, file=sys.stderr)
    ctx = Context(profile=profile, backend=backend, seed=seed, jobs=jobs, out_dir=Path(out_dir), progress=progress,
                  unit_results=unit_results)
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


def execute_part(exp: Experiment, settings: dict[str, Any], key: Any, profile: str, backend: str, seed: int,
                 out_dir: str) -> tuple[Any, float, str | None]:
    """Run one finer unit of ``exp`` in this process; ``(value, elapsed, traceback or None)``.  Raises only on
    Ctrl-C.  The value is checked to be storable (:func:`sigprop.validation.cache.encode_value`)."""
    from .cache import encode_value

    ctx = Context(profile=profile, backend=backend, seed=seed, jobs=1, out_dir=Path(out_dir))
    t0 = time.perf_counter()
    try:
        value = exp.run_unit(ctx, settings, key)
        encode_value(value)
        return value, time.perf_counter() - t0, None
    except BaseException as exc:  # noqa: BLE001 - one unit's crash must not kill the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        return None, time.perf_counter() - t0, "".join(traceback.format_exception(exc)).strip()


def installation() -> tuple[str, str]:
    """``(host name, folder of sigprop.validation)``: two processes with the same one read the same sources."""
    return os.uname().nodename, str(Path(__file__).resolve().parent)


def _foreign(fingerprint: str, origin: tuple[str, str]) -> str | None:
    """Why this worker must refuse a unit (other sources than the client's), or None."""
    from .cache import code_fingerprint

    worker = f"{os.uname().nodename}:{os.getpid()}"
    mine = fingerprint if installation() == tuple(origin) else code_fingerprint()
    if mine != fingerprint:
        return (f"RuntimeError: worker {worker} runs other sigprop sources (fingerprint {mine[:12]}, the "
                f"client's {fingerprint[:12]}); install the same version on every worker")
    return None


def run_part(exp: Experiment, settings: dict[str, Any], key: Any, profile: str, backend: str, seed: int,
             threads: int | None, fingerprint: str, origin: tuple[str, str]) -> UnitOutcome:
    """Worker side of a finer unit: ``exp.run_unit(ctx, settings, key)`` with ``threads`` numba/BLAS threads,
    its value in :attr:`UnitOutcome.value`.  Never raises (see :func:`run_unit` for ``fingerprint``)."""
    from sigprop.kernels.cluster import limit_threads

    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = f"{os.uname().nodename}:{os.getpid()}"
    refusal = _foreign(fingerprint, origin)
    if refusal is not None:
        return UnitOutcome(None, 0.0, refusal, worker=worker)
    with tempfile.TemporaryDirectory(prefix=f"sigprop-{exp.name}-part-") as tmp:
        with limit_threads(threads, threads) as used:
            value, elapsed, error = execute_part(exp, settings, key, profile, backend, seed, tmp)
    return UnitOutcome(None, elapsed, error, used, {}, worker, value)


def run_unit(exp: Experiment, settings: dict[str, Any], profile: str, backend: str, seed: int, jobs: int,
             threads: int | None, fingerprint: str, origin: tuple[str, str],
             unit_results: dict[str, Any] | None = None) -> UnitOutcome:
    """Worker side: run ``exp`` in a temporary folder with ``threads`` numba/BLAS threads (None: the worker's
    cores over its task slots), and return its outcome with its files.  Never raises.

    ``fingerprint`` is the client's :func:`sigprop.validation.cache.code_fingerprint` and ``origin`` its
    :func:`installation`: a worker of another installation (another machine, or another folder) whose sources
    differ refuses the unit, whose result would otherwise be cached under a key that does not describe it.
    """
    from sigprop.kernels.cluster import limit_threads

    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = f"{os.uname().nodename}:{os.getpid()}"
    refusal = _foreign(fingerprint, origin)
    if refusal is not None:
        return UnitOutcome(None, 0.0, refusal, worker=worker)
    with tempfile.TemporaryDirectory(prefix=f"sigprop-{exp.name}-") as tmp:
        with limit_threads(threads, threads) as used:
            result, elapsed, error = execute(exp, settings, profile, backend, seed, jobs, tmp, False, unit_results)
        files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        if result is not None:
            result = replace(result, figures=[(caption, _relative(path, tmp)) for caption, path in result.figures])
    return UnitOutcome(result, elapsed, error, used, files, worker)


def _relative(path: str, root: str) -> str:
    """``path`` relative to ``root`` (a figure the unit wrote), or unchanged (a path outside it)."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def attach_files(outcome: UnitOutcome, out: Path) -> ExperimentResult | None:
    """Write the unit's files into ``out`` (each atomically) and point its figures at them, as an in-process run
    would have written them; returns the result (None if the unit raised).

    The paths come from a worker: every one is checked before any file is written, and one that is absolute, or
    leaves ``out`` once resolved (``..``, or a symbolic link inside ``out`` that points elsewhere), is refused with
    a ``ValueError`` naming it; nothing is written then.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         attach_files(UnitOutcome(None, 0.0, files={"../evil.png": b"x"}), Path(tmp))
    ...     except ValueError as exc:
    ...         print(str(exc).replace(tmp, "DIR"))
    a unit's file path '../evil.png' (from worker '') leaves the report folder DIR; refused, nothing written
    """
    from .cache import write_atomic

    targets = {rel: _inside(out, rel, outcome.worker) for rel in outcome.files}
    for rel, data in outcome.files.items():
        path = targets[rel]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    if outcome.result is None:
        return None
    figures = [(caption, str(out / path) if path in outcome.files else path)
               for caption, path in outcome.result.figures]
    return replace(outcome.result, figures=figures)


def _inside(out: Path, rel: str, worker: str) -> Path:
    """``out / rel`` if it stays inside ``out`` once resolved (symbolic links followed), else ValueError."""
    root = Path(out).resolve()
    path = Path(out) / rel if isinstance(rel, str) and rel and not Path(rel).is_absolute() else None
    if path is None or path.resolve() == root or not path.resolve().is_relative_to(root):
        raise ValueError(f"a unit's file path {rel!r} (from worker {worker!r}) leaves the report folder {out}; "
                         "refused, nothing written")
    return path
