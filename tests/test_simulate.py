"""sigprop.kernels.simulate: argument validation before any work, the result object, batching, memory
checks, dispatch to the three methods, custom activations, and the ``sigprop simulate`` CLI."""
from __future__ import annotations

import importlib
import json
import math

import numpy as np
import pytest

from sigprop.kernels import SimulationResult, load_npz, simulate
from sigprop.kernels.backend import cuda_available, host_memory_available
from sigprop.theory.activations import activation, custom_activation

sim_module = importlib.import_module("sigprop.kernels.simulate")

X = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.7]])
BASE = dict(depth=2, width=6, activation="relu", C_W=2.0, n_networks=3)


def _run(**over):
    kw = dict(BASE)
    kw.update(over)
    Xin = kw.pop("X", X)
    return simulate(Xin, **kw)


@pytest.mark.parametrize("over,exc,match", [
    (dict(depth=0), ValueError, "depth"),
    (dict(depth=2.0), TypeError, "depth"),
    (dict(depth=True), TypeError, "depth"),
    (dict(width=0), ValueError, "width"),
    (dict(width=True), TypeError, "width"),
    (dict(width=[4, 5, 6]), ValueError, "depth=2 entries"),
    (dict(width=[4, -1]), ValueError, r"width\[1\]"),
    (dict(width=[4, 2.5]), TypeError, r"width\[1\]"),
    (dict(width="8"), TypeError, "width"),
    (dict(n_networks=0), ValueError, "n_networks"),
    (dict(n_networks=False), TypeError, "n_networks"),
    (dict(n_networks=2**32 + 1), ValueError, "n_networks"),
    (dict(X=np.ones(3)), ValueError, "2-D"),
    (dict(X=np.ones((0, 3))), ValueError, "P >= 1"),
    (dict(X=np.array([[1.0, np.nan]])), ValueError, "finite"),
    (dict(X=[["a", "b"]]), TypeError, "X"),
    (dict(C_W=0.0), ValueError, "C_W"),
    (dict(C_W=-1.0), ValueError, "C_W"),
    (dict(C_W=math.inf), ValueError, "C_W"),
    (dict(C_W="2"), TypeError, "C_W"),
    (dict(C_b=-0.1), ValueError, "C_b"),
    (dict(C_b=math.nan), ValueError, "C_b"),
    (dict(residual=1.0), ValueError, "residual"),
    (dict(residual=-0.1), ValueError, "residual"),
    (dict(norm="batch"), ValueError, "norm"),
    (dict(method="fast"), ValueError, "method"),
    (dict(backend="tpu"), ValueError, "backend"),
    (dict(weights="cauchy", method="explicit"), ValueError, "weights"),
    (dict(weights="uniform"), ValueError, "use method='explicit'"),
    (dict(backward=True), ValueError, "backward"),
    (dict(backward=1, method="explicit"), TypeError, "backward"),
    (dict(backward=True, method="explicit", residual=0.5), ValueError, "residual=0"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(activation="swishy"), ValueError, "unknown name"),
    (dict(activation=3), TypeError, "activation"),
    (dict(method="numpy", backend="cuda"), ValueError, "CPU only"),
    (dict(norm="ln_pre", width=[1, 4]), ValueError, "width >= 2"),
])
def test_bad_input_is_rejected_with_a_clear_message(over, exc, match):
    with pytest.raises(exc, match=match):
        _run(**over)


@pytest.mark.skipif(cuda_available(), reason="a CUDA device (or the simulator) is available here")
def test_cuda_backend_without_gpu_is_rejected():
    with pytest.raises(ValueError, match="CUDA GPU"):
        _run(backend="cuda")


def test_memory_check_refuses_before_work(monkeypatch):
    called = []
    monkeypatch.setattr(sim_module, "_run_batch", lambda *a, **k: called.append(1))
    with pytest.raises(MemoryError, match="GiB"):
        _run(n_networks=2**31, depth=1000, width=10)
    monkeypatch.setattr("sigprop.kernels.backend.host_memory_available", lambda: 10_000)
    with pytest.raises(MemoryError, match="outputs"):
        _run(n_networks=1000)
    assert not called
    assert host_memory_available() > 0


def test_memory_estimate_of_explicit_is_independent_of_depth():
    e1 = sim_module.estimate_memory(8, 64, [512] * 5, 200, "explicit")
    e2 = sim_module.estimate_memory(8, 64, [512] * 50, 200, "explicit")
    assert e1["work_per_network"] == e2["work_per_network"] == 6 * 512 * 8 * 8
    assert e2["outputs"] == 10 * e1["outputs"]


def test_result_is_frozen_and_carries_settings(tmp_path):
    r = _run(width=[5, 7], C_b=0.25, seed=3, n_networks=4)
    assert isinstance(r, SimulationResult)
    assert r.preact_gram.shape == (4, 2, 2, 2) and r.postact_gram.shape == (4, 2, 2, 2)
    assert r.preact_m2.shape == (4, 2, 2) and r.preact_m4.shape == (4, 2, 2)
    assert r.backward_gram is None and r.tangent_gram is None
    np.testing.assert_array_equal(r.preact_m2, np.diagonal(r.preact_gram, axis1=2, axis2=3))
    with pytest.raises(ValueError):
        r.preact_gram[0, 0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        r.seed = 4  # type: ignore[misc]
    assert r.widths == (5, 7) and r.width == (5, 7) and r.n_inputs == 2
    s = r.settings
    assert s["C_b"] == 0.25 and s["method"] == "gram" and s["widths"] == [5, 7] and s["activation"] == "relu"
    json.dumps(s)
    arrays, settings = load_npz(r.save_npz(tmp_path / "r.npz"))
    assert settings == s
    np.testing.assert_array_equal(arrays["preact_gram"], r.preact_gram)
    np.testing.assert_array_equal(arrays["X"], X)


def test_same_seed_same_numbers_and_batching_changes_nothing(monkeypatch):
    kw = dict(depth=3, width=[7, 5, 6], activation="tanh", C_W=1.3, C_b=0.1, n_networks=9, method="explicit",
              seed=42)
    whole = simulate(X, **kw)
    monkeypatch.setattr(sim_module, "_BATCH_WORK_CAP", 6 * 7 * 2 * 8 * 2)  # two networks per batch
    assert sim_module.plan_batches(2, 3, (7, 5, 6), 9, "explicit", False, "cpu") == 2
    batched = simulate(X, **kw)
    for k in ("preact_gram", "postact_gram", "preact_m2", "preact_m4"):
        np.testing.assert_array_equal(getattr(whole, k), getattr(batched, k))


def test_numpy_and_explicit_methods_agree_to_rounding_with_backward():
    kw = dict(depth=3, width=[6, 4, 5], activation="tanh", C_W=1.5, C_b=0.2, n_networks=3, seed=5, backward=True)
    e = simulate(X, method="explicit", **kw)
    n = simulate(X, method="numpy", **kw)
    for k in ("preact_gram", "postact_gram", "preact_m4", "backward_gram", "tangent_gram"):
        np.testing.assert_allclose(getattr(e, k), getattr(n, k), rtol=1e-10, atol=1e-12)
    assert e.backward_gram.shape == (3, 3, 2, 2)


def test_custom_activation_matches_builtin_in_gram_method():
    custom = custom_activation(np.tanh, name="my_tanh", scalar=lambda x: math.tanh(x))
    kw = dict(depth=2, width=5, C_W=1.4, n_networks=6, seed=8)
    a = simulate(X, activation=custom, **kw)
    b = simulate(X, activation=activation("tanh"), **kw)
    np.testing.assert_allclose(a.postact_gram, b.postact_gram, rtol=1e-13)
    assert a.activation == "my_tanh"


def test_cli_writes_npz_with_settings(tmp_path, capsys):
    from sigprop.validation.cli import main

    out = tmp_path / "sim.npz"
    rc = main(["simulate", "--activation", "leaky_relu", "--param", "slope=0.2", "--depth", "2", "--width", "4", "6",
               "--C-W", "1.8", "--inputs", "3", "--input-dim", "5", "--corr", "0.4", "--networks", "5",
               "--seed", "9", "--out", str(out)])
    assert rc == 0
    arrays, settings = load_npz(out)
    assert settings["activation"] == "leaky_relu(slope=0.2)" and settings["widths"] == [4, 6]
    assert arrays["preact_gram"].shape == (5, 2, 3, 3)
    G0 = arrays["X"] @ arrays["X"].T / 5
    np.testing.assert_allclose(G0, 0.4 + 0.6 * np.eye(3), atol=1e-12)
    again = simulate(arrays["X"], depth=2, width=[4, 6], activation=activation("leaky_relu", slope=0.2), C_W=1.8,
                     n_networks=5, seed=9)
    np.testing.assert_array_equal(again.preact_gram, arrays["preact_gram"])
    assert main(["simulate", "--depth", "2", "--width", "4", "--C-W", "0"]) == 2
    assert "C_W must be > 0" in capsys.readouterr().err
