"""Compile every CUDA kernel of the engine to PTX (no GPU needed): ``python -m sigprop.kernels.ptx``.

Collects ``PTX_TARGETS`` (name, python function, signature) from :mod:`sigprop.kernels.explicit_cuda`,
:mod:`sigprop.kernels.gram_cuda` and the RNG-only benchmark kernel of :mod:`sigprop.kernels.bench`, compiles
each with ``numba.cuda.compile_ptx(fn, sig, cc=CC)`` and exits non-zero if any fails (CI runs it).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

__all__ = ["ptx_targets", "compile_target", "compile_all", "main", "MODULES", "DEFAULT_CC"]

MODULES = ("sigprop.kernels.explicit_cuda", "sigprop.kernels.gram_cuda", "sigprop.kernels.bench")
DEFAULT_CC = (9, 0)


def ptx_targets() -> list[tuple[str, object, tuple]]:
    """(module.kernel name, python function, signature) of every CUDA kernel."""
    out = []
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name, fn, sig in getattr(mod, "PTX_TARGETS"):
            out.append((f"{mod_name.rsplit('.', 1)[1]}.{name}", fn, tuple(sig)))
    return out


def compile_target(fn, sig, cc: tuple[int, int] = DEFAULT_CC) -> str:
    """PTX text of one kernel (raises on a compile error)."""
    from numba import cuda

    ptx, _resty = cuda.compile_ptx(fn, sig, cc=cc)
    return ptx


def compile_all(cc: tuple[int, int] = DEFAULT_CC, verbose: bool = True) -> list[tuple[str, bool, str]]:
    """Compile all targets; returns (name, ok, message) per kernel."""
    results = []
    for name, fn, sig in ptx_targets():
        t0 = time.perf_counter()
        try:
            ptx = compile_target(fn, sig, cc)
            ok = ".entry" in ptx
            msg = f"{len(ptx)} chars of PTX in {time.perf_counter() - t0:.1f} s" if ok else "no .entry in the PTX"
        except Exception as exc:  # report every failure, keep going
            ok, msg = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        results.append((name, ok, msg))
        if verbose:
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {msg}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigprop.kernels.ptx", description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability MAJOR.MINOR (default 9.0, H100)")
    args = parser.parse_args(argv)
    try:
        major, minor = (int(x) for x in args.cc.split("."))
    except ValueError:
        parser.error(f"--cc must look like 9.0, got {args.cc!r}")
    try:
        import numba.cuda  # noqa: F401
    except ImportError as exc:
        print(f"numba-cuda is not installed ({exc}); install sigprop[cuda]", file=sys.stderr)
        return 1
    results = compile_all((major, minor))
    failed = [n for n, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)}/{len(results)} kernels compiled for sm_{major}{minor}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
