"""The NFA experiment at the reference code's protocol (``nfa_protocol``): the smoke profile end to end, the full
profile's settings against the reference code's, the unit of work as a pure function, and the combination from
cached unit values equal to the in-process one."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sigprop.validation.cache import decode_value, encode_value
from sigprop.validation.experiment import Context, Finding, discover, unit_id
from sigprop.validation.experiments import nfa_protocol as nfa


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile run by hand (units computed in-process), and its settings and context."""
    s = nfa.EXPERIMENT.settings("smoke")
    ctx = Context(profile="smoke", seed=0, out_dir=tmp_path_factory.mktemp("nfa"))
    return s, ctx, nfa.EXPERIMENT.run(ctx, s)


def _checks_json(result) -> str:
    return json.dumps([c.to_dict(4.0) for c in result.checks], sort_keys=True)


def test_discovered_and_profiles_validated():
    assert nfa.EXPERIMENT in discover()
    for profile in ("smoke", "quick", "full"):
        s = nfa.EXPERIMENT.settings(profile)
        assert json.loads(json.dumps(s)) == s
    with pytest.raises(ValueError, match="profile"):
        nfa.EXPERIMENT.settings("huge")


def test_full_settings_are_the_reference_protocol():
    """main.py / trainer.py / neural_model.py of aradha/deep_neural_feature_ansatz, on MNIST-5k."""
    s = nfa.EXPERIMENT.settings("full")
    assert (s["width"], s["depth"], s["bias"]) == (1024, 3, False)          # Net(dim, depth=3, width=1024)
    assert (s["lr"], s["momentum"], s["weight_decay"]) == (0.1, 0.0, 0.0)   # torch.optim.SGD(lr=.1)
    assert (s["loss"], s["batch_size"], s["dtype"]) == ("mse", 128, "float32")
    assert math.isclose(s["C_W"], 1 / 3) and math.isclose(s["readout_gain"] ** 2, 1 / 3)  # Var U(+-1/sqrt(fan_in))
    assert s["tied_middle_init"] is True                                     # deepcopy(module) for the middle
    assert s["layers"] == [0, 1, 2] and s["centered"] is False               # verify_deep_NFA.py idxs, Uncentered
    assert s["data"] == "mnist5k" and s["scaling"] == "unit"                 # ToTensor(): p / 255
    n_val = round(s["val_fraction"] * s["n_images"])
    assert (s["n_images"] - n_val, n_val, 10 * s["test_per_class"]) == (3200, 800, 1000)
    assert s["nfa_n"] == 800 and s["seeds"] == 3 and 1 <= s["epochs"] <= 501


def test_initial_network_has_the_reference_shapes_and_tied_middle_layers():
    s = nfa.EXPERIMENT.settings("full")
    net = nfa.initial_network(s, Context(seed=0), 0, 784, 10)
    assert [w.shape for w in net.W] == [(1024, 784), (1024, 1024), (1024, 1024), (10, 1024)]
    assert net.b is None and net.dtype == np.float32
    assert np.array_equal(net.W[1], net.W[2]) and net.W[1] is not net.W[2]
    assert abs(net.W[0].var() * 784 - 1 / 3) < 0.01 and abs(net.W[3].var() * 1024 - 1 / 3) < 0.02


def test_data_is_pixels_over_255_split_80_20():
    s = nfa.EXPERIMENT.settings("smoke")
    d = nfa.split_data(s, Context(seed=0), 1)
    assert (d["X"].shape, d["X_val"].shape, d["X_test"].shape) == ((160, 784), (40, 784), (1000, 784))
    pixels = np.concatenate([d["X"], d["X_val"]]) * 255
    assert np.allclose(pixels, np.round(pixels), rtol=0, atol=1e-9) and pixels.min() == 0 and pixels.max() == 255


def test_smoke_runs_end_to_end(smoke):
    s, _, result = smoke
    layers = [c for c in result.checks if c.name.startswith("layer ") and c.kind == "info"]
    assert len(layers) == len(s["layers"]) * len(nfa.QUANTITIES)
    assert all(-1.0 <= c.estimate <= 1.0 and len(c.details["per_seed"]) == s["seeds"] for c in layers)
    judged = [c for c in result.checks if c.kind != "info"]
    assert len(judged) == len(s["layers"]) and all(c.passed(4.0) for c in judged)
    findings = [Finding.from_check(c) for c in result.checks if Finding.from_check(c) is not None]
    assert [f.basis for f in findings] == ["checks", "informational", "informational"]
    head = findings[1]
    assert head.paper_value == nfa.CLAIM_VALUE and "protocol: MNIST-5k" in head.measured
    assert head.interval[0] <= head.value <= head.interval[1]
    table = result.tables[0].splitlines()
    assert len(table) == 2 + len(s["layers"]) and table[2].startswith("| 0 | ")
    (_, path), = result.figures
    assert Path(path).read_bytes()[:4] == b"\x89PNG" and Path(path).stat().st_size > 1000


def test_unit_is_a_pure_function_of_settings_key_and_seed(smoke):
    s, ctx, _ = smoke
    first, again = nfa.run_unit(ctx, s, 1), nfa.run_unit(Context(seed=0), s, 1)
    assert first.pop("seconds") >= 0 and again.pop("seconds") >= 0    # wall time: the one entry that may differ
    assert json.dumps(encode_value(first)) == json.dumps(encode_value(again))
    assert first["best_epoch"] >= 1 and len(first["val_acc"]) == s["epochs"]


def test_combination_from_cached_units_equals_the_in_process_one(smoke, monkeypatch, tmp_path):
    """Units computed elsewhere and decoded from the cache's JSON give the same checks as the in-process run."""
    s, ctx, fresh = smoke
    cached = {unit_id(k): decode_value(json.loads(json.dumps(encode_value(nfa.run_unit(ctx, s, k)))))
              for k in nfa.units(s)}

    def no_recompute(*args):
        raise AssertionError("a unit was recomputed although its value was handed in")

    monkeypatch.setattr(nfa, "run_unit", no_recompute)
    again = nfa.EXPERIMENT.run(Context(profile="smoke", seed=0, out_dir=tmp_path, unit_results=cached), s)
    assert _checks_json(again) == _checks_json(fresh)
    assert again.tables[0] == fresh.tables[0]
