"""``sigprop bench``: benchmarks of the theory and Monte-Carlo engines, as one table (and JSON with --out).

Collects ``run_benchmarks(profile) -> list[dict]`` from each module in :data:`BENCH_MODULES`; each row is
``{"benchmark", "metric", "value", "unit", "note"}``.  A module that is missing (or fails to import) is
skipped with a message; a module whose benchmarks raise is reported as an error row and makes the exit
status 1.  ``--backend`` is passed to modules whose ``run_benchmarks`` accepts a ``backend`` argument.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from sigprop.theory.errors import InputError

__all__ = ["BENCH_MODULES", "collect", "format_table", "add_arguments", "run"]

# The one registry: short name (for --only) -> the bench module whose run_benchmarks gives its rows.  Library
# modules hold no benchmark code; each bench module imports what it times (a theory bench never imports kernels).
BENCH_MODULES: dict[str, str] = {
    "theory": "sigprop.theory.bench",
    "kernels": "sigprop.kernels.bench",
    "equilibrium": "sigprop.theory.bench_equilibrium",
    "ntk": "sigprop.theory.bench_ntk",
    "ntk_mc": "sigprop.kernels.bench_ntk_mc",
    "training": "sigprop.kernels.learning.bench_training",
    "rfm": "sigprop.kernels.learning.bench_rfm",
    "rainbow": "sigprop.kernels.bench_rainbow",
    "measures": "sigprop.validation.bench_measures",
}


def collect(profile: str = "quick", backend: str = "cpu", only: list[str] | None = None,
            log=lambda msg: print(msg, file=sys.stderr)) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of all selected benchmark modules, each tagged with ``module``; and a list of error messages."""
    names = list(only) if only else list(BENCH_MODULES)
    unknown = [n for n in names if n not in BENCH_MODULES]
    if unknown:
        raise InputError(f"--only: unknown benchmark module(s) {', '.join(unknown)}; "
                         f"available: {', '.join(BENCH_MODULES)}")
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in names:
        modname = BENCH_MODULES[name]
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            log(f"sigprop bench: skipping {name} ({modname} not available: {exc})")
            continue
        fn = getattr(module, "run_benchmarks", None)
        if fn is None:
            log(f"sigprop bench: skipping {name} ({modname} has no run_benchmarks)")
            continue
        kwargs: dict[str, Any] = {}
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        if "backend" in params:
            kwargs["backend"] = backend
        elif backend != "cpu":
            log(f"sigprop bench: {name} benchmarks take no backend; running them as they are")
        t0 = time.perf_counter()
        try:
            got = list(fn(profile, **kwargs))
        except Exception as exc:  # reported as a row, the other modules still run
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            rows.append({"module": name, "benchmark": "(error)", "metric": type(exc).__name__, "value": float("nan"),
                         "unit": "", "note": str(exc)})
            continue
        for row in got:
            rows.append({"module": name, **{k: row.get(k) for k in ("benchmark", "metric", "value", "unit", "note")}})
        log(f"sigprop bench: {name}: {len(got)} rows in {time.perf_counter() - t0:.1f} s")
    return rows, errors


def _fmt_value(v: Any) -> str:
    if isinstance(v, (int, float)):
        return f"{v:.4g}"
    return str(v)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("module", "benchmark", "metric", "value", "unit", "note")
    table = [header] + [(str(r["module"]), str(r["benchmark"]), str(r["metric"]), _fmt_value(r["value"]),
                         str(r["unit"] or ""), str(r["note"] or "")) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("quick", "full"), default="quick",
                        help="quick (default, about a minute) or full (larger problem sizes)")
    parser.add_argument("--backend", choices=("cpu", "cuda"), default="cpu", help="backend for simulation benchmarks")
    parser.add_argument("--only", nargs="+", metavar="MODULE", help=f"only these modules: {', '.join(BENCH_MODULES)}")
    parser.add_argument("--out", metavar="FILE",
                        help="also write the rows (and versions) as JSON to FILE (its folder must exist and be "
                             "writable, checked before the benchmarks run)")


def run(args: argparse.Namespace) -> int:
    if args.out is not None:  # before the benchmarks: one line, exit 2
        from .checks import check_output_path

        check_output_path(args.out, option="--out", kind="file")
    if args.backend == "cuda":
        from sigprop.kernels.backend import cuda_available

        if not cuda_available():
            raise InputError("--backend cuda: no usable CUDA GPU found (numba.cuda.is_available() is False)")
    rows, errors = collect(args.profile, args.backend, args.only)
    print(format_table(rows) if rows else "no benchmarks ran")
    if args.out:
        from ..cache import jsonable
        from ..runner import versions

        payload = {"profile": args.profile, "backend": args.backend, "machine": platform.machine(),
                   "versions": versions(args.backend), "rows": rows, "errors": errors}
        Path(args.out).write_text(json.dumps(jsonable(payload, finite=True), indent=1))
        print(f"wrote {args.out}")
    for e in errors:
        print(f"sigprop bench: error in {e}", file=sys.stderr)
    return 1 if errors else 0
