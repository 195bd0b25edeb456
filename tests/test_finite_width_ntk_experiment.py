"""The finite_width_ntk experiment: its smoke profile passes and writes its figures; a wrong theory (the recursion
with F dropped, another activation's recursion) fails on the same simulations; GELU's double-critical point has
the published digits; the jackknife pseudo-values reproduce the jackknife."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigprop.validation import stats
from sigprop.validation.correlator_estimators import jackknife, jackknife_pseudovalues
from sigprop.validation.experiment import Context, discover, unit_id
from sigprop.validation.experiments import finite_width_ntk as fwn


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The smoke profile run once (seed 3): its result, settings and unit values."""
    out = tmp_path_factory.mktemp("fwn")
    s = fwn.settings("smoke")
    ctx = Context(profile="smoke", seed=3, out_dir=out)
    keys = fwn.units(s)
    values = {tuple(k): fwn.run_unit(ctx, s, k) for k in keys}
    ctx.unit_results = {unit_id(list(k)): v for k, v in values.items()}  # run() reuses them
    return fwn.run(ctx, s), s, values


def _judged(checks):
    return [c for c in checks if c.kind != "info"]


def test_discovered_and_settings_are_json():
    assert "finite_width_ntk" in {e.name for e in discover()}
    for profile in ("smoke", "quick", "full"):
        s = fwn.settings(profile)
        assert json.loads(json.dumps(s)) == s
        assert {c["P"] for c in s["configs"]} <= {1, 2, 3, 4} and max(c["depth"] for c in s["configs"]) <= 10
    assert {c["activation"] for c in fwn.settings("full")["configs"]} == {"relu", "tanh", "gelu", "erf"}
    assert {c["P"] for c in fwn.settings("full")["configs"]} == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="profile"):
        fwn.settings("huge")


def test_smoke_passes_and_writes_three_figures(smoke):
    result, s, _ = smoke
    judged = _judged(result.checks)
    names = [c.name for c in judged]
    assert any("D+2F" in n for n in names) and any("A+2B" in n for n in names) and any("Theta1" in n for n in names)
    assert sum("exact at every width" in n for n in names) == s["relu_exact"]["P"]
    zmax = stats.z_bound(len(judged))
    failed = [(c.name, c.theory, c.estimate, c.stderr) for c in judged if not c.passed(zmax)]
    assert not failed, failed
    assert len(result.figures) == 3
    for _, path in result.figures:
        p = Path(path)
        assert p.exists() and p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"
    assert any(c.details.get("finding") for c in result.checks)


def _checks_with(theory, s, values):
    out = []
    for i, cfg in enumerate(s["configs"]):
        out += fwn.extrapolation_checks(cfg, values[(i, "simulation")], theory(cfg), s["order"])[0]
    return out


def test_wrong_theories_fail(smoke):
    result, s, values = smoke
    from sigprop.theory.correlators import finite_width_ntk

    def without_F(cfg):
        th = fwn.theory(cfg)
        if cfg["probe"] == "neuron":  # D + 2F -> D
            L = cfg["depth"]
            r = finite_width_ntk(cfg["activation"], [100] * L + [1], cfg["C_W"], cfg["C_b"], G0=fwn.gram(cfg["P"]))
            th["cross"] = np.array(r.D[L])
        return th

    def other_activation(cfg):
        return fwn.theory({**cfg, "activation": "erf" if cfg["activation"] != "erf" else "tanh"})

    zmax = stats.z_bound(len(_judged(result.checks)))
    right = _checks_with(fwn.theory, s, values)
    assert all(c.passed(zmax) for c in right)
    no_F = [c for c in _checks_with(without_F, s, values) if not c.passed(zmax)]
    assert no_F and all("D+2F" in c.name for c in no_F), [(c.name, c.z) for c in no_F]
    wrong = [c for c in _checks_with(other_activation, s, values) if not c.passed(zmax)]
    assert len(wrong) >= 3, [(c.name, c.z) for c in wrong]


def test_relu_exact_check_sees_a_shift():
    # the fixed-width ReLU check fails against a theory with a 1/n shift of the diagonal (here: tanh's)
    s = fwn.settings("smoke")
    value = fwn.relu_exact(Context(seed=3), s)
    right = fwn.relu_exact_checks(s, value)
    zmax = stats.z_bound(len(right))
    assert all(c.passed(zmax) for c in right)
    e = s["relu_exact"]
    th = fwn.theory({**fwn._cfg("relu", e["P"], e["depth"]), "C_b": 0.1})
    shifted = th["Theta"][0, 0] * (1 + 0.1)  # a 10% bias at n = 4 (the ReLU off-diagonal's size of shift)
    z = (value["mean"][0] - shifted) / value["se"][0]
    assert abs(z) > zmax


def test_gelu_double_critical_point_has_the_printed_digits():
    from sigprop.theory.correlators import double_critical_point

    C_W, C_b, _ = double_critical_point("gelu")
    assert f"{C_W:.8f}" == "1.98305826" and f"{C_b:.8f}" == "0.17292239"
    assert (round(C_W, 8), round(C_b, 8)) == fwn.GELU_POINT
    assert all(c.passed(0.0) for c in fwn.gelu_point_checks())


def test_jackknife_pseudovalues_reproduce_the_jackknife():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), rng.standard_normal((50, 2))
    xy = x[:, :, None] * y[:, None, :]

    def cov(a, b, ab):
        return ab - a[..., :, None] * b[..., None, :]

    est = jackknife([x, y, xy], cov)
    ps = jackknife_pseudovalues([x, y, xy], cov)
    m, se = stats.mean_se(ps)
    np.testing.assert_allclose(m, est.value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(se, est.se, rtol=1e-10)
    c = x - x.mean(0)
    np.testing.assert_allclose(ps, 50 / 49 * c[:, :, None] * (y - y.mean(0))[:, None, :], rtol=1e-9, atol=1e-12)
