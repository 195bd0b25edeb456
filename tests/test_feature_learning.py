"""The feature_learning experiment: its pure helpers, the sensitivity of its judged checks, and its smoke run."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from sigprop.kernels.learning.training import init_network, network_features
from sigprop.validation import stats
from sigprop.validation.experiment import Context, discover
from sigprop.validation.experiments import feature_learning as fl
from sigprop.validation.measures import subspace_fraction


def test_discovered_and_settings_are_json():
    assert "feature_learning" in {e.name for e in discover()}
    for profile in ("smoke", "quick", "full"):
        s = fl.settings(profile)
        assert json.loads(json.dumps(s)) == s
        for spec in s["networks"]:
            assert 1 <= len(spec["hidden"]) <= 5
        # every stated expectation must be reachable: c k/d < 1
        t = s["teacher"]
        assert s["expect_rfm"] * max(2, t["relu_k"]) / t["dim"] < 1
    with pytest.raises(ValueError, match="profile"):
        fl.settings("huge")


def test_quick_profile_covers_the_issue():
    s = fl.settings("quick")
    nets = s["networks"]
    assert {n["activation"] for n in nets} == {"relu", "tanh", "gelu"}
    assert {n["loss"] for n in nets} == {"mse", "cross_entropy"}
    assert {n["data"] for n in nets} == {"digits", "product", "relu_sum"}
    assert {len(n["hidden"]) for n in nets} >= {2, 5}
    widths = [w for n in nets for w in n["hidden"]]
    assert min(widths) >= 64 and max(widths) <= 512
    assert any(n["hidden"][0] > (64 if n["data"] == "digits" else s["teacher"]["dim"]) for n in nets)  # expanding
    assert any(b < a for n in nets for a, b in zip(n["hidden"], n["hidden"][1:]))                      # compressing
    assert s["seeds"] >= 3


def test_intervals_match_scipy():
    v = np.array([0.3, 0.5, 0.4, 0.45])
    m, lo, hi = fl.mean_interval(v)
    ref = st.t.interval(0.95, v.size - 1, loc=v.mean(), scale=st.sem(v))
    assert m == pytest.approx(v.mean()) and (lo, hi) == pytest.approx(ref, rel=1e-12)
    assert fl.lower_confidence_bound(v) == pytest.approx(v.mean() - st.t.ppf(0.95, 3) * st.sem(v), rel=1e-12)
    assert math.isnan(fl.lower_confidence_bound([1.0])) and math.isnan(fl.mean_interval([1.0])[1])


def test_subspace_fraction_chance_and_extremes():
    rng = np.random.default_rng(0)
    d, k = 12, 3
    U = np.linalg.qr(rng.standard_normal((d, k)))[0]
    assert subspace_fraction(np.eye(d), U) == pytest.approx(k / d, rel=1e-14)
    assert subspace_fraction(U @ np.diag([1.0, 2.0, 3.0]) @ U.T, U) == pytest.approx(1.0, rel=1e-14)
    B = fl._teacher_basis(U)
    np.testing.assert_allclose(B.T @ B, np.eye(d), atol=1e-12)
    np.testing.assert_allclose(np.abs(B[:, :k].T @ U), np.eye(k), atol=1e-12)   # first k vectors span U


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_forward_mode_matches_reverse_mode_and_detects_a_wrong_jacobian(act):
    net = init_network([5, 16, 7, 3], activation=act, bias=True, C_b=0.1, seed=2)
    X = np.random.default_rng(1).standard_normal((9, 5))
    feats = network_features(net, X)
    for f in feats:
        V = np.random.default_rng(f.layer).standard_normal((f.weight.shape[1], 2))
        assert fl.relative_error(fl.forward_jvp(net, feats, f.layer, V), f.jac_input @ V) < 1e-12
    wrong = feats[0].jac_preact @ (1.01 * feats[0].weight)   # a 1% error in the Jacobian stack is caught
    V = np.ones((5, 1))
    assert fl.relative_error(fl.forward_jvp(net, feats, 1, V), wrong @ V) > 1e-3


def test_layer_measures_tight_frame_and_variants():
    rng = np.random.default_rng(3)
    W0 = rng.standard_normal((6, 10))
    W = W0 + 0.3 * rng.standard_normal((6, 10))
    Jz = rng.standard_normal((400, 2, 6))
    Jz = Jz @ np.linalg.inv(np.linalg.cholesky(np.einsum("xon,xom->nm", Jz, Jz) / 400)).T   # agop(Jz) = I exactly
    out = fl.layer_measures(W, W0, Jz, Jz @ W, readout=False)
    assert out["baseline"] == pytest.approx(1.0, abs=1e-12) and out["iso_comp"] == pytest.approx(1.0, abs=1e-12)
    assert out["chain"] < 1e-13 and out["chain_c"] < 1e-13 and out["viol"] < 1e-12 and out["viol_c"] < 1e-12
    assert out["w_minus_w0"] < 0.999 and out["alpha_half"] < 0.999   # the two choices that break the equivalence
    assert out["rank"] == 6
    same = fl.layer_measures(W0, W0, Jz, Jz @ W0, readout=True)
    assert math.isnan(same["w_minus_w0"]) and math.isnan(same["centred"]) and math.isnan(same["chain_c"])


def test_layer_measures_flags_a_broken_chain_rule():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((5, 8))
    Jz = rng.standard_normal((50, 3, 5))
    out = fl.layer_measures(W, None, Jz, Jz @ (W + 1e-6 * rng.standard_normal(W.shape)), readout=False)
    assert out["chain"] > 1e-8 and math.isnan(out["w_minus_w0"])


def test_teacher_expectation_fails_at_chance_and_passes_far_above():
    s = fl.settings("quick")
    spec = [n for n in s["networks"] if n["data"] == "product"]
    chance = fl._chance(s, "product")
    keys = ("w1_init", "w1", "agop", "rfm", "rfm_w1_cos", "rfm_w1_pearson", "rfm_agop_cos")
    at_chance = {spec[0]["name"]: [{k: chance + 0.01 * i for k in keys} for i in range(3)]}
    far = {spec[0]["name"]: [{k: 0.9 + 0.01 * i for k in keys} for i in range(3)]}
    judged = [c for c in fl._teacher_checks(s, at_chance, spec) if c.kind != "info"]
    assert len(judged) == 2 and not any(c.passed(4.0) for c in judged)
    assert all(c.passed(4.0) for c in fl._teacher_checks(s, far, spec) if c.kind != "info")


def test_smoke_run_passes_and_writes_figures(tmp_path):
    exp = {e.name: e for e in discover()}["feature_learning"]
    result = exp.run(Context(profile="smoke", seed=3, out_dir=tmp_path), exp.settings("smoke"))
    judged = [c for c in result.checks if c.kind != "info"]
    assert len(judged) == 3 * 2 + 2
    zmax = stats.z_bound(len(judged))
    assert not [(c.name, c.estimate) for c in judged if not c.passed(zmax)]
    assert all(c.experiment == "feature_learning" for c in result.checks)
    assert sum("finding" in c.details for c in result.checks) == 2
    assert len(result.figures) == 3 and len(result.tables) == 3
    for _, path in result.figures:
        p = Path(path)
        assert p.exists() and p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
