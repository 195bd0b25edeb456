"""The `rainbow` experiment of `sigprop validate`: smoke run, its FINDING, its pure helpers, and
the trained-network part (info checks with stated expectations, three figures, two tables)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigprop.theory.errors import InputError
from sigprop.validation import stats
from sigprop.validation.experiment import Context, discover
from sigprop.validation.experiments import rainbow as rb


def test_settings_are_json_and_profiles_validated():
    for profile in ("smoke", "quick", "full"):
        s = rb.settings(profile)
        assert json.loads(json.dumps(s)) == s
        assert len(s["widths"]) == len(s["networks"]) and len(s["widths"]) - s["rate_from"] >= 3
        t = s["trained"]
        assert len(t["widths"]) >= 3 and t["seeds"] >= 2 and t["resamples"] >= 2  # a slope; pairs; intervals
        assert t["n_train"] + t["n_test"] <= 1797
    assert rb.settings("quick")["trained"]["widths"] == [128, 256, 512]
    assert rb.settings("full")["trained"]["widths"] == [128, 256, 512, 1024]
    with pytest.raises(InputError, match="profile"):
        rb.settings("huge")
    with pytest.raises(InputError, match="profile"):
        rb.trained_settings("huge")
    assert rb.EXPERIMENT in discover()


def test_smoke_run_checks_pass_and_figures_are_written(tmp_path):
    result = rb.run(Context(profile="smoke", seed=3, out_dir=tmp_path), rb.settings("smoke"))
    judged = [c for c in result.checks if c.kind != "info"]
    assert len(judged) == 2 * 3 * 28  # two configurations, 3 layers, upper triangle of the 7 x 7 kernel
    assert all(c.kind == "z" for c in judged)
    zmax = stats.z_bound(len(judged))
    failed = [(c.name, c.theory, c.estimate, c.stderr) for c in judged if not c.passed(zmax)]
    assert not failed, failed
    assert all(c.experiment == "rainbow" for c in result.checks)
    rates = [c for c in result.checks if "mean squared kernel error" in c.name]
    assert len(rates) == 2 and all(c.kind == "info" and c.theory == -1.0 for c in rates)
    assert any(c.details.get("finding") for c in result.checks)
    assert len(result.figures) == 5
    for _, path in result.figures:
        p = Path(path)
        assert p.exists() and p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
    names = [Path(path).name for _, path in result.figures]
    assert {f"rainbow-trained-{k}.png" for k in ("spectra", "alignment", "accuracy")} <= set(names)
    _check_trained_part(result, rb.settings("smoke")["trained"])


def _check_trained_part(result, t):
    """Every trained-network check is 'info', states its expectation, and the counts follow the settings:
    per width and layer CKA, aligned error, PR ratio and the MP sanity check; per width four accuracies and two
    differences; per layer one exponent."""
    trained = [c for c in result.checks if c.name.startswith("trained:")]
    W, L = len(t["widths"]), t["depth"]
    assert len(trained) == W * L * 4 + W * 6 + L
    assert all(c.kind == "info" for c in trained)
    assert all(any(w in c.rule for w in ("expected", "sanity", "95% CI")) for c in trained)
    cka = [c for c in trained if "CKA" in c.name]
    assert len(cka) == W * L and all(0.0 <= c.estimate <= 1.0 for c in cka)
    acc = [c for c in trained if "test accuracy" in c.name]
    assert len(acc) == 4 * W and all(0.1 < c.estimate <= 1.0 for c in acc)  # better than chance (10 classes)
    ks = [c for c in trained if "KS distance" in c.name]
    assert all(c.estimate < 0.15 for c in ks)  # a white layer at initialisation is Marchenko-Pastur
    pr = [c for c in trained if "participation ratio" in c.name]
    assert all(0.05 < c.details["network0_initial_over_mp_pr"] < 1.5 for c in pr)
    assert any("Test accuracy" in tab for tab in result.tables) and any("participation" in tab for tab in result.tables)
    assert "stream 24" in result.notes


def test_finding_is_judged_by_the_checks():
    assert rb.FINDING.basis == "checks" and "rainbow" in rb.FINDING.claim


def test_problem_data_is_normalised_and_psd():
    X, Z, c_full, c_low = rb.problem_data(4, 3, 6, 11)
    for Y in (X, Z):
        np.testing.assert_allclose(np.sum(Y ** 2, axis=1) / 6, 1.0, rtol=1e-12)
    for C in (c_full, c_low):
        np.testing.assert_allclose(np.trace(C), 6.0, rtol=1e-12)
        np.testing.assert_array_equal(C, C.T)
        assert np.linalg.eigvalsh(C)[0] > 0
    assert np.linalg.eigvalsh(c_low)[-3] < 0.2 * np.linalg.eigvalsh(c_low)[-1]  # rank 2 plus a small white part


def test_layer_parameters():
    a, b = rb.layer_parameters("full", (1.6, 0.4, 5.0), 3)
    assert a == [1.6, 1.6] and b == [[0.4, 0.2, 0.4], [0.2, 0.4, 0.4]]
    a, b = rb.layer_parameters("low", (1.6, 0.4, 5.0), 4)
    assert a[0] == 0.0 and len(b[0]) == 4 and min(min(r) for r in b) > 0
    with pytest.raises(InputError, match="kind"):
        rb.layer_parameters("diagonal", (1.6, 0.4, 5.0), 3)


def test_entry_label():
    assert [rb.entry_label(i, 2) for i in range(4)] == ["x1", "x2", "z1", "z2"]


def test_rate_fit_recovers_the_exponent_and_skips_leading_widths():
    w = np.array([64.0, 128.0, 256.0, 512.0, 1024.0])
    mse = 2.0 / w + 50.0 / w ** 2 * (w == 64)  # a pre-asymptotic first point, left out by start=1
    fit = rb.rate_fit(w, mse, 0.05 * mse, start=1)
    assert fit.exponent == pytest.approx(-1.0, abs=1e-12) and fit.n == 4
    assert rb.rate_fit(w, mse, 0.05 * mse, start=0).exponent < -1.05


def test_kernel_checks_z_is_the_extrapolated_intercept_against_theory():
    widths = [64, 128, 256]
    theory = np.ones((1, 2, 2))
    mean = np.stack([theory + 3.0 / n for n in widths])
    se = np.full(mean.shape, 1e-3)
    checks, zs = rb.kernel_checks("toy", widths, {"theory": theory, "mean": mean, "se": se}, P=1)
    assert [c.name for c in checks] == ["toy: H^(1)(x1, x1)", "toy: H^(1)(x1, z1)", "toy: H^(1)(z1, z1)"]
    assert np.nanmax(np.abs(zs)) < 1e-6
    assert np.isnan(zs[0, 1, 0])  # lower triangle: not a separate check


def test_interval95_is_the_student_t_interval():
    m, se, h = rb.interval95([0.9, 0.92, 0.94, 0.96])
    assert m == pytest.approx(0.93) and se == pytest.approx(np.std([0.9, 0.92, 0.94, 0.96], ddof=1) / 2)
    assert h == pytest.approx(3.182446305284263 * se, rel=1e-9)
