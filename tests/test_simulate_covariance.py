"""``simulate(..., covariance=RainbowCovariance(...))``: the one front door of the Monte-Carlo with a covariance model.

* the result holds the Grams on inputs then anchors, the settings (the covariance included) round-trip through
  ``save_npz``/``load_npz`` and JSON, the moments the rainbow engines do not compute are None;
* ``first_network`` offsets the generator's networks (both models), bit for bit;
* bad input is refused before any work, naming the argument;
* ``simulate_distributed`` gives the numbers of one process, bit for bit (and its ``out=`` file the one of
  ``save_npz``);
* the deprecated ``simulate_rainbow`` still works, warns, and gives the same numbers.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import warnings

import numpy as np
import pytest

from sigprop.kernels import RainbowCovariance, load_npz, simulate
from sigprop.kernels.covariance import covariance_from_settings
from sigprop.kernels.distributed import simulate_distributed
from sigprop.kernels.rainbow import RainbowSimulation, simulate_rainbow
from sigprop.theory.errors import InputError, InputTypeError

_RNG = np.random.default_rng(5)
X = _RNG.standard_normal((3, 4))
ANCHORS = _RNG.standard_normal((2, 4))
_B = _RNG.standard_normal((4, 4))
C1 = _B @ _B.T / 4 + 0.1 * np.eye(4)
COV = RainbowCovariance(C1, a=[1.2, 0.7], b=[[0.5, 0.2], [0.0, 1.0]], anchors=ANCHORS)
sim_module = importlib.import_module("sigprop.kernels.simulate")  # the module (the package exports the function)
ARGS = dict(depth=3, width=[6, 5, 7], activation="tanh", covariance=COV, C_b=0.1, n_networks=4, seed=3)


# --- the covariance object ----------------------------------------------------------------------------------

def test_the_covariance_is_immutable_and_checked_at_construction():
    with pytest.raises(dataclasses.FrozenInstanceError):
        COV.a = np.ones(2)  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        COV.b[0, 0] = 3.0
    source = np.array([1.0, 2.0])
    cov = RainbowCovariance(1.0, source)
    source[0] = -1.0  # the object holds a copy
    assert cov.a.tolist() == [1.0, 2.0] and cov.b.shape == (2, 0) and cov.anchors is None and cov.depth == 3
    with pytest.raises(InputError, match="C1 must be positive semi-definite: most negative eigenvalue -0.5"):
        RainbowCovariance(np.diag([1.0, -0.5]), [1.0])
    with pytest.raises(InputError, match="a must be >= 0"):
        RainbowCovariance(1.0, [1.0, -0.1])
    with pytest.raises(InputError, match=r"b must have shape \(len\(a\), m\)"):
        RainbowCovariance(1.0, [1.0], [[1.0, 1.0]], ANCHORS[:1])
    with pytest.raises(InputError, match="C1 must be a scalar or a"):
        RainbowCovariance(np.eye(3), [1.0], [[1.0]], ANCHORS[:1])  # anchors of dimension 4


# --- the result ---------------------------------------------------------------------------------------------

def test_result_holds_inputs_then_anchors_and_the_settings_round_trip(tmp_path):
    res = simulate(X, method="explicit", keep_activations=True, **ARGS)
    P, m = res.n_inputs, res.n_anchors
    assert (P, m) == (3, 2) and res.preact_gram.shape == (4, 3, 5, 5) and res.postact_gram.shape == (4, 3, 5, 5)
    assert res.preact_m2 is None and res.preact_m4 is None and res.backward_gram is None and res.C_W is None
    assert [h.shape for h in res.activations] == [(4, 5, 6), (4, 5, 5), (4, 5, 7)]
    h = res.activations[-1]  # the post-activation Gram is h h^T / n, inputs first, anchors last
    np.testing.assert_allclose(res.postact_gram[:, -1], h @ h.transpose(0, 2, 1) / 7, rtol=1e-12)
    s = res.settings
    assert json.loads(json.dumps(s)) == s and s["C_W"] is None and s["keep_activations"] is True
    assert covariance_from_settings(json.loads(json.dumps(s))["covariance"]) == COV
    arrays, settings = load_npz(res.save_npz(tmp_path / "r.npz"))
    assert settings == s
    assert sorted(arrays) == ["X", "activations_0", "activations_1", "activations_2", "postact_gram", "preact_gram"]
    assert np.array_equal(arrays["preact_gram"], res.preact_gram) and np.array_equal(arrays["X"], X)
    assert np.array_equal(arrays["activations_2"], res.activations[2])


def test_iid_settings_name_no_covariance():
    s = simulate(X, depth=2, width=4, activation="relu", C_W=2.0, n_networks=2).settings
    assert s["covariance"] is None and s["first_network"] == 0 and s["C_W"] == 2.0


@pytest.mark.parametrize("kw", [dict(activation="relu", C_W=2.0, depth=2, width=5, method="explicit"),
                                dict(ARGS, method="gram", n_networks=None), dict(ARGS, method="numpy",
                                                                                 n_networks=None)])
def test_first_network_offsets_the_networks_bit_for_bit(kw):
    kw = {k: v for k, v in kw.items() if k != "n_networks"}
    whole = simulate(X, n_networks=5, **kw)
    tail = simulate(X, n_networks=3, first_network=2, **kw)
    assert np.array_equal(whole.preact_gram[2:], tail.preact_gram)
    assert np.array_equal(whole.postact_gram[2:], tail.postact_gram)


# --- bad input, before any work -----------------------------------------------------------------------------

BAD = [
    (dict(covariance="rainbow"), InputTypeError, "covariance must be None .* or a RainbowCovariance, got str"),
    (dict(C_W=2.0), InputError, "C_W must not be given with covariance="),
    (dict(weights="rademacher", method="explicit"), InputError, "weights='rademacher' is not available with a cov"),
    (dict(residual=0.5), InputError, "residual=0.5 is not available with a covariance model"),
    (dict(norm="ln_pre"), InputError, "norm='ln_pre' is not available with a covariance model"),
    (dict(backward=True, method="explicit"), InputError, "backward=True is not available with a covariance model"),
    (dict(keep_activations=True, method="gram"), InputError, "keep_activations=True needs method 'numpy' or"),
    (dict(keep_activations="yes"), InputTypeError, "keep_activations must be a bool"),
    (dict(depth=2, width=6), InputError, r"depth must be len\(covariance.a\) \+ 1 = 3"),
    (dict(method="numpy", backend="cuda"), InputError, "method='numpy' runs on the CPU only"),
    (dict(method="fast"), InputError, "method must be one of"),
    (dict(first_network=-1), InputError, "first_network must be >= 0"),
    (dict(first_network=2**32 - 2), InputError, r"first_network \+ n_networks <= 2\^32"),
    (dict(first_network=1.0), InputTypeError, "first_network must be an int"),
]


@pytest.mark.parametrize("extra, error, match", BAD)
def test_bad_input_is_refused_before_any_work_naming_the_argument(monkeypatch, extra, error, match):
    monkeypatch.setattr(sim_module, "_run_batch", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(error, match=match):
        simulate(X, **{**ARGS, **extra})


def test_bad_input_names_c_w_keep_activations_and_the_dimension():
    with pytest.raises(InputError, match="C_W is required"):
        simulate(X, depth=2, width=4, activation="relu", n_networks=1)
    with pytest.raises(InputError, match="keep_activations=True needs a covariance model"):
        simulate(X, depth=2, width=4, activation="relu", C_W=2.0, n_networks=1, keep_activations=True,
                 method="explicit")
    with pytest.raises(InputError, match=r"covariance.anchors must have the input dimension n_0 = 5"):
        simulate(np.ones((2, 5)), **{**ARGS, "covariance": RainbowCovariance(1.0, [1.0, 1.0], [[1.0], [1.0]],
                                                                            ANCHORS[:1])})
    with pytest.raises(InputError, match=r"covariance.C1 must be \(5, 5\)"):
        simulate(np.ones((2, 5)), **{**ARGS, "covariance": RainbowCovariance(C1, [1.0, 1.0])})


# --- Dask: the same numbers as one process --------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_workers():
    from sigprop.kernels.cluster import open_client

    with open_client(jobs=2) as (client, plan):
        yield client, plan


@pytest.mark.parametrize("kw", [dict(method="explicit", keep_activations=True), dict(method="gram")])
def test_simulate_distributed_with_a_covariance_is_bit_identical(tmp_path, two_workers, kw):
    args = {**ARGS, "n_networks": 5, "first_network": 1, **kw}
    one = simulate(X, **args)
    client = two_workers[0]
    two = simulate_distributed(client, X, chunk=2, **args)
    assert one.settings == two.settings and one.arrays().keys() == two.arrays().keys() == {"preact_gram",
                                                                                          "postact_gram"}
    for k, a in one.arrays().items():
        assert np.array_equal(a, getattr(two, k)), k
    assert (one.activations is None) == (two.activations is None)
    if one.activations is not None:
        assert all(np.array_equal(u, v) for u, v in zip(one.activations, two.activations))
    path = simulate_distributed(client, X, chunk=2, out=tmp_path / "run.npz", **args)
    arrays, settings = load_npz(path)
    ref_arrays, ref_settings = load_npz(one.save_npz(tmp_path / "one.npz"))
    assert settings == ref_settings and arrays.keys() == ref_arrays.keys()
    assert all(np.array_equal(arrays[k], ref_arrays[k]) for k in arrays)


# --- the deprecated entry -------------------------------------------------------------------------------------

def test_the_deprecated_simulate_rainbow_warns_and_gives_the_same_numbers():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = simulate_rainbow("tanh", X, C1, [1.2, 0.7], [[0.5, 0.2], [0.0, 1.0]], ANCHORS, widths=(6, 5, 7),
                               n_networks=3, seed=3, network0=2, C_b=0.1, method="explicit", keep_activations=True)
    assert [w.category for w in caught] == [DeprecationWarning]
    assert "simulate_rainbow is deprecated" in str(caught[0].message) and caught[0].filename == __file__
    new = simulate(X, method="explicit", keep_activations=True, first_network=2, **{**ARGS, "n_networks": 3})
    assert isinstance(old, RainbowSimulation) and old.n_inputs == 3 and old.widths == (6, 5, 7)
    assert np.array_equal(old.preact_gram, new.preact_gram) and np.array_equal(old.postact_gram, new.postact_gram)
    assert all(np.array_equal(u, v) for u, v in zip(old.activations, new.activations))
