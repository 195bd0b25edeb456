"""The benchmark registry of ``sigprop bench``: every name maps to a bench module, library modules hold no benchmark
code, and each moved benchmark gives the rows (labels, units) it gave before the move (small sizes swapped in: no
timing is asserted)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

from sigprop.kernels import bench_rainbow
from sigprop.kernels.learning import bench_rfm, bench_training
from sigprop.kernels.learning import rfm as rfm_module
from sigprop.kernels.learning import training as training_module
from sigprop.theory import bench_equilibrium
from sigprop.theory.errors import InputError
from sigprop.validation import bench_measures
from sigprop.validation.cli.bench import BENCH_MODULES, collect

ROW_KEYS = {"benchmark", "metric", "value", "unit", "note"}
ROOT = Path(__file__).resolve().parents[1]


def test_every_current_name_is_registered():
    assert set(BENCH_MODULES) == {"theory", "kernels", "equilibrium", "ntk", "ntk_mc", "training", "rfm",
                                  "rainbow", "measures"}


@pytest.mark.parametrize("name", sorted(BENCH_MODULES))
def test_registry_names_only_bench_modules(name):
    modname = BENCH_MODULES[name]
    last = modname.rsplit(".", 1)[1]
    assert last == "bench" or last.startswith("bench_"), modname
    assert callable(importlib.import_module(modname).run_benchmarks)


@pytest.mark.parametrize("modname", ["sigprop.theory.equilibrium", "sigprop.kernels.learning.training",
                                     "sigprop.kernels.learning.rfm",
                                     "sigprop.validation.measures", "sigprop.kernels.rainbow"])
def test_library_modules_hold_no_benchmark_code(modname):
    module = importlib.import_module(modname)
    assert not hasattr(module, "run_benchmarks") and not hasattr(module, "BENCH_SHAPE")


def test_only_bench_modules_define_run_benchmarks():
    """A static scan of every package module: ``def run_benchmarks`` only in ``bench`` / ``bench_*`` modules, and
    every one of those is in the registry."""
    defining = set()
    for folder in ("theory", "kernels", "validation"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(node, ast.FunctionDef) and node.name == "run_benchmarks" for node in tree.body):
                defining.add(".".join(("sigprop", *path.relative_to(ROOT).with_suffix("").parts)))
    assert defining == set(BENCH_MODULES.values())
    assert all(m.rsplit(".", 1)[1] == "bench" or m.rsplit(".", 1)[1].startswith("bench_") for m in defining)


@pytest.mark.parametrize("module", [bench_equilibrium, bench_training, bench_rfm, bench_measures, bench_rainbow])
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
    monkeypatch.setattr(bench_training, "trainer_vs_torch", lambda profile: [])  # its rows: tests/test_bench_torch.py
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


def test_rainbow_rows_through_the_registry(monkeypatch):
    """``sigprop bench --only rainbow`` (the registry's collect) runs bench_rainbow: per width the white and
    covariance wall times and their ratio with default and one BLAS thread, then the three engines side by side
    (real runs on a small workload: P=4 inputs + m=2 anchors, d=6, depth 2, n=16, 2 networks, one repeat)."""
    monkeypatch.setattr(bench_rainbow, "PROBLEM", (4, 2, 6, 2, 2))
    monkeypatch.setitem(bench_rainbow.PROFILES, "quick", ((16,), 1))
    rows, errors = collect("quick", only=["rainbow"], log=lambda msg: None)
    assert errors == [] and {r.pop("module") for r in rows} == {"rainbow"}
    size = "P=4 inputs + m=2 anchors, d=6, depth 2, n=16, 2 networks"
    expected = []
    for threads in ("default BLAS threads", "BLAS 1 thread"):
        expected += [(f"rainbow simulation, white weights, {size} ({threads})", "wall time", "s"),
                     (f"rainbow simulation, covariance weights, {size} ({threads})", "wall time", "s"),
                     (f"rainbow simulation, covariance / white, {size} ({threads})", "cost ratio", "x")]
    expected += [(f"rainbow engines, covariance weights, {size}: {m}", "layer-samples/s", "1/s")
                 for m in ("numpy", "explicit", "gram")]
    for m in ("explicit", "gram"):
        expected += [(f"rainbow engines, {m} / numpy, {size}", "speed-up", "x"),
                     (f"rainbow engines, {m}: covariance / white, {size}", "cost ratio", "x")]
    assert [(r["benchmark"], r["metric"], r["unit"]) for r in rows] == expected
    assert all(set(r) == ROW_KEYS and r["value"] > 0 for r in rows)
    assert rows[0]["note"] == "best of 1, NumPy float64"
    assert rows[2]["value"] == pytest.approx(rows[1]["value"] / rows[0]["value"])  # covariance / white
    numpy_rate, explicit_rate, gram_rate = (r["value"] for r in rows[6:9])
    assert rows[9]["value"] == pytest.approx(explicit_rate / numpy_rate)  # speed-up = ratio of the rates
    assert rows[11]["value"] == pytest.approx(gram_rate / numpy_rate)
    assert rows[6]["note"].startswith("best of 1 (") and rows[6]["note"].endswith("compile excluded")


def test_rainbow_bad_backend_is_refused_before_work():
    with pytest.raises(InputError, match="backend must be one of"):
        bench_rainbow.run_benchmarks("quick", backend="tpu")
