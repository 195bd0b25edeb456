"""The validation runner under faults of its output folder and cache: paths checked before any work, a cache that
cannot be written mid-run, damaged cache entries, and worker-supplied file paths that leave the report folder."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation import cli, runner
from sigprop.validation.cache import CacheWarning, ResultCache, decode_value, encode_value, entry_checksum
from sigprop.validation.experiment import Check, Context, Experiment, ExperimentResult
from sigprop.validation.work_units import UnitOutcome, attach_files

# --- a tiny experiment with three finer units (module level, as the runner's other tests do) ----------------


def _settings(profile: str) -> dict:
    return {"n": 3}


def _keys(settings: dict) -> list:
    return list(range(settings["n"]))


def _bump(out: Path, name: str) -> None:
    counter = Path(out) / f"calls-{name}.txt"
    with contextlib.suppress(PermissionError):  # a report folder made read-only: the calls are not counted
        counter.write_text(counter.read_text() + "x" if counter.exists() else "x")


def calls(out: Path, name: str) -> int:
    p = out / f"calls-{name}.txt"
    return len(p.read_text()) if p.exists() else 0


def _unit(ctx: Context, settings: dict, key) -> np.ndarray:
    _bump(ctx.out_dir, "unit")
    cache = Path(ctx.out_dir) / ".cache"
    if key == 0 and os.environ.get("FAKE_BREAK_CACHE") == "1":  # the cache folder stops being writable mid-run
        cache.mkdir(exist_ok=True)
        (cache / "units").write_text("not a folder any more")
    if key == 0 and os.environ.get("FAKE_BREAK_CACHE") == "chmod":
        cache.mkdir(exist_ok=True)
        cache.chmod(0o500)
    if key == 0 and os.environ.get("FAKE_BREAK_CACHE") == "out":
        Path(ctx.out_dir).chmod(0o500)
    return np.array([key + 1.0])


def _run(ctx: Context, settings: dict) -> ExperimentResult:
    _bump(ctx.out_dir, "run")
    values = ctx.run_units(_unit, _keys(settings), settings)
    if os.environ.get("FAKE_BREAK_REPORT") == "1":  # the report's place is taken mid-run
        (Path(ctx.out_dir) / "report.md").mkdir()
    total = float(sum(v.sum() for v in values))
    return ExperimentResult(checks=[Check("units", "sum of the units", theory=6.0, estimate=total, stderr=0.0,
                                          rule="exact", kind="exact", tol=0.0)])


UNITS = Experiment("units", "Units", "three finer units", _settings, _run, order=1, units=_keys, run_unit=_unit)


def _suite(out: Path, **kw):
    return runner.run_suite(profile="smoke", out_dir=out, experiments=[UNITS], progress=False, log=lambda m: None,
                            **kw)


@pytest.fixture
def fake_registry(monkeypatch):
    from sigprop.validation import experiment

    monkeypatch.setattr(experiment, "discover", lambda: [UNITS])


def _validate(out: Path, *extra: str) -> list[str]:
    return ["validate", "--profile", "smoke", "--out", str(out), "--quiet", *extra]


# --- a cache that cannot be written mid-run ----------------------------------------------------------------


def test_cache_unwritable_mid_run_warns_once_and_keeps_the_units_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_BREAK_CACHE", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        suite = _suite(tmp_path)
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1 and "cannot write the cache entry of units" in str(cache_warnings[0].message)
    assert suite.passed and suite.runs[0].result.checks[0].estimate == 6.0  # every unit's value was used
    assert calls(tmp_path, "unit") == 3 and calls(tmp_path, "run") == 1
    assert suite.settings["execution"]["cache_not_written"] == 3
    assert not list(tmp_path.rglob("*.tmp*"))  # no temporary file left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_cache_made_read_only_mid_run_warns_and_the_run_completes(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_BREAK_CACHE", "chmod")
    try:
        with pytest.warns(CacheWarning, match="Permission denied"):
            suite = _suite(tmp_path)
    finally:
        (tmp_path / ".cache").chmod(0o700)
    assert suite.passed and suite.runs[0].result.checks[0].estimate == 6.0
    assert suite.settings["execution"]["cache_not_written"] == 4  # three units and the experiment
    assert not list(tmp_path.rglob("*.tmp*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_out_made_read_only_mid_run_is_one_line_exit_2_without_traceback(tmp_path, fake_registry, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("FAKE_BREAK_CACHE", "out")
    out = tmp_path / "rep"
    try:
        with pytest.warns(CacheWarning, match="Permission denied"):
            assert cli.main(_validate(out)) == 2
    finally:
        out.chmod(0o700)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "4 cache entries could not be written" in err
    assert err.strip().splitlines()[-1].startswith("sigprop validate: error: cannot write the report to ")
    assert calls(out, "unit") == 3  # each unit computed once (the run's counter cannot be created any more)


def test_cache_unwritable_mid_run_cli_reports_it_and_writes_the_report(tmp_path, fake_registry, monkeypatch,
                                                                        capsys):
    monkeypatch.setenv("FAKE_BREAK_CACHE", "1")
    out = tmp_path / "rep"
    with pytest.warns(CacheWarning, match="cannot write the cache entry"):
        assert cli.main(_validate(out)) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "3 cache entries could not be written" in err
    data = json.loads((out / "results.json").read_text())
    assert data["passed"] and data["settings"]["execution"]["cache_not_written"] == 3
    assert "3 cache entries could not be written" in (out / "report.md").read_text()


def test_report_unwritable_at_the_end_is_one_line_exit_2(tmp_path, fake_registry, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_BREAK_REPORT", "1")
    out = tmp_path / "rep"
    assert cli.main(_validate(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sigprop validate: error: cannot write the report to ")
    assert "report.md" in err[0]
    assert not list(out.glob("*.tmp*"))


# --- output paths checked before any work ------------------------------------------------------------------


@pytest.mark.parametrize("name, make", [("report.md", "dir"), ("results.json", "dir"), ("figures", "file"),
                                        (".cache", "file"), (".cache/units", "file")])
def test_an_output_path_of_the_wrong_kind_is_one_line_exit_2_before_any_work(tmp_path, fake_registry, capsys,
                                                                             name, make):
    out = tmp_path / "rep"
    path = out / name
    path.parent.mkdir(parents=True)
    path.mkdir() if make == "dir" else path.write_text("x")
    assert cli.main(_validate(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "remove or rename it" in err[0]
    assert calls(out, "unit") == 0 and calls(out, "run") == 0
    with pytest.raises(InputError, match="out_dir: .*remove or rename it"):
        _suite(out)


def test_no_cache_does_not_need_the_cache_folder(tmp_path):
    (tmp_path / ".cache").write_text("x")
    assert _suite(tmp_path, use_cache=False).passed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_report_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures").chmod(0o500)
    try:
        with pytest.raises(InputError, match="figures"):
            _suite(tmp_path)
    finally:
        (tmp_path / "figures").chmod(0o700)
    assert calls(tmp_path, "unit") == 0


def test_check_report_folder_creates_the_folder_and_refuses_a_file(tmp_path):
    assert runner.check_report_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="--out .*is an existing file"):
        runner.check_report_folder(tmp_path / "f", option="--out")


# --- damaged cache entries ---------------------------------------------------------------------------------


def _unit_entries(out: Path) -> list[Path]:
    return sorted((out / ".cache" / "units").glob("units-*.json"))


def _drop_result(out: Path) -> None:
    for f in (out / ".cache").glob("units-*.json"):
        f.unlink()  # the combined result: the next run combines the units again


def test_unit_entry_with_an_object_dtype_and_a_valid_checksum_is_recomputed(tmp_path):
    _suite(tmp_path)
    _drop_result(tmp_path)
    path = _unit_entries(tmp_path)[0]
    entry = json.loads(path.read_text())
    entry["value"] = {"__ndarray__": base64.b64encode(bytes(8)).decode(), "dtype": "|O", "shape": [1]}
    entry["checksum"] = entry_checksum(entry)
    path.write_text(json.dumps(entry))
    with pytest.warns(CacheWarning, match="not a plain number, bool or string dtype"):
        suite = _suite(tmp_path)
    assert suite.passed and suite.runs[0].result.checks[0].estimate == 6.0
    assert calls(tmp_path, "unit") == 4  # the damaged unit only
    assert json.loads(path.read_text())["value"]["dtype"] == "<f8"  # overwritten


@pytest.mark.parametrize("where", ["unit", "experiment"])
def test_cache_file_that_is_not_json_warns_and_is_recomputed(tmp_path, where):
    _suite(tmp_path)
    if where == "unit":
        _drop_result(tmp_path)
        (path,) = _unit_entries(tmp_path)[:1]
    else:
        (path,) = (tmp_path / ".cache").glob("units-*.json")
    path.write_text('{"format": 2, "key": "cut sho')
    with pytest.warns(CacheWarning, match="is not valid JSON"):
        suite = _suite(tmp_path)
    assert suite.passed and not suite.runs[0].cached
    assert calls(tmp_path, "run") == 2 and calls(tmp_path, "unit") == (4 if where == "unit" else 3)
    json.loads(path.read_text())  # overwritten with a valid entry


def test_a_missing_entry_is_a_plain_miss(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert ResultCache(tmp_path).load("units", "0" * 64) is None
        assert ResultCache(tmp_path).load_unit("units", "0" * 64) is None


@pytest.mark.parametrize("dtype", ["|O", "|V8", "<M8[s]", "[('a', '<f8')]", 3])
def test_decode_value_refuses_a_dtype_that_is_not_plain_data(dtype):
    with pytest.raises(ValueError, match="dtype"):
        decode_value({"__ndarray__": base64.b64encode(bytes(8)).decode(), "dtype": dtype, "shape": [1]})


@pytest.mark.parametrize("a", [np.zeros(1, dtype=[("a", "<f8")]), np.array(["2020-01-01"], dtype="M8[D]"),
                               np.array([None], dtype=object)])
def test_encode_value_refuses_an_array_that_is_not_plain_data(a):
    with pytest.raises(InputTypeError, match="plain number, bool or string"):
        encode_value(a)


@pytest.mark.parametrize("a", [np.arange(3, dtype=np.int16), np.array([1 + 2j]), np.array([True]),
                               np.array(["ab"]), np.array([b"ab"])])
def test_plain_arrays_round_trip(a):
    back = decode_value(json.loads(json.dumps(encode_value(a))))
    assert back.dtype == a.dtype and np.array_equal(back, a)


# --- files sent back by workers ----------------------------------------------------------------------------


@pytest.mark.parametrize("rel", ["../escaped.png", "figures/../../escaped.png", "ABSOLUTE", "link/escaped.png", ".",
                                 ""])
def test_attach_files_refuses_paths_that_leave_the_report_folder(tmp_path, rel):
    out, outside = tmp_path / "rep", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    rel = str(outside / "absolute.png") if rel == "ABSOLUTE" else rel
    (out / "link").symlink_to(outside)
    outcome = UnitOutcome(None, 0.0, files={"figures/fine.png": b"ok", rel: b"bad"}, worker="w:1")
    with pytest.raises(ValueError, match="leaves the report folder"):
        attach_files(outcome, out)
    assert not (out / "figures").exists()  # checked before anything is written
    assert not list(outside.iterdir()) and not (tmp_path / "escaped.png").exists()


def test_attach_files_writes_paths_inside_the_report_folder(tmp_path):
    result = ExperimentResult(checks=[], figures=[("a panel", "figures/a.png")])
    outcome = UnitOutcome(result, 0.0, files={"figures/a.png": b"png"}, worker="w:1")
    attached = attach_files(outcome, tmp_path)
    assert (tmp_path / "figures" / "a.png").read_bytes() == b"png"
    assert attached.figures == [("a panel", str(tmp_path / "figures" / "a.png"))]


def test_a_refused_file_path_fails_the_experiment_with_a_clear_error(tmp_path):
    result = ExperimentResult(checks=[Check("x", "c", 1.0, 1.0, 0.1, "|z| <= zmax")])
    bad = UnitOutcome(result, 0.0, files={"../escaped.png": b"bad"}, worker="w:1")
    got, error = runner._attached(bad, tmp_path)
    assert got is None and "could not write the unit's files" in error and "leaves the report folder" in error
    fine = UnitOutcome(result, 0.0, files={}, worker="w:1")
    assert runner._attached(fine, tmp_path) == (result, None)
