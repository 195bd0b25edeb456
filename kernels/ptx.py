"""Build every CUDA kernel of the engine for a GPU without one: ``python -m sigprop.kernels.ptx``.

Two steps per kernel, both on the CPU:

1. **PTX.** ``numba.cuda.compile_ptx(fn, sig, cc=CC)`` (NVVM) for every ``PTX_TARGETS`` entry of
   :mod:`sigprop.kernels.explicit_cuda`, :mod:`sigprop.kernels.gram_cuda`, :mod:`sigprop.kernels.rainbow_cuda` and
   the RNG-only benchmark kernel of :mod:`sigprop.kernels.bench`.
2. **SASS.** The PTX is assembled to machine code with ``ptxas -v -arch=sm_XY`` (shipped in the
   ``nvidia-cuda-nvcc-cu12`` wheel that the ``cuda`` extra installs), which reports per kernel the registers per
   thread, the stack frame, spill stores and loads, and static shared memory.  A kernel fails the check when

   - it spills (spill stores or loads > 0 bytes): its locals live in slow local memory;
   - it could not launch with the engine's block size ``T`` (the fourth field of a ``PTX_TARGETS`` entry): the
     register file of an SM holds 65,536 32-bit registers, allocated per warp in units of 256, so a block needs
     ``ceil(regs / 8) * 8 * T <= 65536`` (:data:`REGISTER_FILE`); at most 255 registers per thread
     (:data:`MAX_REGISTERS`); static shared memory at most 48 KiB per block (:data:`MAX_STATIC_SHARED`).

The command prints one line per kernel and exits non-zero if any kernel fails either step (CI runs it).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

__all__ = ["ptx_targets", "compile_target", "compile_all", "find_ptxas", "assemble", "parse_ptxas_report", "SassInfo",
           "launch_problems", "main", "MODULES", "DEFAULT_CC", "REGISTER_FILE", "MAX_REGISTERS", "MAX_STATIC_SHARED"]

MODULES = ("sigprop.kernels.explicit_cuda", "sigprop.kernels.gram_cuda", "sigprop.kernels.rainbow_cuda",
           "sigprop.kernels.bench")
DEFAULT_CC = (9, 0)
REGISTER_FILE = 65536  # 32-bit registers per SM (and per block) on sm_70 .. sm_90
MAX_REGISTERS = 255  # per thread
MAX_STATIC_SHARED = 48 * 1024  # bytes of static shared memory per block


def ptx_targets() -> list[tuple[str, object, tuple, int]]:
    """(module.kernel name, python function, signature, threads per block) of every CUDA kernel."""
    out = []
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name, fn, sig, threads in getattr(mod, "PTX_TARGETS"):
            out.append((f"{mod_name.rsplit('.', 1)[1]}.{name}", fn, tuple(sig), int(threads)))
    return out


def compile_target(fn, sig, cc: tuple[int, int] = DEFAULT_CC) -> str:
    """PTX text of one kernel (raises on a compile error)."""
    from numba import cuda

    ptx, _resty = cuda.compile_ptx(fn, sig, cc=cc)
    return ptx


def find_ptxas() -> str | None:
    """Path of ``ptxas``: the ``nvidia-cuda-nvcc-cu12`` wheel's copy, else one on ``PATH``, else None."""
    try:
        import nvidia.cuda_nvcc as nvcc  # namespace package of the wheel
    except ImportError:
        nvcc = None
    for root in getattr(nvcc, "__path__", []) if nvcc is not None else []:
        path = os.path.join(root, "bin", "ptxas")
        if os.access(path, os.X_OK):
            return path
    return shutil.which("ptxas")


@dataclasses.dataclass(frozen=True)
class SassInfo:
    """What ``ptxas -v`` reports for one kernel (bytes, except ``registers`` per thread)."""

    registers: int
    stack: int
    spill_stores: int
    spill_loads: int
    shared: int


_INT = r"(\d+)"


def parse_ptxas_report(text: str) -> SassInfo:
    """SassInfo from the ``ptxas -v`` report of a module with one entry function."""
    def grab(pattern: str, default: int | None = None) -> int:
        m = re.search(pattern, text)
        if m is None:
            if default is None:
                raise ValueError(f"ptxas -v output has no match for {pattern!r}:\n{text}")
            return default
        return int(m.group(1))

    return SassInfo(registers=grab(rf"Used {_INT} registers"),
                    stack=grab(rf"{_INT} bytes stack frame"),
                    spill_stores=grab(rf"{_INT} bytes spill stores"),
                    spill_loads=grab(rf"{_INT} bytes spill loads"),
                    shared=grab(rf"{_INT} bytes smem", 0))


def assemble(ptx: str, cc: tuple[int, int] = DEFAULT_CC, ptxas: str | None = None) -> SassInfo:
    """Assemble PTX to SASS for ``sm_{cc}`` with ``ptxas -v`` and return its resource report.

    Raises
    ------
    FileNotFoundError
        No ``ptxas`` (install ``sigprop[cuda]``).
    RuntimeError
        ``ptxas`` rejected the PTX (its message is included).
    """
    ptxas = ptxas or find_ptxas()
    if ptxas is None:
        raise FileNotFoundError("ptxas not found: install sigprop[cuda] (nvidia-cuda-nvcc-cu12) or put ptxas on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        res = subprocess.run([ptxas, "-v", f"-arch=sm_{cc[0]}{cc[1]}", src, "-o", os.path.join(tmp, "kernel.cubin")],
                             capture_output=True, text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"ptxas failed (exit {res.returncode}): {res.stderr.strip() or res.stdout.strip()}")
    return parse_ptxas_report(res.stdout + res.stderr)


def launch_problems(info: SassInfo, threads: int) -> list[str]:
    """Why a kernel with resources ``info`` spills or cannot launch with ``threads`` per block ([] if fine)."""
    problems = []
    if info.spill_stores or info.spill_loads:
        problems.append(f"spills ({info.spill_stores} bytes stores, {info.spill_loads} bytes loads)")
    if info.registers > MAX_REGISTERS:
        problems.append(f"{info.registers} registers per thread > {MAX_REGISTERS}")
    per_block = -(-info.registers // 8) * 8 * threads
    if per_block > REGISTER_FILE:
        problems.append(f"{info.registers} registers x {threads} threads per block needs {per_block} > {REGISTER_FILE}")
    if info.shared > MAX_STATIC_SHARED:
        problems.append(f"{info.shared} bytes of static shared memory > {MAX_STATIC_SHARED}")
    return problems


def compile_all(cc: tuple[int, int] = DEFAULT_CC, verbose: bool = True,
                sass: bool = True) -> list[tuple[str, bool, str]]:
    """Compile all targets to PTX (and, with ``sass``, assemble and check them); (name, ok, message) per kernel."""
    ptxas = find_ptxas() if sass else None
    if sass and ptxas is None:
        raise FileNotFoundError("ptxas not found: install sigprop[cuda] (nvidia-cuda-nvcc-cu12) or pass --no-sass")
    results = []
    for name, fn, sig, threads in ptx_targets():
        t0 = time.perf_counter()
        try:
            ptx = compile_target(fn, sig, cc)
            ok = ".entry" in ptx
            msg = f"{len(ptx)} chars of PTX" if ok else "no .entry in the PTX"
            if ok and sass:
                info = assemble(ptx, cc, ptxas)
                problems = launch_problems(info, threads)
                ok = not problems
                msg += (f"; SASS: {info.registers} registers, {info.stack} bytes stack, "
                        f"{info.spill_stores}/{info.spill_loads} bytes spill stores/loads, {info.shared} bytes smem, "
                        f"{threads} threads per block")
                if problems:
                    msg += "; " + "; ".join(problems)
            msg += f" ({time.perf_counter() - t0:.1f} s)"
        except Exception as exc:  # report every failure, keep going
            ok, msg = False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        results.append((name, ok, msg))
        if verbose:
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {msg}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sigprop.kernels.ptx", description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default="9.0", help="compute capability MAJOR.MINOR (default 9.0, H100/H200)")
    parser.add_argument("--no-sass", action="store_true", help="only compile to PTX; skip the ptxas assembly check")
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
    try:
        results = compile_all((major, minor), sass=not args.no_sass)
    except FileNotFoundError as exc:
        print(f"python -m sigprop.kernels.ptx: error: {exc}", file=sys.stderr)
        return 1
    failed = [n for n, ok, _ in results if not ok]
    what = "compiled" if args.no_sass else "compiled and assembled (no spills, launchable)"
    print(f"{len(results) - len(failed)}/{len(results)} kernels {what} for sm_{major}{minor}")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
