"""The benchmark registry of ``sigprop bench``: every name maps to a bench module, library modules hold no benchmark
code, and each moved benchmark gives the rows (labels, units) it gave before the move (small sizes swapped in: no
timing is asserted)."""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from sigprop.kernels import bench_rfm, bench_training
from sigprop.kernels import rfm as rfm_module
from sigprop.kernels import training as training_module
from sigprop.theory import bench_equilibrium
from sigprop.theory.errors import InputError
from sigprop.validation import bench_measures
from sigprop.validation.cli.bench import BENCH_MODULES

ROW_KEYS = {"benchmark", "metric", "value", "unit", "note"}
# kernels/rainbow.py's benchmark is registered as it is until its engine has a bench module of its own
NOT_YET_MOVED = {"rainbow"}


def test_every_current_name_is_registered():
    assert set(BENCH_MODULES) == {"theory", "kernels", "equilibrium", "training", "rfm", "rainbow", "measures"}


@pytest.mark.parametrize("name", sorted(set(BENCH_MODULES) - NOT_YET_MOVED))
def test_registry_names_only_bench_modules(name):
    modname = BENCH_MODULES[name]
    last = modname.rsplit(".", 1)[1]
    assert last == "bench" or last.startswith("bench_"), modname
    assert callable(importlib.import_module(modname).run_benchmarks)


@pytest.mark.parametrize("modname", ["sigprop.theory.equilibrium", "sigprop.kernels.training", "sigprop.kernels.rfm",
                                     "sigprop.validation.measures"])
def test_library_modules_hold_no_benchmark_code(modname):
    module = importlib.import_module(modname)
    assert not hasattr(module, "run_benchmarks") and not hasattr(module, "BENCH_SHAPE")


@pytest.mark.parametrize("module", [bench_equilibrium, bench_training, bench_rfm, bench_measures])
def test_unknown_profile_is_refused_before_work(module):
    with pytest.raises(InputError, match="profile must be 'quick' or 'full', got 'slow'"):
        module.run_benchmarks("slow")


def _check_rows(rows, n, unit="s"):
    assert len(rows) == n
    for row in rows:
        assert set(row) == ROW_KEYS and row["unit"] == unit and row["value"] >= 0.0


def test_equilibrium_rows(monkeypatch):
    monkeypatch.setitem(bench_equilibrium.DEPTHS, "full", (100, 1000, 10_000))
    rows = bench_equilibrium.run_benchmarks("full")
    _check_rows(rows, 3)
    assert [r["benchmark"] for r in rows] == ["equilibrium_layer(L=100)", "equilibrium_layer(L=1000)",
                                              "equilibrium_layer(L=10000)"]
    assert all(r["metric"] == "wall time" and r["note"].startswith("l* = ") for r in rows)


def test_training_rows(monkeypatch):
    small = training_module.init_mlp
    monkeypatch.setattr(bench_training, "init_mlp", lambda d, o, depth, width, seed: small(d, o, 2, 8, seed=seed))
    rows = bench_training.run_benchmarks("quick")
    _check_rows(rows, 3)
    assert [(r["benchmark"], r["metric"]) for r in rows] == [
        ("train MLP depth 100 width 256, 1000 digits", "seconds per epoch"),
        ("train MLP depth 100 width 256, 1000 digits", "50 epochs (extrapolated)"),
        ("per-layer tangent-kernel alignment, depth 100, N=100, o=10", "wall time")]
    assert np.isclose(rows[1]["value"], 50 * rows[0]["value"])


def test_rfm_rows(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    small = rfm_module.rfm(X, X[:, 0] * X[:, 1], iters=1)
    monkeypatch.setattr(rfm_module, "rfm", lambda X, y, **kw: small)
    rows = bench_rfm.run_benchmarks("full")
    _check_rows(rows, 3)
    assert [r["benchmark"] for r in rows] == [
        "RFM fit, N=2000, d=64, 1 output, 5 iterations (default BLAS threads)",
        "RFM fit, N=2000, d=64, 1 output, 5 iterations (BLAS 1 thread)",
        "RFM fit, N=2000, d=64, 10 classes, 5 iterations (BLAS 1 thread)"]
    assert all("share of tr(M) on span(e1, e2)" in r["note"] for r in rows)


def test_measures_rows(monkeypatch):
    """The row format, on a small stack (the real N=2000, o=10, n=512 takes ~20 s on 2 busy cores)."""
    monkeypatch.setattr(bench_measures, "BENCH_SHAPE", (200, 10, 64))
    rows = bench_measures.run_benchmarks("quick")
    _check_rows(rows, 3)
    assert [r["benchmark"] for r in rows] == ["agop, N=200, o=10, n=64", "agop per_output, N=200, o=10, n=64",
                                              "agop centered, N=200, o=10, n=64"]
    assert all(r["value"] > 0 and "best of 3" in r["note"] for r in rows)
