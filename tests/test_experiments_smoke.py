"""Smoke tests of the validation experiments (tiny 'smoke' profile) and the sensitivity of their checks:
a deliberately wrong theory (tanh networks judged against another activation's kernels) must fail."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigprop.validation import stats
from sigprop.validation.experiment import Context, discover

MINE = ("kernel_sequences", "meanfield_kernels", "method_agreement")


def _experiment(name):
    found = {e.name: e for e in discover()}
    assert name in found, f"discover() does not find {name}"
    return found[name]


@pytest.mark.parametrize("name", MINE)
def test_settings_are_json_and_profiles_validated(name):
    exp = _experiment(name)
    for profile in ("smoke", "quick", "full"):
        s = exp.settings(profile)
        assert json.loads(json.dumps(s)) == s
    with pytest.raises(ValueError, match="profile"):
        exp.settings("huge")
    assert exp.title and exp.description


@pytest.mark.parametrize("name", MINE)
def test_smoke_run_passes_and_writes_figures(name, tmp_path):
    exp = _experiment(name)
    ctx = Context(profile="smoke", seed=3, out_dir=tmp_path)
    result = exp.run(ctx, exp.settings("smoke"))
    judged = [c for c in result.checks if c.kind != "info"]
    assert judged, "an experiment must judge something"
    zmax = stats.z_bound(len(judged))
    failed = [(c.name, c.theory, c.estimate, c.stderr) for c in judged if not c.passed(zmax)]
    assert not failed, failed
    assert all(c.experiment == name for c in result.checks)
    assert result.figures
    for _, path in result.figures:
        p = Path(path)
        assert p.exists() and p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"


def test_meanfield_wrong_theory_fails(tmp_path):
    """tanh networks judged against the ReLU kernel recursion: the extrapolation checks fail."""
    from sigprop.theory.meanfield import kernel_recursion
    from sigprop.validation.experiments import meanfield_kernels as mk

    G0 = mk.G0
    ctx = Context(seed=5, out_dir=tmp_path)
    sims = mk.simulate_grams("tanh", 1.0, 0.0, G0, [32, 64, 128], 4, 32 * 200, lambda n: ctx.sub_seed("wrong", n))
    right, _ = mk.kernel_checks("tanh", sims, kernel_recursion("tanh", G0, 4, 1.0, 0.0), [2, 4])
    wrong, _ = mk.kernel_checks("tanh vs relu", sims, kernel_recursion("relu", G0, 4, 1.0, 0.0), [2, 4])
    zmax = stats.z_bound(len(right) + len(wrong))
    assert all(c.passed(zmax) for c in right)
    assert sum(not c.passed(zmax) for c in wrong) >= len(wrong) // 2


def test_method_agreement_detects_a_different_distribution(tmp_path):
    """The two-sample checks separate networks of different C_W (1.0 vs 1.1), as they must."""
    from sigprop.validation.experiments import method_agreement as ma

    cfg = {"activation": "tanh", "residual": 0.0, "norm": None, "C_W": 1.0, "C_b": 0.0}
    X = ma._inputs(2)
    a = ma._sim(cfg, X, 16, 2, 1500, "gram", "cpu", 1)
    b = ma._sim({**cfg, "C_W": 1.1}, X, 16, 2, 1500, "explicit", "cpu", 2)
    checks = ma.distribution_checks(cfg, b, a, [2], "C_W 1.1 vs 1.0")
    zmax = stats.z_bound(len(checks))
    assert any(not c.passed(zmax) for c in checks)
    d, where = ma.max_relative_difference(a, a, ma.KEYS)
    assert d == 0.0
    d, where = ma.max_relative_difference(b, a, ma.KEYS)
    assert d > 1e-3 and where in ma.KEYS


def test_kernel_sequences_wrong_kernel_map_fails(tmp_path):
    """Normalised tanh networks judged against the ReLU kernel map (and against their own): only the wrong one fails."""
    from sigprop.theory import KernelMap
    from sigprop.theory.activations import activation
    from sigprop.validation.experiments import kernel_sequences as ks

    act = activation("tanh")
    km_tanh, km_relu = KernelMap(act), KernelMap("relu")
    C = km_tanh.C
    ctx = Context(seed=7, out_dir=tmp_path)
    sims = ks.simulate_correlations(act, C_W=1 / C**2, G0=C**2 * ks.correlation_matrix(ks.RHO0), widths=[32, 64, 128],
                                    depth=4, budget=32 * 300, seed_of=lambda n: ctx.sub_seed("wrong", n))
    right, _ = ks.extrapolation_checks("tanh", sims, [ks.theory_sequence(km_tanh, r, 4) for r in ks.RHO0], [1, 2, 4],
                                       ks.RHO0)
    wrong, _ = ks.extrapolation_checks("tanh vs relu map", sims,
                                       [ks.theory_sequence(km_relu, r, 4) for r in ks.RHO0], [1, 2, 4], ks.RHO0)
    zmax = stats.z_bound(len(right) + len(wrong))
    assert all(c.passed(zmax) for c in right), [(c.name, c.z) for c in right]
    assert sum(not c.passed(zmax) for c in wrong) >= len(wrong) - 1, [(c.name, c.z) for c in wrong]


def test_kernel_sequences_setup_and_resolution_rule():
    from sigprop.kernels.learning.datasets import inputs_with_gram
    from sigprop.validation.experiments import kernel_sequences as ks

    R = ks.correlation_matrix(ks.RHO0)
    X = inputs_with_gram(2.0 * R)
    np.testing.assert_allclose(X @ X.T / X.shape[1], 2.0 * R, atol=1e-14)
    with pytest.raises(ValueError, match="positive definite"):
        ks.correlation_matrix((0.9, -0.9, 0.9))
    assert ks.network_setup(2.0, None) == (0.25, 4.0) and ks.network_setup(2.0, "ln_post") == (1.0, 1.0)
    sims = {n: {"mean": np.full((2, 3), 1 - 1e-12), "se": np.full((2, 3), 1e-16)} for n in (8, 16)}
    th = [np.full(3, 1 - 1e-12)] * 3
    checks, _ = ks.extrapolation_checks("x", sims, th, [1, 2], ks.RHO0)
    assert all(c.kind == "info" for c in checks)  # below float64 resolution: reported, not judged
