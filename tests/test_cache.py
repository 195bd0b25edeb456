"""Cache integrity: an entry edited by hand (still valid JSON) is not trusted."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sigprop.validation import runner
from sigprop.validation.cache import CacheWarning, ResultCache, cache_key, entry_checksum
from sigprop.validation.experiment import Check, Context, Experiment, ExperimentResult


def _settings(profile: str) -> dict:
    return {"n": 2}


def _run(ctx: Context, settings: dict) -> ExperimentResult:
    counter = Path(ctx.out_dir) / "calls.txt"
    counter.write_text(counter.read_text() + "x" if counter.exists() else "x")
    return ExperimentResult(checks=[Check("fake", "mean", theory=1.0, estimate=1.01, stderr=0.1, rule="|z| <= zmax"),
                                    Check("fake", "info", theory=0.5, estimate=math.nan, stderr=0.0, rule="reported",
                                          kind="info")],
                            tables=["| a |\n|---|\n| 1 |"], notes="notes")


FAKE = Experiment("fake", "Fake", "one check", _settings, _run, order=1)


def run(out: Path):
    return runner.run_suite(profile="smoke", out_dir=out, experiments=[FAKE], progress=False, log=lambda m: None)


def calls(out: Path) -> int:
    return len((out / "calls.txt").read_text())


def entry_path(out: Path) -> Path:
    (path,) = (out / ".cache").glob("fake-*.json")
    return path


def test_stored_entry_carries_a_checksum_and_is_reused(tmp_path):
    run(tmp_path)
    entry = json.loads(entry_path(tmp_path).read_text())
    assert entry["checksum"] == entry_checksum(entry) and len(entry["checksum"]) == 64
    again = run(tmp_path)
    assert again.runs[0].cached and calls(tmp_path) == 1


def test_edited_entry_that_is_still_valid_json_is_recomputed_and_overwritten(tmp_path):
    run(tmp_path)
    path = entry_path(tmp_path)
    entry = json.loads(path.read_text())
    entry["result"]["checks"][0]["estimate"] = 5.0  # a hand edit: the check would now fail
    path.write_text(json.dumps(entry, indent=1))
    with pytest.warns(CacheWarning, match="does not match its checksum"):
        suite = run(tmp_path)
    assert not suite.runs[0].cached and calls(tmp_path) == 2
    assert suite.runs[0].result.checks[0].estimate == 1.01 and suite.passed
    fixed = json.loads(path.read_text())  # overwritten with the recomputed result and a valid checksum
    assert fixed["result"]["checks"][0]["estimate"] == 1.01 and fixed["checksum"] == entry_checksum(fixed)
    assert run(tmp_path).runs[0].cached and calls(tmp_path) == 2


def test_entry_without_checksum_is_not_trusted(tmp_path):
    run(tmp_path)
    path = entry_path(tmp_path)
    entry = json.loads(path.read_text())
    del entry["checksum"]
    path.write_text(json.dumps(entry))
    key = cache_key("fake", _settings("smoke"), 0, "cpu")
    with pytest.warns(CacheWarning, match="has no checksum"):
        assert ResultCache(tmp_path).load("fake", key) is None


def test_checksum_survives_formatting_and_key_order(tmp_path):
    """Only the content counts: re-indenting or reordering the JSON keeps the entry valid."""
    run(tmp_path)
    path = entry_path(tmp_path)
    entry = json.loads(path.read_text())
    path.write_text(json.dumps(dict(reversed(list(entry.items()))), indent=4))
    assert run(tmp_path).runs[0].cached and calls(tmp_path) == 1
