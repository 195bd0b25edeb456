"""Where a simulation can run (CUDA availability: a real GPU or numba's simulator; free memory), and what the CPU and
CUDA engines share about custom activations (compiled-kernel cache, scalar derivative)."""
from __future__ import annotations

import os
import threading

__all__ = ["kernel_for_scalar", "custom_scalar_derivative", "device_helper", "cuda_simulator_enabled",
           "cuda_available", "host_memory_available", "gpu_memory_available"]


def cuda_simulator_enabled() -> bool:
    """True when numba's CUDA simulator is switched on (``NUMBA_ENABLE_CUDASIM=1`` before numba.cuda import)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_available() -> bool:
    """True when CUDA kernels can run: a usable GPU (``numba.cuda.is_available()``) or the simulator."""
    if cuda_simulator_enabled():
        return True
    try:
        from numba import cuda
    except ImportError:  # numba-cuda missing
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # driver problems: treat as unavailable
        return False


def host_memory_available() -> int:
    """Bytes of host memory available now: MemAvailable from /proc/meminfo, else free pages (os.sysconf)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse work


def gpu_memory_available() -> int:
    """Bytes of free memory on the current GPU (the simulator reports the host's)."""
    if cuda_simulator_enabled():
        return host_memory_available()
    from numba import cuda

    free, _total = cuda.current_context().get_memory_info()
    return int(free)


def device_helper(f):
    """An ``@numba.njit(inline='always')`` helper as a CUDA kernel may call it: the compiled helper itself on a GPU
    (and for PTX), its pure-Python function under numba's CUDA simulator, which cannot pass arrays into njit code."""
    import numba

    return f.py_func if numba.config.ENABLE_CUDASIM else f


_SCALAR_KERNELS: dict[tuple[str, int], tuple[object, object]] = {}
_SCALAR_LOCK = threading.RLock()


def kernel_for_scalar(family: str, act, build):
    """``build(act)`` compiled once per (kernel family, custom activation scalar) and cached.

    Keyed by ``id(act.scalar)``; the entry holds the scalar itself, so the id cannot be reused by another
    function while the compiled kernel is cached.
    """
    key = (family, id(act.scalar))
    with _SCALAR_LOCK:
        hit = _SCALAR_KERNELS.get(key)
        if hit is None:
            hit = (act.scalar, build(act))
            _SCALAR_KERNELS[key] = hit
        return hit[1]


FD_STEP = 1e-6  # step of the central difference for a custom activation without a scalar derivative


def custom_scalar_derivative(act):
    """``act.scalar_deriv``, or the central difference ``(phi(x+h) - phi(x-h)) / 2h``, ``h = 1e-6``, of ``act.scalar``
    (an ``inline='always'`` njit function, callable from CPU and CUDA kernels)."""
    if act.scalar_deriv is not None:
        return act.scalar_deriv
    import numba

    phi = act.scalar

    @numba.njit(inline="always")
    def dphi(x):
        return (phi(x + FD_STEP) - phi(x - FD_STEP)) / (2.0 * FD_STEP)

    return dphi
