"""The validation runner with fake, fast experiments: judging, cache (interrupt and resume), jobs, CLI exit codes."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from sigprop.kernels import backend as kernels_backend
from sigprop.validation import cli, runner
from sigprop.validation.cache import ResultCache, cache_key, result_from_dict, result_to_dict
from sigprop.validation.experiment import Check, Context, Experiment, ExperimentResult
from sigprop.validation.stats import z_bound

# --- fake experiments (module level, so that Dask worker processes can import them) -----------------


def _settings(profile: str) -> dict:
    return {"n": {"smoke": 2, "quick": 3, "full": 4}[profile], "offset": float(os.environ.get("FAKE_OFFSET", "0"))}


def _bump(ctx: Context, name: str) -> None:
    counter = Path(ctx.out_dir) / f"calls-{name}.txt"
    counter.write_text(counter.read_text() + "x" if counter.exists() else "x")


def _good_run(ctx: Context, settings: dict) -> ExperimentResult:
    _bump(ctx, "good")
    fig = ctx.figure_path("good", "panel")
    fig.write_bytes(b"\x89PNG fake")
    checks = [Check("good", f"mean {i}", theory=1.0, estimate=1.0 + 0.5 * (i - 1) * 0.1, stderr=0.1, rule="|z| <= zmax")
              for i in range(settings["n"])]
    checks.append(Check("good", "rounding", theory=2.0, estimate=2.0 + 1e-13, stderr=0.0, rule="|d| <= 1e-10",
                        kind="exact", tol=1e-10))
    checks.append(Check("good", "fixed point (info)", theory=0.5, estimate=math.nan, stderr=0.0, rule="reported",
                        kind="info", details={"array": [1, 2]}))
    return ExperimentResult(checks=checks, figures=[("a panel", str(fig))], tables=["| a |\n|---|\n| 1 |"],
                            notes="good notes")


def _wrong_run(ctx: Context, settings: dict) -> ExperimentResult:
    """A deliberately wrong theory: the estimate is 10 standard errors away."""
    _bump(ctx, "wrong")
    return ExperimentResult(checks=[Check("wrong", "kappa of another activation", theory=0.3, estimate=0.35,
                                          stderr=0.005, rule="|z| <= zmax")])


def _crash_run(ctx: Context, settings: dict) -> ExperimentResult:
    _bump(ctx, "crash")
    raise RuntimeError("simulated crash")


def _interrupt_run(ctx: Context, settings: dict) -> ExperimentResult:
    _bump(ctx, "interrupt")
    if os.environ.get("FAKE_INTERRUPT") == "1":
        raise KeyboardInterrupt
    return ExperimentResult(checks=[Check("interrupt", "ok", 0.0, 0.01, 0.1, "|z| <= zmax")])


GOOD = Experiment("good", "Good", "always passes", _settings, _good_run, order=1)
WRONG = Experiment("wrong", "Wrong", "a wrong theory", _settings, _wrong_run, order=2)
CRASH = Experiment("crash", "Crash", "raises", _settings, _crash_run, order=3)
INTERRUPT = Experiment("interrupt", "Interrupt", "interrupted once", _settings, _interrupt_run, order=4)


def calls(out: Path, name: str) -> int:
    p = out / f"calls-{name}.txt"
    return len(p.read_text()) if p.exists() else 0


# --- runner ------------------------------------------------------------------------------------------


def test_good_suite_passes_with_sidak_bound(tmp_path):
    suite = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    assert suite.passed and suite.n_failed == 0
    assert suite.n_judged == 3  # 2 z checks + 1 exact; info not counted
    assert suite.zmax == pytest.approx(z_bound(3, 0.99))
    assert [c.passed(suite.zmax) for _, c in suite.checks()] == [True, True, True, None]
    assert suite.settings["profile"] == "smoke" and "numpy" in suite.versions and "sigprop" in suite.versions


def test_wrong_theory_fails(tmp_path):
    suite = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, WRONG], progress=False,
                             log=lambda m: None)
    assert not suite.passed and suite.n_failed == 1
    (run, check), = [(r, c) for r, c in suite.checks() if c.passed(suite.zmax) is False]
    assert run.name == "wrong" and abs(check.z) == pytest.approx(10.0)


def test_crash_is_a_failed_check_and_not_cached(tmp_path):
    suite = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, CRASH], progress=False,
                             log=lambda m: None)
    crash = suite.runs[1]
    assert crash.error and "simulated crash" in crash.error
    assert [c.name for c in crash.result.checks] == ["completed"] and not suite.passed
    assert suite.runs[0].result.checks  # the other experiment is unaffected
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, CRASH], progress=False, log=lambda m: None)
    assert calls(tmp_path, "crash") == 2 and calls(tmp_path, "good") == 1


def test_interrupt_and_resume_reuses_finished_experiments(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_INTERRUPT", "1")
    with pytest.raises(KeyboardInterrupt):
        runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, INTERRUPT], progress=False,
                         log=lambda m: None)
    assert calls(tmp_path, "good") == 1 and calls(tmp_path, "interrupt") == 1
    monkeypatch.setenv("FAKE_INTERRUPT", "0")
    first = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, INTERRUPT], progress=False,
                             log=lambda m: None)
    assert calls(tmp_path, "good") == 1, "the finished experiment must come from the cache"
    assert calls(tmp_path, "interrupt") == 2
    assert [r.cached for r in first.runs] == [True, False] and first.passed
    # the cached result is the same as a fresh one
    fresh = runner.run_suite(profile="smoke", out_dir=tmp_path / "fresh", experiments=[GOOD], progress=False,
                             log=lambda m: None)
    assert ([c.estimate for c in first.runs[0].result.checks[:3]]
            == [c.estimate for c in fresh.runs[0].result.checks[:3]])
    assert first.runs[0].result.tables == fresh.runs[0].result.tables


def test_cache_key_covers_settings_seed_backend_version(tmp_path, monkeypatch):
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    assert calls(tmp_path, "good") == 1
    runner.run_suite(profile="smoke", seed=1, out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    assert calls(tmp_path, "good") == 2
    monkeypatch.setenv("FAKE_OFFSET", "0.5")  # a settings change
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    assert calls(tmp_path, "good") == 3
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, use_cache=False,
                     log=lambda m: None)
    assert calls(tmp_path, "good") == 4
    s = _settings("smoke")
    keys = {cache_key("good", s, 0, "cpu", "1"), cache_key("good", s, 0, "cuda", "1"),
            cache_key("good", s, 0, "cpu", "2"), cache_key("good", s, 1, "cpu", "1"),
            cache_key("good", {**s, "n": 3}, 0, "cpu", "1"), cache_key("other", s, 0, "cpu", "1")}
    assert len(keys) == 6


def test_cache_entry_with_missing_figure_is_recomputed(tmp_path):
    runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    (tmp_path / "figures" / "good-panel.png").unlink()
    suite = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], progress=False, log=lambda m: None)
    assert calls(tmp_path, "good") == 2 and not suite.runs[0].cached


def test_corrupt_cache_file_is_ignored(tmp_path):
    cache = ResultCache(tmp_path)
    key = cache_key("good", _settings("smoke"), 0, "cpu")
    cache.root.mkdir(parents=True)
    cache.path("good", key).write_text("{not json")
    assert cache.load("good", key) is None


def test_result_roundtrip(tmp_path):
    ctx = Context(profile="smoke", out_dir=tmp_path)
    res = _good_run(ctx, _settings("smoke"))
    back = result_from_dict(json.loads(json.dumps(result_to_dict(res, tmp_path))))
    assert back.checks == res.checks or all(
        (a.name, a.theory, a.kind) == (b.name, b.theory, b.kind) for a, b in zip(back.checks, res.checks))
    assert back.figures == [("a panel", "figures/good-panel.png")]
    assert back.notes == res.notes and back.tables == res.tables


def test_jobs_two_processes_same_results(tmp_path):
    one = runner.run_suite(profile="smoke", out_dir=tmp_path / "a", experiments=[GOOD, WRONG], progress=False,
                           log=lambda m: None)
    two = runner.run_suite(profile="smoke", jobs=2, out_dir=tmp_path / "b", experiments=[GOOD, WRONG],
                           progress=False, log=lambda m: None)
    assert [r.name for r in two.runs] == ["good", "wrong"]
    assert [(c.name, c.estimate) for _, c in one.checks()][:3] == [(c.name, c.estimate) for _, c in two.checks()][:3]
    assert two.n_failed == 1


def test_only_selects_and_rejects_unknown(tmp_path):
    suite = runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, WRONG], only=["wrong"],
                             progress=False, log=lambda m: None)
    assert [r.name for r in suite.runs] == ["wrong"]
    with pytest.raises(ValueError, match="unknown experiment.*nope"):
        runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD], only=["nope"], progress=False)


@pytest.mark.parametrize("kw", [dict(profile="huge"), dict(backend="tpu"), dict(jobs=0), dict(seed=-1),
                                dict(family_level=1.5)])
def test_run_suite_rejects_bad_arguments(tmp_path, kw):
    with pytest.raises(ValueError):
        runner.run_suite(out_dir=tmp_path, experiments=[GOOD], progress=False, **kw)
    assert calls(tmp_path, "good") == 0


# --- CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_registry(monkeypatch):
    from sigprop.validation import experiment

    monkeypatch.setattr(experiment, "discover", lambda: [GOOD, WRONG, CRASH])


def test_cli_exit_codes(tmp_path, fake_registry, monkeypatch, capsys):
    out = tmp_path / "rep"
    assert cli.main(["validate", "--profile", "smoke", "--only", "good", "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "PASSED" in text and "report:" in text
    assert (out / "report.md").exists() and (out / "results.json").exists()
    assert cli.main(["validate", "--profile", "smoke", "--only", "good", "wrong", "--out", str(out), "--quiet"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert cli.main(["validate", "--profile", "smoke", "--only", "crash", "--out", str(out), "--quiet"]) == 1
    assert cli.main(["validate", "--only", "nope", "--out", str(out)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    monkeypatch.setattr(kernels_backend, "cuda_available", lambda: False)
    assert cli.main(["validate", "--backend", "cuda", "--only", "good", "--out", str(out)]) == 2
    assert "no usable CUDA GPU" in capsys.readouterr().err
    assert cli.main(["validate", "--jobs", "0", "--out", str(out)]) == 2
    assert cli.main(["validate", "--list"]) == 0
    assert "good" in capsys.readouterr().out


# --- sigprop bench (collects run_benchmarks rows; this module doubles as a fake benchmark module) ------


def run_benchmarks(profile: str = "quick") -> list[dict]:
    return [{"benchmark": "fake", "metric": "throughput", "value": 12.5, "unit": "1/s", "note": profile}]


def test_bench_collects_and_skips_missing(tmp_path, monkeypatch, capsys):
    from sigprop.validation.cli import bench

    monkeypatch.setattr(bench, "BENCH_MODULES", {"fake": "test_runner", "missing": "sigprop.no_such_module"})
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--profile", "full", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipping missing" in captured.err and "throughput" in captured.out
    data = json.loads(out.read_text())
    assert data["rows"] == [{"module": "fake", "benchmark": "fake", "metric": "throughput", "value": 12.5,
                             "unit": "1/s", "note": "full"}]
    assert "numpy" in data["versions"]
    assert cli.main(["bench", "--only", "nope"]) == 2


def test_ctrl_c_in_validate_prints_one_line_with_what_is_cached(tmp_path, monkeypatch, capsys):
    """Ctrl-C: exit 130 and one line (how many experiments are cached, where, how to resume), no traceback."""
    from sigprop.validation import experiment

    monkeypatch.setattr(experiment, "discover", lambda: [GOOD, INTERRUPT])
    monkeypatch.setenv("FAKE_INTERRUPT", "1")
    out = tmp_path / "rep"
    argv = ["validate", "--profile", "smoke", "--out", str(out), "--quiet"]
    try:
        rc = cli.main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped from sigprop validate (a traceback for the user)")
    assert rc == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"sigprop validate: interrupted; 1 of 2 experiments finished and are cached in {out / '.cache'}; "
                   "run the same command again to resume from them")
    monkeypatch.setenv("FAKE_INTERRUPT", "0")
    assert cli.main(argv) == 0
    assert calls(out, "good") == 1 and calls(out, "interrupt") == 2  # resumed: the finished one was reused
    monkeypatch.setenv("FAKE_INTERRUPT", "1")
    assert cli.main([*argv, "--no-cache"]) == 130
    assert "nothing was cached (--no-cache)" in capsys.readouterr().err
