"""The trainer against PyTorch (``sigprop bench --only training``): rows with and without PyTorch installed, on a tiny
workload (no timing asserted), and :func:`~sigprop.kernels.learning.training.mlp_from_arrays`, the adapter that takes
a network trained anywhere (PyTorch's ``nn.Linear`` layout) into sigprop's measures."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from sigprop.kernels.learning import bench_training
from sigprop.kernels.learning import training as training_module
from sigprop.kernels.learning.training import forward, init_mlp, mlp_from_arrays
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation.cli.bench import collect

HAS_TORCH = importlib.util.find_spec("torch") is not None
TOL = {"float32": 1e-6, "float64": 1e-12}


def _tiny_data(split="train", seed=0):
    """A stand-in for MNIST-5k: 300 samples of dimension 784, 10 classes (loading the real set takes seconds)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((300, 784)), rng.integers(0, 10, 300)


@pytest.fixture
def tiny(monkeypatch):
    """L = 2 Linear layers of width 8, 2 steps of batch 128, 1 repeat."""
    monkeypatch.setattr(bench_training, "load_mnist5k", _tiny_data)
    monkeypatch.setitem(bench_training.TORCH_PROFILES, "quick", ((2,), 2, 1))
    monkeypatch.setattr(bench_training, "TORCH_WIDTH", 8)


def _configs():
    return [(d, t) for d in bench_training.TORCH_DTYPES for t in bench_training.TORCH_THREADS]


def test_rows_without_torch_are_sigprop_only_with_a_note(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # ``import torch`` raises ImportError
    assert bench_training._import_torch() is None
    rows = bench_training.trainer_vs_torch("quick")
    assert len(rows) == len(_configs())
    for row, (dtype, threads) in zip(rows, _configs()):
        assert row["benchmark"].endswith(f"{dtype}, {threads} thread{'s' if threads > 1 else ''}: sigprop train")
        assert "784-8x1-10 (L=2)" in row["benchmark"]
        assert row["metric"] == "seconds per SGD step" and row["unit"] == "s" and row["value"] > 0
        assert "PyTorch rows skipped: torch is not importable (pip install 'sigprop[torch]')" in row["note"]
        assert f"blas_threads={threads}" in row["note"] and "CPUs; load average" in row["note"]
        assert "2 steps = one epoch of 256" in row["note"]


def test_rows_through_the_registry_without_torch(tiny, monkeypatch):
    """``sigprop bench --only training``: the trainer's rows, then the comparison rows, no error."""
    monkeypatch.setitem(sys.modules, "torch", None)
    small = training_module.init_mlp
    monkeypatch.setattr(bench_training, "init_mlp", lambda d, o, depth, width, seed: small(d, o, 2, 8, seed=seed))
    rows, errors = collect("quick", only=["training"], log=lambda msg: None)
    assert errors == []
    assert [r["benchmark"] for r in rows[:2]] == ["train MLP depth 100 width 256, 1000 digits"] * 2
    assert rows[2]["benchmark"].startswith("per-layer tangent-kernel alignment")
    assert len(rows) == 3 + len(_configs())
    assert all(r["benchmark"].endswith(": sigprop train") and "PyTorch rows skipped" in r["note"] for r in rows[3:])


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (optional extra sigprop[torch])")
def test_rows_with_torch(tiny):
    rows = bench_training.trainer_vs_torch("quick")
    assert len(rows) == 3 * len(_configs())
    for k, (dtype, threads) in enumerate(_configs()):
        ours, theirs, ratio = rows[3 * k:3 * k + 3]
        assert ours["benchmark"].endswith(": sigprop train") and theirs["benchmark"].endswith(": PyTorch")
        assert ratio["benchmark"].endswith(": sigprop / PyTorch") and ratio["unit"] == "x"
        assert f"set_num_threads({threads})" in theirs["note"] and "skipped" not in ours["note"]
        assert ratio["value"] == pytest.approx(ours["value"] / theirs["value"])


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (optional extra sigprop[torch])")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_both_sides_compute_the_same_training(dtype):
    """Same weights, same batches: the final full-set losses after 3 SGD steps agree to rounding."""
    import torch

    X, y = _tiny_data()
    net0 = init_mlp(784, 10, depth=2, width=16, bias=True, seed=3, dtype=dtype)
    _, ours = bench_training._run_sigprop(net0, X, y, 0.01, 3, dtype, 1)
    _, theirs = bench_training._run_torch(torch, net0, X, y, 0.01, 3, dtype, 1)
    assert theirs == pytest.approx(ours, rel=1e-5 if dtype == "float32" else 1e-12)


def test_unknown_profile_is_refused_before_work(monkeypatch):
    monkeypatch.setattr(bench_training, "load_mnist5k", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(InputError, match="profile must be 'quick' or 'full', got 'slow'"):
        bench_training.trainer_vs_torch("slow")


# ----------------------------------------------------------------------------------------------------------------
# The adapter
# ----------------------------------------------------------------------------------------------------------------
def _torch_trained(dtype: str):
    """A ReLU MLP 12 -> 16 -> 16 -> 3 with biases trained 5 SGD steps in PyTorch; its layers and a test input."""
    import torch

    torch.manual_seed(0)
    tdt = getattr(torch, dtype)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16, dtype=tdt), torch.nn.ReLU(), torch.nn.Linear(16, 16, dtype=tdt),
                                torch.nn.ReLU(), torch.nn.Linear(16, 3, dtype=tdt))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    X = torch.randn(32, 12, dtype=tdt)
    y = torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    W = [m.weight.detach().cpu().numpy() for m in linears]
    b = [m.bias.detach().cpu().numpy() for m in linears]
    with torch.no_grad():
        out = model(X).numpy()
    return W, b, X.numpy(), out


def _numpy_network(dtype: str):
    rng = np.random.default_rng(0)
    W = [rng.standard_normal(s).astype(dtype) / 4 for s in ((16, 12), (16, 16), (3, 16))]
    b = [rng.standard_normal(n).astype(dtype) for n in (16, 16, 3)]
    X = rng.standard_normal((32, 12)).astype(dtype)
    h = X
    for w, v in zip(W[:-1], b[:-1]):
        h = np.maximum(h @ w.T + v, 0)
    return W, b, X, h @ W[-1].T + b[-1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adapter_reproduces_the_trained_network(dtype):
    """Weights trained in PyTorch (when installed; else plain arrays) give the same outputs through sigprop."""
    W, b, X, expected = (_torch_trained if HAS_TORCH else _numpy_network)(dtype)
    net = mlp_from_arrays(W, b)
    assert net.dtype == np.dtype(dtype) and net.widths == (12, 16, 16, 3)
    out = forward(net, X)[1]
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, expected, rtol=TOL[dtype], atol=TOL[dtype])


def test_adapter_copies_the_arrays():
    W, b, _, _ = _numpy_network("float64")
    net = mlp_from_arrays(W, b)
    net.W[0][0, 0] += 1.0
    net.b[0][0] += 1.0
    assert net.W[0][0, 0] == W[0][0, 0] + 1.0 and net.b[0][0] == b[0][0] + 1.0


def test_adapter_without_biases_and_other_activation():
    W, _, X, _ = _numpy_network("float64")
    net = mlp_from_arrays(W, activation="tanh")
    h = np.tanh(np.tanh(X @ W[0].T) @ W[1].T)
    assert net.b is None
    np.testing.assert_allclose(forward(net, X)[1], h @ W[2].T, rtol=1e-13)


@pytest.mark.parametrize("weights, biases, error, match", [
    ([np.ones((3, 2))], None, InputError, r"weights must hold at least two layers .* got 1"),
    ([np.ones((3, 2)), np.ones((2, 4))], None, InputError, r"weights\[1\] must have 3 columns .* got shape \(2, 4\)"),
    ([np.ones((3, 2)), np.ones((2, 3), dtype=np.float32)], None, InputError, "one dtype of"),
    ([np.ones((3, 2)), np.ones((2, 3))], [np.ones(3), np.ones(2, dtype=np.float32)], InputError, "one dtype of"),
    ([np.ones((3, 2), dtype=int), np.ones((2, 3))], None, InputError, r"weights\[0\] must have a dtype of"),
    ([np.ones((3, 2)), np.full((2, 3), np.nan)], None, InputError, r"weights\[1\] has non-finite entries"),
    ([np.ones((3, 2)), np.ones(3)], None, InputError, r"weights\[1\] must be a non-empty 2-d array"),
    ([np.ones((3, 2)), np.ones((2, 3))], [np.ones(3)], InputError, r"biases must hold one array per layer \(2\)"),
    ([np.ones((3, 2)), np.ones((2, 3))], [np.ones(3), np.ones(3)], InputError, r"biases\[1\] must have length 2"),
    ([np.ones((3, 2)), np.ones((2, 3))], [np.ones(3), np.full(2, np.inf)], InputError, r"biases\[1\] has non-finite"),
    (np.ones((2, 3, 3)), None, InputTypeError, "weights must be a sequence of 2-d arrays"),
    ([np.ones((3, 2)), "w"], None, InputTypeError, r"weights\[1\] must be a real numeric array"),
    ([np.ones((3, 2)), np.ones((2, 3))], np.ones(3), InputTypeError, "biases must be None or a sequence"),
])
def test_adapter_refuses_bad_arrays(weights, biases, error, match):
    with pytest.raises(error, match=match):
        mlp_from_arrays(weights, biases)


def test_adapter_refuses_an_unknown_activation():
    with pytest.raises((InputError, InputTypeError, ValueError), match="activation"):
        mlp_from_arrays([np.ones((3, 2)), np.ones((2, 3))], activation="no_such_activation")
