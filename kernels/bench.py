"""Benchmarks of the Monte-Carlo engine (``sigprop bench`` collects :func:`run_benchmarks`).

Workload (both backends): ReLU, C_W = 2, P = 8 inputs of dimension 64, width n = 512, depth L = 20.  Throughput
is layer-samples per second, ``S * L / seconds`` (S networks per run), with JIT compilation excluded (every engine
is warmed up on a tiny run first).

CPU: two plain NumPy baselines, ``explicit`` and ``gram`` side by side, and the speed-ups over each
baseline.  The baselines are (1) the ``numpy`` method, the NumPy reference that draws every weight matrix
with the NumPy twin of the counter-based generator (:mod:`~sigprop.kernels.rng_numpy`, so it reproduces
``explicit``'s numbers) and multiplies; (2) :func:`plain_numpy_loop`, the same loop with NumPy's own
fastest normals (``numpy.random.Generator.standard_normal``, PCG64 + ziggurat), the plain NumPy loop a user
would write; each is timed with the default BLAS threads and with one thread, and per round the faster is used.
Both baselines run in one Python thread; the engines are timed with all numba threads (the speed-ups the
goals refer to, against the plain loop) and pinned to one thread (per-thread speed-ups).  Everything is timed in
interleaved rounds (:data:`ROUNDS`; each round runs every benchmark once, short runs of :data:`RUN_NETWORKS`
networks), so that a change of the machine's load falls on baseline and engine alike: each ratio is taken round by
round and reported as the median with its range over the rounds.  Also: the normals per second of ``explicit``
(its weights) and of ``gram`` (``n P`` per layer; through ``simulate`` and the chain kernel alone) against an
RNG-only kernel that draws with the same generator (the bound), the CPU's name and the vector width numba compiles
its loops for (:func:`cpu_description`, :func:`loop_vector_width`), and peak memory of ``explicit`` (tracemalloc:
NumPy buffers) at L = 5 and L = 20 (working memory is O(S n P), independent of L).  CUDA (``backend='cuda'``):
``explicit`` at n = 512 and 4096, ``gram``, and the fraction of an RNG-only CUDA kernel's normal-generation rate
that ``explicit`` reaches.
"""
from __future__ import annotations

import math
import time
import tracemalloc
from functools import partial

import numba
import numpy as np
from numba import prange

from sigprop.theory.bench import check_profile
from sigprop.theory.errors import InputError

from .device_activations import fingerprinted
from .rng import STREAM_WEIGHTS, draw_pairs_into, normal_pair
from .simd import dot_lanes, prefer_wide_vectors

try:  # numba-cuda (optional): only the CUDA benchmarks and the PTX check use it
    from numba import cuda as _cuda
except ImportError:  # pragma: no cover
    _cuda = None

__all__ = ["run_benchmarks", "workload_inputs", "rng_only_cpu", "plain_numpy_loop", "cpu_description",
           "loop_vector_width", "PTX_TARGETS"]

P_INPUTS, N0, WIDTH, DEPTH, NETWORKS = 8, 64, 512, 20, 200
CUDA_WIDTHS = (512, 4096)  # explicit-method widths of the CUDA benchmark
CUDA_NETWORKS_WIDE = 50  # networks at the widest width in the quick profile
CUDA_RNG_NORMALS = {"quick": 1 << 28, "full": 1 << 30}  # normals drawn by the RNG-only CUDA kernel
CUDA_RNG_LAUNCH = (256, 32)  # threads per block, blocks per multiprocessor


def workload_inputs(P: int = P_INPUTS, n0: int = N0, seed: int = 0) -> np.ndarray:
    """The benchmark inputs: (P, n0) standard normal entries."""
    return np.random.default_rng(seed).standard_normal((P, n0))


@partial(fingerprinted, error_model="numpy")  # cached; named with the device fingerprint
def _rng_only_network(seed, s, widths_in, widths_out):
    # every normal is read once, by an 8-lane vector sum (simd.dot_lanes: one 512-bit multiply and add per 8 pairs,
    # about 3% of the generation's time), so that the bound is the generator's rate: a scalar running sum here
    # (one dependent addition per pair) cost 10% (one thread) to 20% (two threads) of the kernel's time
    acc = 0.0
    E = np.empty((widths_in.max() + 1) // 2)
    O = np.empty((widths_in.max() + 1) // 2)
    for l in range(widths_in.shape[0]):
        npairs = (widths_in[l] + 1) // 2
        for i in range(widths_out[l]):
            draw_pairs_into(0, seed, STREAM_WEIGHTS, s, l + 1, i, 0, 0, 1, npairs, E, O)
            acc += dot_lanes(E, O, npairs)
    return acc


@partial(fingerprinted, parallel=True)
def _rng_only_cpu(seed, S, widths_in, widths_out, out):
    for s in prange(S):
        out[s] = _rng_only_network(seed, s, widths_in, widths_out)


def rng_only_cpu(S: int, n0: int, widths, seed: int = 0) -> float:
    """Draw the explicit method's weight normals (n_l x n_{l-1} per layer and network), row by row with the
    generator the CPU engine uses (:func:`rng.draw_pairs_into`), and nothing else; return the number drawn per
    second."""
    w_in = np.array([n0] + list(widths[:-1]), dtype=np.int64)
    w_out = np.array(widths, dtype=np.int64)
    out = np.empty(S)
    _rng_only_cpu(np.uint64(seed), S, w_in[:1], w_out[:1], np.empty(S))  # warm-up (compile)
    t0 = time.perf_counter()
    _rng_only_cpu(np.uint64(seed), S, w_in, w_out, out)
    dt = time.perf_counter() - t0
    return float(np.sum(w_in * w_out + (w_in % 2) * w_out)) * S / dt


def plain_numpy_loop(X: np.ndarray, depth: int, width: int, C_W: float, n_networks: int,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """ReLU network statistics by the plainest fast NumPy loop: per layer a fresh N(0, 1) weight matrix from
    ``numpy.random.default_rng(seed)`` (PCG64, ziggurat; written into one preallocated buffer), then
    ``z = sqrt(C_W / n_prev) W h``, ``h = max(z, 0)``; returns the same statistics as ``simulate``
    (``preact_gram``, ``postact_gram`` (S, L, P, P), ``preact_m2``, ``preact_m4`` (S, L, P)), no bias.

    A benchmark baseline only: its random numbers are NumPy's, not the engines' counter-based ones."""
    X = np.asarray(X, dtype=np.float64)
    P, n0 = X.shape
    gen = np.random.default_rng(seed)
    out = {"preact_gram": np.empty((n_networks, depth, P, P)), "postact_gram": np.empty((n_networks, depth, P, P)),
           "preact_m2": np.empty((n_networks, depth, P)), "preact_m4": np.empty((n_networks, depth, P))}
    W0 = np.empty((width, n0))
    W = np.empty((width, width))
    for s in range(n_networks):
        h = X.T
        for l in range(depth):
            n_prev = h.shape[0]
            Wl = W0 if l == 0 else W
            gen.standard_normal(out=Wl)
            z = math.sqrt(C_W / n_prev) * (Wl @ h)
            z2 = z * z
            out["preact_gram"][s, l] = z.T @ z / width
            out["preact_m2"][s, l] = z2.mean(axis=0)
            out["preact_m4"][s, l] = (z2 * z2).mean(axis=0)
            h = np.maximum(z, 0.0)
            out["postact_gram"][s, l] = h.T @ h / width
    return out


def _weight_normals(S: int, n0: int, widths) -> float:
    dims = [n0] + list(widths)
    return float(S * sum(dims[i] * dims[i + 1] for i in range(len(widths))))


def _timed(fn, repeat: int = 1) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _row(benchmark, metric, value, unit, note=""):
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "note": note}


def _sim(method, backend, S, depth=DEPTH, width=WIDTH, X=None):
    from .simulate import simulate

    X = workload_inputs() if X is None else X
    return simulate(X, depth=depth, width=width, activation="relu", C_W=2.0, n_networks=S, method=method,
                    backend=backend, seed=1)


def cpu_description() -> dict[str, str]:
    """What numba compiles for on this machine: ``model`` (the CPU's name from /proc/cpuinfo, else
    ``platform.processor()``), ``llvm_cpu`` (LLVM's name of the target CPU: ``NUMBA_CPU_NAME`` if set, else the
    host's), ``features`` (``NUMBA_CPU_FEATURES`` if set, else empty: the CPU's own).

    Examples
    --------
    >>> sorted(cpu_description())
    ['features', 'llvm_cpu', 'model']
    """
    import platform

    import llvmlite.binding as ll

    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"model": model or platform.processor() or platform.machine(),
            "llvm_cpu": numba.config.CPU_NAME or ll.get_host_cpu_name(),
            "features": numba.config.CPU_FEATURES or ""}


@numba.njit(error_model="numpy")
def _width_probe(x, y, c):
    prefer_wide_vectors()  # as the kernels' functions that hold the generator's and the activation's loops
    for i in range(x.shape[0]):
        x[i] = x[i] * c + y[i]


def loop_vector_width() -> int:
    """Bits of the widest vector register in the machine code of a numba loop (``x[i] = x[i] c + y[i]``) compiled
    as the CPU kernels compile theirs (marked with :func:`simd.prefer_wide_vectors`) with this process's settings:
    the width at which LLVM vectorises the engines' numba loops, among them the generator's
    (:func:`rng.draw_pairs_into`) and the activations'; 64 if it does not vectorise.  (The lane sums and row updates
    of :mod:`sigprop.kernels.simd` are 8-wide whatever this says: 512-bit with AVX-512.)

    Examples
    --------
    >>> loop_vector_width() in (64, 128, 256, 512)
    True
    """
    import re

    x = np.ones(64)
    _width_probe(x, x.copy(), 2.0)
    asm = _width_probe.inspect_asm(_width_probe.signatures[0])
    widths = [bits for reg, bits in (("zmm", 512), ("ymm", 256), ("xmm", 128))
              if re.search(r"\tv(?:mul|add|fmadd\w*)pd\s[^\n]*%" + reg, asm)]
    return max(widths, default=64)


def _cpu_row() -> dict:
    d = cpu_description()
    feats = f", NUMBA_CPU_FEATURES={d['features']}" if d["features"] else ""
    return _row("cpu", "vector width of the kernels' numba loops", loop_vector_width(), "bit",
                f"{d['model']}; LLVM CPU {d['llvm_cpu']}{feats}; {numba.get_num_threads()} numba threads; gram lane "
                "sums and row updates are 8-wide intrinsics (kernels.simd)")


def _timed_rounds(fns: dict, rounds: int) -> dict[str, np.ndarray]:
    """Seconds of every function in each of ``rounds`` rounds; a round runs each once, in turn, so that a change of
    the machine's load falls on all of them alike (ratios are taken round by round, then their median)."""
    t = {k: np.empty(rounds) for k in fns}
    for r in range(rounds):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[k][r] = time.perf_counter() - t0
    return t


def _one_thread(fn):
    """``fn`` run with numba pinned to one thread."""
    def run():
        nthreads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(nthreads)
    return run


def _one_blas_thread(fn):
    """``fn`` run with BLAS pinned to one thread (threadpoolctl)."""
    def run():
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            return fn()
    return run


def _spread(r: np.ndarray) -> str:
    """The spread of per-round values around their median, for the notes."""
    med = float(np.median(r))
    return (f"median of {r.size} interleaved rounds, range {r.min():.4g} to {r.max():.4g} "
            f"({100 * (r.min() / med - 1):+.0f}% / {100 * (r.max() / med - 1):+.0f}%)")


# Per profile: interleaved rounds, and the networks of one timed run of each benchmark (the baselines' runs are
# short; their medians over the rounds make the ratios stable).
ROUNDS = {"quick": 5, "full": 9}
RUN_NETWORKS = {"quick": {"numpy": 2, "loop": 4, "explicit": 20, "gram": NETWORKS, "rng": 8},
                "full": {"numpy": 5, "loop": 10, "explicit": 50, "gram": NETWORKS, "rng": 20}}


def _cpu_runs(S: dict[str, int], X: np.ndarray) -> tuple[dict, dict[str, float]]:
    """The timed functions of one round and the work of each (layer-samples; normals for the RNG-only kernel)."""
    from ..theory.activations import activation
    from .gram_cpu import run_gram_cpu

    L = DEPTH
    w_in = np.array([N0] + [WIDTH] * (L - 1), dtype=np.int64)
    w_out = np.full(L, WIDTH, dtype=np.int64)
    relu = activation("relu")
    loop = partial(plain_numpy_loop, X, L, WIDTH, 2.0, S["loop"], seed=1)
    fns = {
        "numpy (default BLAS threads)": lambda: _sim("numpy", "cpu", S["numpy"]),
        "numpy (BLAS 1 thread)": _one_blas_thread(lambda: _sim("numpy", "cpu", S["numpy"])),
        "plain numpy loop (default BLAS threads)": loop,
        "plain numpy loop (BLAS 1 thread)": _one_blas_thread(loop),
        "explicit": lambda: _sim("explicit", "cpu", S["explicit"]),
        "explicit 1": _one_thread(lambda: _sim("explicit", "cpu", S["explicit"])),
        "gram": lambda: _sim("gram", "cpu", S["gram"]),
        "gram 1": _one_thread(lambda: _sim("gram", "cpu", S["gram"])),
        "gram kernel": lambda: run_gram_cpu(X, [WIDTH] * L, relu, 2.0, 0.0, S["gram"], 1),
        "rng": lambda: _rng_only_cpu(np.uint64(0), S["rng"], w_in, w_out, np.empty(S["rng"])),
    }
    work = {k: float(S["numpy" if k.startswith("numpy") else "loop" if k.startswith("plain") else k.split()[0]] * L)
            for k in fns}
    work["rng"] = float(np.sum(w_in * w_out)) * S["rng"]
    _rng_only_cpu(np.uint64(0), 1, w_in[:1], w_out[:1], np.empty(1))  # warm-up (compile)
    return fns, work


def _memory_rows(S_ex: int) -> list[dict]:
    """Peak NumPy memory (tracemalloc) of ``explicit`` at L = 5 and L = 20: O(S n P), independent of L."""
    rows = []
    for depth in (5, 20):
        tracemalloc.start()
        _sim("explicit", "cpu", S_ex, depth=depth)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append(_row(f"cpu explicit peak memory L={depth}", "tracemalloc peak", peak / 2**20, "MiB",
                         f"S={S_ex}; model: 6 S n P x 8 B = {6 * S_ex * WIDTH * P_INPUTS * 8 / 2**20:.1f} MiB work "
                         f"+ outputs {S_ex * depth * (2 * P_INPUTS**2 + 2 * P_INPUTS) * 8 / 2**20:.1f} MiB"))
    return rows


def _cpu_benchmarks(profile: str) -> list[dict]:
    S = RUN_NETWORKS[profile]
    rounds = ROUNDS[profile]
    L = DEPTH
    tag = f"relu C_W=2 P={P_INPUTS} n0={N0} n={WIDTH} L={L}"
    for m in ("numpy", "explicit", "gram"):  # warm up (JIT) on tiny runs
        _sim(m, "cpu", 2, depth=2, width=8)
    fns, work = _cpu_runs(S, workload_inputs())
    t = _timed_rounds(fns, rounds)
    thr = {k: work[k] / t[k] for k in fns}  # per round
    nthreads = numba.get_num_threads()
    rows = [_cpu_row()]
    base = {}
    for name, what in (("numpy", "the numpy method: NumPy reference, weights from the NumPy twin of the engines' "
                                  "generator"),
                       ("plain numpy loop", "numpy.random standard_normal (PCG64 ziggurat) + BLAS, same statistics")):
        for label in ("default BLAS threads", "BLAS 1 thread"):
            k = f"{name} ({label})"
            rows.append(_row(f"cpu {k}", "throughput", np.median(thr[k]), "layer-samples/s",
                             f"{tag}, S={S['numpy' if name == 'numpy' else 'loop']} per run; {what}; "
                             f"{_spread(thr[k])}"))
        # per round the faster of the two BLAS settings
        base[name] = np.maximum(thr[f"{name} (default BLAS threads)"], thr[f"{name} (BLAS 1 thread)"])
    for m in ("explicit", "gram"):
        rows.append(_row(f"cpu {m}", "throughput", np.median(thr[m]), "layer-samples/s",
                         f"{tag}, S={S[m]}, {nthreads} threads; {_spread(thr[m])}"))
        rows.append(_row(f"cpu {m} (1 thread)", "throughput", np.median(thr[m + ' 1']), "layer-samples/s",
                         f"{tag}, S={S[m]}; {_spread(thr[m + ' 1'])}"))
    rows += _speedup_rows(thr, base, nthreads)
    rows += _bound_rows(thr)
    return rows + _memory_rows(NETWORKS if profile == "full" else 50)


def _speedup_rows(thr: dict[str, np.ndarray], base: dict[str, np.ndarray], nthreads: int) -> list[dict]:
    """Speed-ups of the engines over the plain NumPy loop (the goals) and over the numpy method, round by round
    against the baseline's faster BLAS setting of the same round (medians and spreads)."""
    rows = []
    loop = "plain numpy loop"
    for m, goal in (("explicit", 5), ("gram", 300)):
        r = thr[m] / base[loop]
        rows.append(_row(f"cpu {m}/{loop}", "speed-up", np.median(r), "x",
                         f"goal >= {goal}; engine on {nthreads} threads, loop on one Python thread (faster BLAS "
                         f"setting); {_spread(r)}"))
        r = thr[m + " 1"] / base[loop]
        rows.append(_row(f"cpu {m}/{loop}, 1 thread each", "speed-up", np.median(r), "x",
                         f"engine pinned to one thread; {_spread(r)}"))
        r = thr[m] / base["numpy"]
        rows.append(_row(f"cpu {m}/numpy", "speed-up", np.median(r), "x",
                         f"against the numpy method (NumPy-twin generator, ~50 ns/normal); {nthreads} threads; "
                         f"{_spread(r)}"))
    return rows


def _bound_rows(thr: dict[str, np.ndarray]) -> list[dict]:
    """Normals per second of the engines against the RNG-only kernel's, round by round (the generation bound)."""
    L = DEPTH
    per_sample = _weight_normals(1, N0, [WIDTH] * L) / L  # explicit: weight normals per layer-sample
    ex_rate = thr["explicit"] * per_sample
    bound = thr["rng"]
    gram_rate = thr["gram"] * WIDTH * P_INPUTS
    kernel_rate = thr["gram kernel"] * WIDTH * P_INPUTS
    return [
        _row("cpu explicit", "weight normals/s", np.median(ex_rate), "1/s", "n_l n_{l-1} per layer, regenerated"),
        _row("cpu rng-only kernel", "normals/s", np.median(bound), "1/s",
             f"Philox + Box-Muller (draw_pairs_into), same threads; {_spread(bound)}"),
        _row("cpu explicit vs rng bound", "fraction", np.median(ex_rate / bound), "",
             f"1 = generation-bound; {_spread(ex_rate / bound)}"),
        _row("cpu gram", "normals/s", np.median(gram_rate), "1/s", "n P per layer (simulate, with its range checks)"),
        _row("cpu gram vs rng bound", "fraction", np.median(gram_rate / bound), "", _spread(gram_rate / bound)),
        _row("cpu gram chain kernel", "normals/s", np.median(kernel_rate), "1/s",
             "the chain alone (gram_cpu.run_gram_cpu, without simulate's argument and range checks)"),
        _row("cpu gram chain kernel vs rng bound", "fraction", np.median(kernel_rate / bound), "",
             _spread(kernel_rate / bound)),
    ]


# ------------------------------------------------------------------------------------------
# CUDA
# ------------------------------------------------------------------------------------------
def k_rng_only(seed, total_pairs, npairs_row, out):
    """Thread k sums the normal pairs k, k + stride, ... (pair index -> (row, column pair) of layer 1)."""
    k = _cuda.grid(1)
    stride = _cuda.gridsize(1)
    acc = 0.0
    j = k
    while j < total_pairs:
        row = j // npairs_row
        a, b = normal_pair(seed, STREAM_WEIGHTS, 0, 1, row, j - row * npairs_row)
        acc += a + b
        j += stride
    if k < out.shape[0]:
        out[k] = acc


PTX_TARGETS: list[tuple[str, object, tuple, int]] = [  # (name, kernel, signature, threads per block)
    ("k_rng_only", k_rng_only, (numba.types.uint64, numba.types.int64, numba.types.int64,
                                numba.types.Array(numba.types.float64, 1, "C")), CUDA_RNG_LAUNCH[0]),
]


def rng_only_cuda(total_normals: int, seed: int = 0, threads: int = 256, blocks_per_sm: int = 32) -> float:
    """Normals per second of the RNG-only CUDA kernel (Philox + Box-Muller, one sum per thread)."""
    from numba import cuda

    kern = cuda.jit(k_rng_only)
    blocks = blocks_per_sm * int(getattr(cuda.get_current_device(), "MULTIPROCESSOR_COUNT", 1))  # 1 in the simulator
    out = cuda.device_array(threads * blocks)
    npairs_row = 1 << 12
    kern[blocks, threads](np.uint64(seed), np.int64(threads * blocks), np.int64(npairs_row), out)
    cuda.synchronize()
    pairs = total_normals // 2
    t0 = time.perf_counter()
    kern[blocks, threads](np.uint64(seed), np.int64(pairs), np.int64(npairs_row), out)
    cuda.synchronize()
    return 2 * pairs / (time.perf_counter() - t0)


def _cuda_benchmarks(profile: str) -> list[dict]:
    from numba import cuda

    full = profile != "quick"
    rows = []
    dev = cuda.get_current_device()
    name = getattr(dev, "name", "CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else str(name)
    for m in ("explicit", "gram"):
        _sim(m, "cuda", 2, depth=2, width=8)
    threads, per_sm = CUDA_RNG_LAUNCH
    bound = rng_only_cuda(CUDA_RNG_NORMALS[profile], threads=threads, blocks_per_sm=per_sm)
    rows.append(_row("cuda rng-only kernel", "normals/s", bound, "1/s", name))
    for n in CUDA_WIDTHS:
        S = NETWORKS if (full or n != max(CUDA_WIDTHS)) else CUDA_NETWORKS_WIDE
        t = _timed(lambda: (_sim("explicit", "cuda", S, width=n), cuda.synchronize()))
        rate = _weight_normals(S, N0, [n] * DEPTH) / t
        rows.append(_row(f"cuda explicit n={n}", "throughput", S * DEPTH / t, "layer-samples/s",
                         f"{name}, relu P={P_INPUTS} L={DEPTH} S={S}"))
        rows.append(_row(f"cuda explicit n={n} vs rng bound", "fraction", rate / bound, "",
                         f"{rate:.3g} weight normals/s"))
    t = _timed(lambda: _sim("gram", "cuda", NETWORKS), repeat=3)
    rows.append(_row("cuda gram", "throughput", NETWORKS * DEPTH / t, "layer-samples/s", f"{name}, n={WIDTH}"))
    return rows


def run_benchmarks(profile: str = "quick", backend: str = "cpu") -> list[dict]:
    """Benchmark rows ``{benchmark, metric, value, unit, note}`` (profile 'quick' or 'full')."""
    check_profile(profile, who=None)
    if backend == "cpu":
        return _cpu_benchmarks(profile)
    if backend == "cuda":
        from .backend import cuda_available

        if not cuda_available():
            raise InputError("backend='cuda' benchmarks need a CUDA GPU (numba.cuda.is_available() is False)")
        return _cuda_benchmarks(profile)
    raise InputError(f"backend must be 'cpu' or 'cuda', got {backend!r}")
