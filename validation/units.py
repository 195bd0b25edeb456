"""One unit of work of the validation suite, run anywhere: an experiment's run, with its files carried back.

The runner hands a unit (for now one experiment; splitting experiments into finer units is the next step) to a Dask
worker as :func:`run_unit`.  The worker runs it in a temporary folder of its own with explicit numba/BLAS threads
and returns a :class:`UnitOutcome`: the result, the elapsed time, the traceback if it raised, the threads it used, and
the bytes of every file it wrote (figures).  The process that combines the results writes those files into the
report folder with :func:`attach_files` and then caches the unit, so a worker killed mid-unit leaves nothing behind,
and workers need no shared filesystem.
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

__all__ = ["UnitOutcome", "execute", "run_unit", "attach_files", "installation"]


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


def execute(exp: Experiment, settings: dict[str, Any], profile: str, backend: str, seed: int, jobs: int,
            out_dir: str, show_progress: bool) -> tuple[ExperimentResult | None, float, str | None]:
    """Run one experiment in this process; ``(result, elapsed, traceback or None)``.  Raises only on Ctrl-C."""
    progress = None
    if show_progress:
        import sys

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


def installation() -> tuple[str, str]:
    """``(host name, folder of sigprop.validation)``: two processes with the same one read the same sources."""
    return os.uname().nodename, str(Path(__file__).resolve().parent)


def run_unit(exp: Experiment, settings: dict[str, Any], profile: str, backend: str, seed: int, jobs: int,
             threads: int | None, fingerprint: str, origin: tuple[str, str]) -> UnitOutcome:
    """Worker side: run ``exp`` in a temporary folder with ``threads`` numba/BLAS threads (None: the worker's
    cores over its task slots), and return its outcome with its files.  Never raises.

    ``fingerprint`` is the client's :func:`sigprop.validation.cache.code_fingerprint` and ``origin`` its
    :func:`installation`: a worker of another installation (another machine, or another folder) whose sources
    differ refuses the unit, whose result would otherwise be cached under a key that does not describe it.
    """
    from sigprop.kernels.cluster import limit_threads

    from .cache import code_fingerprint

    os.environ.setdefault("MPLBACKEND", "Agg")
    worker = f"{os.uname().nodename}:{os.getpid()}"
    mine = fingerprint if installation() == tuple(origin) else code_fingerprint()
    if mine != fingerprint:
        return UnitOutcome(None, 0.0, f"RuntimeError: worker {worker} runs other sigprop sources (fingerprint "
                                      f"{mine[:12]}, the client's {fingerprint[:12]}); install the same version on "
                                      "every worker", worker=worker)
    with tempfile.TemporaryDirectory(prefix=f"sigprop-{exp.name}-") as tmp:
        with limit_threads(threads, threads) as used:
            result, elapsed, error = execute(exp, settings, profile, backend, seed, jobs, tmp, False)
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
    would have written them; returns the result (None if the unit raised)."""
    for rel, data in outcome.files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    if outcome.result is None:
        return None
    figures = [(caption, str(out / path) if path in outcome.files else path)
               for caption, path in outcome.result.figures]
    return replace(outcome.result, figures=figures)
