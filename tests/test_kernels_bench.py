"""The CPU benchmark (sigprop.kernels.bench): its plain NumPy baseline computes the statistics it claims to, its
rounds interleave the benchmarks, and it names the CPU and the vector width numba compiles for."""
import numpy as np

from sigprop.kernels.bench import plain_numpy_loop, workload_inputs


def test_plain_numpy_loop_statistics():
    # ReLU, C_W = 2, no bias: E[preact_gram at layer 1] = C_W X X^T / n0 exactly; judged at |z| < 4 (fixed seed)
    X = workload_inputs(P=2, n0=16, seed=3)
    out = plain_numpy_loop(X, depth=2, width=32, C_W=2.0, n_networks=400, seed=7)
    assert out["preact_gram"].shape == (400, 2, 2, 2) and out["preact_m4"].shape == (400, 2, 2)
    g = out["preact_gram"][:, 0]
    want = 2.0 * X @ X.T / X.shape[1]
    z = (g.mean(axis=0) - want) / (g.std(axis=0, ddof=1) / np.sqrt(g.shape[0]))
    assert np.all(np.abs(z) < 4), z
    np.testing.assert_allclose(out["preact_m2"], np.diagonal(out["preact_gram"], axis1=2, axis2=3), rtol=1e-12)
    # a wrong C_W is detected by the same statistic
    z_wrong = (g.mean(axis=0) - 1.5 * want) / (g.std(axis=0, ddof=1) / np.sqrt(g.shape[0]))
    assert np.max(np.abs(z_wrong)) > 8
    # post-activation Gram of ReLU: positive semi-definite, and at most the pre-activation Gram on the diagonal
    post = out["postact_gram"]
    assert np.all(np.diagonal(post, axis1=2, axis2=3) <= np.diagonal(out["preact_gram"], axis1=2, axis2=3) + 1e-12)
    assert np.all(np.linalg.eigvalsh(post) > -1e-12)


def test_rounds_interleave_every_benchmark():
    # each round runs every benchmark once, in turn (a load change falls on baseline and engine alike)
    from sigprop.kernels.bench import _timed_rounds

    calls = []
    t = _timed_rounds({"base": lambda: calls.append("base"), "engine": lambda: calls.append("engine")}, 3)
    assert calls == ["base", "engine"] * 3
    assert set(t) == {"base", "engine"} and all(v.shape == (3,) and np.all(v >= 0) for v in t.values())


def test_spread_note_gives_median_and_range():
    from sigprop.kernels.bench import _spread

    note = _spread(np.array([0.9, 1.0, 1.2]))
    assert note == "median of 3 interleaved rounds, range 0.9 to 1.2 (-10% / +20%)"


def test_cpu_row_names_the_cpu_and_the_loop_vector_width():
    from sigprop.kernels.bench import _cpu_row, cpu_description, loop_vector_width

    d = cpu_description()
    assert set(d) == {"model", "llvm_cpu", "features"} and d["model"] and d["llvm_cpu"]
    row = _cpu_row()
    assert row["value"] == loop_vector_width() and row["value"] in (64, 128, 256, 512) and row["unit"] == "bit"
    assert d["model"] in row["note"] and f"LLVM CPU {d['llvm_cpu']}" in row["note"]


def test_loop_vector_width_is_the_widest_unless_the_process_asks_for_256_bits():
    # on an AVX-512 CPU the kernels' loops are 512 bits wide (simd.prefer_wide_vectors), although LLVM prefers 256 bits
    # on Intel's AVX-512 cores; NUMBA_CPU_FEATURES=+prefer-256-bit (a user's explicit choice) keeps them at 256
    import os
    import subprocess
    import sys

    import llvmlite.binding as ll
    import pytest

    if not ll.get_host_cpu_features().get("avx512f"):
        pytest.skip("needs an AVX-512 CPU")
    code = "from sigprop.kernels.bench import loop_vector_width as w; print(w())"
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    widths = {}
    for features in (None, "-prefer-256-bit", "+prefer-256-bit"):
        env = dict(base) if features is None else dict(base, NUMBA_CPU_FEATURES=features)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        widths[features] = int(out.stdout.split()[-1])
    assert widths == {None: 512, "-prefer-256-bit": 512, "+prefer-256-bit": 256}
