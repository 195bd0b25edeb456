"""Benchmarks of the trainer (``sigprop bench --only training``): :func:`run_benchmarks`.

Training throughput of :func:`sigprop.kernels.learning.training.train` on the equilibrium experiment's network (depth
100, width 256, ReLU, 1000 digits, batch 32, float64, the trainer's default of one BLAS thread; the tangent-alignment
measure runs once, before training, on 20 samples), and the time of all 100 per-layer tangent-kernel alignments
(:func:`~sigprop.kernels.learning.training.layer_alignments`, N = 100, o = 10).  Rows as in docs/conventions.md.

Then the trainer against PyTorch (:func:`trainer_vs_torch`) on the network of the reference equilibrium protocol:
ReLU MLP 784 -> 256 x (L - 1) -> 10 with biases (L Linear layers), batch 128, SGD with momentum 0.9, cross-entropy,
MNIST-5k (:func:`~sigprop.kernels.learning.datasets.load_mnist5k`), float32 and float64, on 1 and 2 threads
(``blas_threads``; ``torch.set_num_threads``).  Both sides start from the same weights and take the same batches.
PyTorch is optional (``pip install 'sigprop[torch]'``): without it only sigprop's rows are given, and their notes
say why.  docs/benchmarks.md records the figures.
"""
from __future__ import annotations

import importlib
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from sigprop.theory.bench import check_profile

from . import training as _training
from .datasets import load_digits_data, load_mnist5k
from .training import TangentAlignment, init_mlp, layer_alignments, one_hot, train

__all__ = ["run_benchmarks", "trainer_vs_torch", "EPOCHS", "TORCH_PROFILES"]

EPOCHS: dict[str, int] = {"quick": 2, "full": 50}  # epochs timed per profile (quick: extrapolated to 50)

# Trainer against PyTorch, per profile: depths L (Linear layers), SGD steps per timed run, repeats (median)
TORCH_PROFILES: dict[str, tuple[tuple[int, ...], int, int]] = {"quick": ((4, 10), 4, 3), "full": ((10, 100), 10, 3)}
TORCH_DTYPES = ("float32", "float64")
TORCH_THREADS = (1, 2)
TORCH_WIDTH, TORCH_BATCH, TORCH_MOMENTUM = 256, 128, 0.9
# the reference code's learning rate at L = 10 and 100 (other depths: 0.001); the timing does not depend on it
_TORCH_LR = {10: 0.005, 100: 0.0001}


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Seconds per training epoch, 50 epochs (extrapolated from ``EPOCHS[profile]``), the alignment time, and the
    trainer against PyTorch (:func:`trainer_vs_torch`).

    Parameters
    ----------
    profile : {'quick', 'full'}
        'quick' trains 2 epochs and extrapolates to 50; 'full' trains 50.

    Returns
    -------
    list of dict
        Rows ``{"benchmark", "metric", "value", "unit", "note"}``: seconds per epoch, 50 epochs (goal < 300 s on 2
        cores), the wall time of the 100 per-layer alignments; then the rows of :func:`trainer_vs_torch`.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> EPOCHS["quick"], EPOCHS["full"]
    (2, 50)
    """
    check_profile(profile)
    return _trainer_rows(profile) + trainer_vs_torch(profile)


def _trainer_rows(profile: str) -> list[dict]:
    """The trainer's epoch time on the equilibrium experiment's network, and the per-layer alignment time."""
    X, y = load_digits_data(1000, seed=0)
    epochs = EPOCHS[profile]
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    # as the equilibrium experiment: the alignment measure runs once, before training (20 samples)
    train(mlp, X, y, epochs=epochs, lr=0.0006, measures=[TangentAlignment(X[:20], y[:20])], measure_final=False)
    dt = time.perf_counter() - t0
    rows = [{"benchmark": "train MLP depth 100 width 256, 1000 digits", "metric": "seconds per epoch",
             "value": dt / epochs, "unit": "s",
             "note": f"{epochs} epochs measured, batch 32, float64, 1 BLAS thread, full-set loss every epoch"},
            {"benchmark": "train MLP depth 100 width 256, 1000 digits",
             "metric": "50 epochs (extrapolated)" if epochs != 50 else "50 epochs",
             "value": dt / epochs * 50, "unit": "s", "note": "target < 300 s on 2 cores"}]
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    layer_alignments(mlp, X[:100], one_hot(y[:100], 10))
    rows.append({"benchmark": "per-layer tangent-kernel alignment, depth 100, N=100, o=10", "metric": "wall time",
                 "value": time.perf_counter() - t0, "unit": "s", "note": "100 kernels of 1000 x 1000"})
    return rows


# ------------------------------------------------------------------------------------------
# The trainer against PyTorch
# ------------------------------------------------------------------------------------------
def _import_torch():
    """``torch``, or None when it cannot be imported (it is an optional extra)."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else :func:`platform.processor`) and its number of logical CPUs."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"


def _load_average() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - platforms without getloadavg
        return "load average unavailable"


def _torch_model(torch, net, dtype: str):
    """A ``torch.nn.Sequential`` of Linear layers and ReLUs holding ``net``'s parameters (copies), in ``dtype``."""
    layers = []
    for i, (w, b) in enumerate(zip(net.W, net.b)):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=getattr(torch, dtype))
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w)))
            lin.bias.copy_(torch.from_numpy(np.array(b)))
        layers += [lin] if i == net.depth else [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


def _run_sigprop(net0, X, y, lr: float, steps: int, dtype: str, threads: int) -> tuple[float, float]:
    """Seconds of ``train`` for ``steps`` SGD steps (one epoch of ``X``, full-set loss before and after), final loss."""
    net = net0.copy()
    t0 = time.perf_counter()
    result = _training.train(net, X, y, lr=lr, momentum=TORCH_MOMENTUM, batch_size=TORCH_BATCH, epochs=1,
                             max_steps=steps, measure_init=False, measure_final=False, seed=0, dtype=dtype,
                             blas_threads=threads)
    return time.perf_counter() - t0, result.loss_history[-1]


def _run_torch(torch, net0, X, y, lr: float, steps: int, dtype: str, threads: int) -> tuple[float, float]:
    """The same as :func:`_run_sigprop` in PyTorch: same weights, same batches (``train``'s first-epoch order), the
    full-set loss before and after, ``torch.set_num_threads(threads)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = _torch_model(torch, net0, dtype)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=TORCH_MOMENTUM)
        Xt, yt = torch.from_numpy(X.astype(dtype)), torch.from_numpy(y.astype(np.int64))
        perm = torch.from_numpy(np.random.default_rng(0).permutation(X.shape[0]))
        loss_fn = torch.nn.functional.cross_entropy
        t0 = time.perf_counter()
        with torch.no_grad():
            loss_fn(model(Xt), yt).item()
        for s in range(steps):
            idx = perm[s * TORCH_BATCH:(s + 1) * TORCH_BATCH]
            opt.zero_grad()
            loss_fn(model(Xt[idx]), yt[idx]).backward()
            opt.step()
        with torch.no_grad():
            final = loss_fn(model(Xt), yt).item()
        return time.perf_counter() - t0, final
    finally:
        torch.set_num_threads(before)


def _time_pair(torch, net0, X, y, lr: float, steps: int, dtype: str, threads: int, repeats: int) -> dict:
    """Median seconds of each side (``'sigprop'``, and ``'torch'`` when available), run alternately ``repeats`` times
    (the first side alternates too) after one untimed warm-up step each; the final losses of the last runs."""
    runs = {"sigprop": lambda n: _run_sigprop(net0, X, y, lr, n, dtype, threads)}
    if torch is not None:
        runs["torch"] = lambda n: _run_torch(torch, net0, X, y, lr, n, dtype, threads)
    for run in runs.values():
        run(1)
    times: dict[str, list[float]] = {k: [] for k in runs}
    loss: dict[str, float] = {}
    for r in range(repeats):
        for name in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
            dt, loss[name] = runs[name](steps)
            times[name].append(dt)
    return {"seconds": {k: statistics.median(v) for k, v in times.items()}, "loss": loss}


def _row(benchmark: str, metric: str, value: float, unit: str, note: str) -> dict:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "note": note}


def trainer_vs_torch(profile: str = "quick") -> list[dict]:
    """Seconds per SGD step of :func:`~sigprop.kernels.learning.training.train` and of PyTorch on the protocol's
    network.

    For every depth L of ``TORCH_PROFILES[profile]``, dtype (float32, float64) and thread count (1, 2): one epoch
    of ``steps`` SGD steps on the first ``steps * 128`` MNIST-5k training images (batch 128, momentum 0.9,
    cross-entropy), timed as a whole -- both sides evaluate the full-set loss before and after, as ``train`` does
    every epoch -- by sigprop's ``train`` (``blas_threads``) and by the same network in PyTorch
    (``torch.nn.Linear``, ``torch.optim.SGD``, ``torch.set_num_threads``; same initial weights, same batches), the
    two run alternately ``repeats`` times, the median of each.

    Parameters
    ----------
    profile : {'quick', 'full'}
        'quick': L = 4 and 10, 4 steps, 3 repeats; 'full': L = 10 and 100, 10 steps, 3 repeats.

    Returns
    -------
    list of dict
        Per (L, dtype, threads): sigprop's seconds per SGD step, then (when ``torch`` imports) PyTorch's and the
        ratio sigprop / PyTorch.  The notes name the CPU, the load average, the repeats and, on the PyTorch rows,
        both final losses (the same computation, so they agree to rounding); without PyTorch the sigprop rows'
        notes say that its rows were skipped and how to install it.

    Raises
    ------
    InputError
        For a profile other than 'quick' or 'full'.

    Examples
    --------
    >>> TORCH_PROFILES["full"]
    ((10, 100), 10, 3)
    """
    check_profile(profile, who="trainer_vs_torch")
    depths, steps, repeats = TORCH_PROFILES[profile]
    torch = _import_torch()
    X, y = load_mnist5k("train", seed=0)
    n = min(X.shape[0], steps * TORCH_BATCH)
    steps = -(-n // TORCH_BATCH)
    X, y = X[:n], y[:n]
    cpu = _cpu_model()
    skipped = "" if torch is not None else ("; PyTorch rows skipped: torch is not importable "
                                            "(pip install 'sigprop[torch]')")
    rows = []
    for L in depths:
        lr = _TORCH_LR.get(L, 0.001)
        net = _training.init_mlp(X.shape[1], 10, depth=L - 1, width=TORCH_WIDTH, bias=True, seed=0)
        for dtype in TORCH_DTYPES:
            net0 = net.astype(dtype)
            for threads in TORCH_THREADS:
                load = _load_average()
                got = _time_pair(torch, net0, X, y, lr, steps, dtype, threads, repeats)
                sec, loss = got["seconds"], got["loss"]
                what = (f"trainer vs PyTorch: 784-{TORCH_WIDTH}x{L - 1}-10 (L={L}), batch {TORCH_BATCH}, {dtype}, "
                        f"{threads} thread{'s' if threads > 1 else ''}")
                common = (f"median of {repeats}, {steps} steps = one epoch of {n} MNIST-5k images with the full-set "
                          f"loss before and after; {cpu}; {load}")
                rows.append(_row(f"{what}: sigprop train", "seconds per SGD step", sec["sigprop"] / steps, "s",
                                 f"blas_threads={threads}; {common}{skipped}"))
                if torch is None:
                    continue
                rows.append(_row(f"{what}: PyTorch", "seconds per SGD step", sec["torch"] / steps, "s",
                                 f"torch {torch.__version__}, set_num_threads({threads}); same weights and batches; "
                                 f"final loss {loss['torch']:.10g} (sigprop {loss['sigprop']:.10g}); {common}"))
                rows.append(_row(f"{what}: sigprop / PyTorch", "time ratio", sec["sigprop"] / sec["torch"], "x",
                                 "> 1: sigprop slower"))
    return rows
