"""Dask-distributed validate and simulate: results do not depend on the workers, faults, bad addresses.

* a 1-worker and a 2-worker LocalCluster give the same ``results.json`` checks, bit for bit (and the same as one
  process), for fake experiments and a real one (``method_agreement``, smoke profile);
* ``simulate`` split over 2 workers equals the one-process result bit for bit, in memory and through chunk files;
  the merged overflow/underflow report equals the one-process one;
* a worker process killed in the middle of a unit: the run completes with the same results, the cache is intact;
* ``--scheduler`` with a bad address: one line, exit 2, before any work.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sigprop.kernels import load_npz, simulate
from sigprop.kernels.cluster import check_scheduler_address, open_client, thread_plan
from sigprop.kernels.distributed import merge_reports, plan_chunks, simulate_distributed
from sigprop.kernels.float_range import check_statistics
from sigprop.kernels.simulate import check_request, run_networks
from sigprop.validation import cli, runner
from sigprop.validation.cache import ResultCache, cache_key
from sigprop.validation.experiment import Check, Context, Experiment, ExperimentResult, discover
from sigprop.validation.report import results_dict

# --- fake experiments (module level: workers import them by reference) ---------------------------------------


def _settings(profile: str) -> dict:
    return {"n": 400}


def _sample_run(ctx: Context, settings: dict) -> ExperimentResult:
    """Checks from a counter-based generator keyed by the run's seed: the same numbers in any process."""
    x = np.random.Generator(np.random.Philox(ctx.sub_seed("sample"))).standard_normal(settings["n"])
    fig = ctx.figure_path("sample", "hist")
    fig.write_bytes(b"\x89PNG fake " + x[:4].tobytes())
    return ExperimentResult(checks=[Check("sample", "mean", 0.0, float(x.mean()), float(x.std() / 20), "|z| <= zmax"),
                                    Check("sample", "m2", 1.0, float((x**2).mean()), 0.07, "|z| <= zmax")],
                            figures=[("histogram", str(fig))], notes="sample notes")


def _crash_run(ctx: Context, settings: dict) -> ExperimentResult:
    raise RuntimeError("simulated crash on a worker")


def _slow_run(ctx: Context, settings: dict) -> ExperimentResult:
    """Writes its process id to $SIGPROP_TEST_PIDS and, on its first attempt, sleeps long enough to be killed."""
    folder = Path(os.environ["SIGPROP_TEST_PIDS"])
    first = not any(folder.iterdir())
    (folder / f"pid-{os.getpid()}").write_text(str(os.getpid()))
    if first:
        time.sleep(60)
    x = np.random.Generator(np.random.Philox(ctx.sub_seed("slow"))).standard_normal(100)
    return ExperimentResult(checks=[Check("slow", "mean", 0.0, float(x.mean()), 0.1, "|z| <= zmax")])


def _part_keys(settings: dict) -> list:
    return [[n, k] for n in (8, 16, 32) for k in range(2)]


def _part(ctx: Context, settings: dict, key) -> dict:
    """One finer unit: a Gram estimate keyed by (width, seed index); counts its calls in $SIGPROP_TEST_PARTS."""
    folder = os.environ.get("SIGPROP_TEST_PARTS")
    if folder:
        (Path(folder) / f"part-{key[0]}-{key[1]}-{time.time_ns()}").write_text("x")
    time.sleep(float(settings.get("sleep", 0.0)))
    if os.environ.get("SIGPROP_TEST_PART_FAIL") == f"{key[0]}-{key[1]}":
        raise ValueError(f"simulated failure of unit {key}")
    n, k = key
    x = np.random.Generator(np.random.Philox(ctx.sub_seed("parts", n, k))).standard_normal((n, 50))
    return {"width": n, "gram": x.T @ x / n, "epoch_at": {1.0: k}}


def _parts_run(ctx: Context, settings: dict) -> ExperimentResult:
    values = ctx.run_units(_part, _part_keys(settings), settings)
    diag = np.array([v["gram"].diagonal().mean() for v in values])
    widths = sorted({v["width"] for v in values})
    assert all(v["epoch_at"] == {1.0: k} for v, (_, k) in zip(values, _part_keys(settings)))
    return ExperimentResult(checks=[Check("parts", "mean diagonal", 1.0, float(diag.mean()),
                                          float(diag.std(ddof=1) / np.sqrt(diag.size)), "|z| <= zmax",
                                          details={"widths": widths, "each": diag.tolist()})])


SAMPLE = Experiment("sample", "Sample", "counter-based numbers", _settings, _sample_run, order=1)
PARTS = Experiment("parts", "Parts", "finer units", _settings, _parts_run, order=4, units=_part_keys, run_unit=_part)
CRASH = Experiment("crash", "Crash", "raises on a worker", _settings, _crash_run, order=2)
SLOW = Experiment("slow", "Slow", "killed once", _settings, _slow_run, order=3)


def _quiet(**kw):
    return runner.run_suite(profile="smoke", progress=False, log=lambda m: None, **kw)


def _checks_json(suite) -> str:
    return json.dumps(results_dict(suite)["checks"], sort_keys=True)


@pytest.fixture(scope="module")
def two_workers():
    with open_client(jobs=2) as (client, plan):
        yield client, plan


# --- validate ----------------------------------------------------------------------------------------------


def test_one_and_two_workers_give_identical_checks(tmp_path, two_workers):
    # feature_learning: units of work, and BLAS sums that would differ with the thread count were they not pinned
    real = [e for e in discover() if e.name in ("method_agreement", "feature_learning")]
    exps = [SAMPLE, CRASH, *real]
    here = _quiet(out_dir=tmp_path / "here", experiments=exps)
    with open_client(jobs=1) as (_, plan1):
        one = _quiet(out_dir=tmp_path / "one", experiments=exps, scheduler=plan1["address"])
    two = _quiet(out_dir=tmp_path / "two", experiments=exps, scheduler=two_workers[1]["address"])
    assert _checks_json(one) == _checks_json(two) == _checks_json(here)
    assert one.runs[1].error and "simulated crash on a worker" in one.runs[1].error  # a failed check, traceback
    assert [c.name for c in two.runs[1].result.checks] == ["completed"] and not two.passed
    assert one.settings["execution"]["workers"] == 1 and two.settings["execution"]["workers"] == 2
    assert two.settings["execution"]["threads_used"]  # the threads the units ran with are recorded
    fig = tmp_path / "two" / "figures" / "sample-hist.png"  # written by the client from the worker's bytes
    assert two.runs[0].result.figures == [("histogram", str(fig))] and fig.read_bytes() == (
        tmp_path / "here" / "figures" / "sample-hist.png").read_bytes()
    again = _quiet(out_dir=tmp_path / "two", experiments=exps, scheduler=two_workers[1]["address"])
    assert [r.cached for r in again.runs] == [True, False, True, True]  # cached by the client; the crash is not


def _parts_called(folder: Path) -> int:
    return len(list(folder.iterdir()))


def test_finer_units_give_the_same_checks_anywhere_and_resume_from_the_cache(tmp_path, two_workers, monkeypatch):
    by_hand = _parts_run(Context(profile="smoke", out_dir=tmp_path), _settings("smoke"))  # no runner: computed here
    here = _quiet(out_dir=tmp_path / "here", experiments=[PARTS])
    two = _quiet(out_dir=tmp_path / "two", experiments=[PARTS], scheduler=two_workers[1]["address"])
    assert _checks_json(here) == _checks_json(two)
    assert here.runs[0].result.checks[0].estimate == by_hand.checks[0].estimate
    assert two.settings["execution"]["units"] == {"parts": 6} and here.settings["execution"]["units"] == {"parts": 6}
    # units are cached one by one: a run whose combine is gone recomputes no unit; one whose unit failed
    # recomputes only the missing unit
    parts = tmp_path / "calls"
    parts.mkdir()
    monkeypatch.setenv("SIGPROP_TEST_PARTS", str(parts))
    for f in (tmp_path / "two" / ".cache").glob("parts-*.json"):
        f.unlink()  # the combined result, not the units
    again = _quiet(out_dir=tmp_path / "two", experiments=[PARTS])  # here: the workers do not see the env variable
    assert _parts_called(parts) == 0 and _checks_json(again) == _checks_json(two)
    monkeypatch.setenv("SIGPROP_TEST_PART_FAIL", "16-1")
    failed = _quiet(out_dir=tmp_path / "fresh", experiments=[PARTS])
    assert [c.name for c in failed.runs[0].result.checks] == ["completed"] and not failed.passed
    assert "simulated failure of unit [16, 1]" in failed.runs[0].error
    assert _parts_called(parts) == 4  # in-process: units in order, stopping at the failure (8-0, 8-1, 16-0, 16-1)
    monkeypatch.delenv("SIGPROP_TEST_PART_FAIL")
    units = tmp_path / "fresh" / ".cache" / "units"
    before = {f.name: f.stat().st_mtime_ns for f in units.iterdir()}
    assert len(before) == 3  # the units that finished before the failure
    resumed = _quiet(out_dir=tmp_path / "fresh", experiments=[PARTS], scheduler=two_workers[1]["address"])
    after = {f.name: f.stat().st_mtime_ns for f in units.iterdir()}
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())  # only the missing 3 were computed
    assert _checks_json(resumed) == _checks_json(here)


def test_thread_plan_and_addresses(tmp_path):
    assert thread_plan(2, cores=2)["numba_threads"] == 1 and thread_plan(1, cores=16)["blas_threads"] == 16
    assert thread_plan(4, threads=8, cores=4)["numba_threads"] == 8  # the user's choice, even above the cores
    sched = tmp_path / "scheduler.json"
    sched.write_text("{}")
    assert check_scheduler_address(str(sched)) == str(sched)
    for bad in ("", "tcp://", "http://host:8786", "no-such-file.json"):
        with pytest.raises(ValueError):
            check_scheduler_address(bad)


# --- faults ------------------------------------------------------------------------------------------------


def test_worker_killed_mid_unit_run_completes_identically(tmp_path, monkeypatch):
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv("SIGPROP_TEST_PIDS", str(pids))  # inherited by the LocalCluster's workers
    killed = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            found = list(pids.iterdir())
            if found:
                pid = int(found[0].read_text() or found[0].name.split("-")[1])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = tmp_path / "rep"
    suite = _quiet(out_dir=out, experiments=[SAMPLE, SLOW], jobs=2)
    thread.join()
    assert killed, "the unit never started"
    assert len(list(pids.iterdir())) == 2, "the killed unit must have run again, in another process"
    assert suite.passed and [r.error for r in suite.runs] == [None, None]
    monkeypatch.setenv("SIGPROP_TEST_PIDS", str(tmp_path / "again"))
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "pid-0").write_text("0")  # not the first attempt: no sleep
    reference = _quiet(out_dir=tmp_path / "ref", experiments=[SAMPLE, SLOW])
    assert _checks_json(suite) == _checks_json(reference)
    cache = ResultCache(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a damaged entry would warn
        for exp in (SAMPLE, SLOW):
            assert cache.load(exp.name, cache_key(exp.name, _settings("smoke"), 0, "cpu")) is not None
    assert sorted(p.name for p in cache.root.iterdir() if ".tmp" in p.name) == []


# --- simulate ----------------------------------------------------------------------------------------------

X = np.random.default_rng(3).standard_normal((3, 8))


@pytest.mark.parametrize("kw", [dict(method="gram"), dict(method="explicit", backward=True, weights="rademacher")])
def test_simulate_over_two_workers_is_bit_identical(tmp_path, two_workers, kw):
    args = dict(depth=4, width=16, activation="tanh", C_W=1.5, C_b=0.1, n_networks=23, seed=7, **kw)
    one = simulate(X, **args)
    client = two_workers[0]
    two = simulate_distributed(client, X, chunk=4, **args)
    assert one.settings == two.settings and one.arrays().keys() == two.arrays().keys()
    for k, a in one.arrays().items():
        assert np.array_equal(a, getattr(two, k)), k
    path = simulate_distributed(client, X, chunk=5, out=tmp_path / "run.npz", **args)
    arrays, settings = load_npz(path)
    ref_arrays, ref_settings = load_npz(one.save_npz(tmp_path / "one.npz"))
    assert settings == ref_settings and arrays.keys() == ref_arrays.keys()
    assert all(np.array_equal(arrays[k], ref_arrays[k]) for k in arrays)
    assert not (tmp_path / "run.npz.chunks").exists()


@pytest.mark.parametrize("C_W", [1e70, 1e-70])
def test_chunked_range_reports_merge_to_the_one_process_report(C_W):
    """Overflow (C_W huge) and underflow (tiny): the convention per chunk, merged = once on all networks."""
    request = check_request(X, depth=12, width=8, activation="relu", C_W=C_W, n_networks=20, seed=1)
    whole = run_networks(request, 0, 20)
    reports, parts = [], []
    for first, count in plan_chunks(20, 1, 1, chunk=3):
        part = run_networks(request, first, count)
        reports.append(check_statistics(part, X, 0.0, "gram", warn=False))
        parts.append(part)
    expected = check_statistics(whole, X, 0.0, "gram", warn=False)
    assert merge_reports(reports) == expected
    assert expected.overflow_networks + expected.underflow_networks > 0
    for k in whole:
        assert np.array_equal(np.concatenate([p[k] for p in parts]), whole[k], equal_nan=True)


def test_simulate_cli_on_two_workers(tmp_path, capsys):
    out = tmp_path / "d.npz"
    argv = ["simulate", "--activation", "relu", "--C-W", "2", "--depth", "3", "--width", "16", "--networks", "30"]
    assert cli.main([*argv, "--out", str(tmp_path / "one.npz")]) == 0
    assert cli.main([*argv, "--jobs", "2", "--chunk", "7", "--chunk-files", "--out", str(out)]) == 0
    a, s = load_npz(out)
    b, t = load_npz(tmp_path / "one.npz")
    assert s == t and all(np.array_equal(a[k], b[k]) for k in b)
    assert cli.main([*argv, "--chunk", "7", "--out", str(out)]) == 2  # --chunk needs workers


# --- bad addresses ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_registry(monkeypatch):
    from sigprop.validation import experiment

    monkeypatch.setattr(experiment, "discover", lambda: [SAMPLE])


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "no-such-scheduler.json", "http://x:8786"])
def test_bad_scheduler_is_one_line_exit_2_before_any_work(tmp_path, fake_registry, capsys, address):
    out = tmp_path / "rep"
    rc = cli.main(["validate", "--profile", "smoke", "--out", str(out), "--quiet", "--scheduler", address,
                   "--connect-timeout", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("sigprop validate: error: ") and address in err[0]
    assert not (out / ".cache").exists() and not (out / "results.json").exists()
    rc = cli.main(["simulate", "--activation", "relu", "--C-W", "2", "--depth", "2", "--width", "8",
                   "--scheduler", address, "--connect-timeout", "1", "--out", str(tmp_path / "s.npz")])
    assert rc == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "s.npz").exists()


def test_jobs_and_scheduler_exclude_each_other(tmp_path, fake_registry, capsys):
    assert cli.main(["validate", "--jobs", "2", "--scheduler", "tcp://h:1", "--out", str(tmp_path / "r")]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_ctrl_c_during_a_cluster_run_keeps_finished_units_and_resumes(tmp_path, monkeypatch):
    """Ctrl-C while units are on workers: the cluster is stopped, finished units are cached, the rerun reuses them."""
    calls = []
    real_attach = runner.attach_files

    def attach_then_interrupt(outcome, out):
        calls.append(outcome)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_attach(outcome, out)

    monkeypatch.setattr(runner, "attach_files", attach_then_interrupt)
    second = Experiment("sample2", "Sample 2", "the same numbers again", _settings, _sample_run, order=4)
    with pytest.raises(KeyboardInterrupt):
        _quiet(out_dir=tmp_path, experiments=[SAMPLE, second], jobs=2)
    monkeypatch.setattr(runner, "attach_files", real_attach)
    suite = _quiet(out_dir=tmp_path, experiments=[SAMPLE, second], jobs=2)
    assert sorted(r.cached for r in suite.runs) == [False, True] and suite.passed


def _slow_parts_settings(profile: str) -> dict:
    return {"n": 400, "sleep": 1.0}


SLOW_PARTS = Experiment("parts", "Parts", "finer units, 1 s each", _slow_parts_settings, _parts_run, order=4,
                        units=_part_keys, run_unit=_part)


def test_scheduler_gone_mid_run_fails_cleanly_and_the_rerun_computes_only_missing_units(tmp_path):
    """The scheduler disappears after the first unit: the run ends (no hang) with a failed check, the finished units
    stay cached, and the next run computes only the others."""
    from distributed import LocalCluster

    units = tmp_path / ".cache" / "units"
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=40)

    def close_after_first_unit():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (units.exists() and any(units.glob("*.json"))):
            time.sleep(0.05)
        cluster.close()

    killer = threading.Thread(target=close_after_first_unit, daemon=True)
    killer.start()
    t0 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gone = _quiet(out_dir=tmp_path, experiments=[SLOW_PARTS], scheduler=cluster.scheduler_address)
    killer.join(timeout=60)
    assert time.monotonic() - t0 < 120
    assert [c.name for c in gone.runs[0].result.checks] == ["completed"] and not gone.passed
    done = {f.name: f.stat().st_mtime_ns for f in units.iterdir()}
    assert 1 <= len(done) < 6
    again = _quiet(out_dir=tmp_path, experiments=[SLOW_PARTS])
    after = {f.name: f.stat().st_mtime_ns for f in units.iterdir()}
    assert len(after) == 6 and all(after[k] == v for k, v in done.items()) and again.passed


@pytest.mark.parametrize("name", sorted(e.name for e in discover() if e.units is not None))
def test_experiment_units_combine_the_same_from_the_cache(tmp_path, name):
    """An experiment with finer units gives the same checks whether its units were just computed or decoded from
    the unit cache (values survive the JSON round trip exactly: arrays, tuples, non-string keys)."""
    exps = [e for e in discover() if e.name == name]
    first = _quiet(out_dir=tmp_path, experiments=exps)
    for f in (tmp_path / ".cache").glob(f"{name}-*.json"):
        f.unlink()  # the combined result only
    again = _quiet(out_dir=tmp_path, experiments=exps)
    assert not again.runs[0].cached and _checks_json(again) == _checks_json(first)
    assert len(list((tmp_path / ".cache" / "units").glob(f"{name}-*.json"))) == len(exps[0].units(
        exps[0].settings("smoke")))


_LATE_ENVIRONMENT = """
import os, numba
size = numba.config.NUMBA_NUM_THREADS            # read when numba was imported
os.environ["NUMBA_NUM_THREADS"] = str(size + 1)  # the worker's environment, set after that (as a Dask Nanny does)
from sigprop.kernels.cluster import limit_threads
with limit_threads(1, 1):
    pass                                         # launches numba's threads
@numba.njit
def fresh(x):
    return x + 1
with limit_threads(1, 1):
    assert fresh(1) == 2                         # a compilation re-reads NUMBA_NUM_THREADS
print("ok", numba.config.NUMBA_NUM_THREADS, os.environ["NUMBA_NUM_THREADS"])
"""


def test_a_unit_compiles_after_the_environment_changed_numba_threads(tmp_path):
    """Regression (the full equilibrium run): a worker whose NUMBA_NUM_THREADS was set after numba's import launched
    its threads with the old size in limit_threads, and the next compilation raised 'Cannot set NUMBA_NUM_THREADS
    to a different value once the threads have been launched'."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", _LATE_ENVIRONMENT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _, size, variable = done.stdout.split()
    assert size == variable  # numba follows the environment
