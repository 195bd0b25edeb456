"""report.md, results.json (schema, strict JSON) and the terminal table of a run with fake experiments."""
from __future__ import annotations

import json
import math

import pytest

from sigprop.validation import report, runner
from test_runner import CRASH, GOOD, WRONG


@pytest.fixture
def suite(tmp_path):
    return runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=[GOOD, WRONG, CRASH], progress=False,
                            log=lambda m: None)


def test_results_json_schema(suite, tmp_path):
    md, js = report.write_report(suite)
    data = json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    for key in ("checks", "settings", "versions", "seed", "timings", "zmax", "n_judged", "family_level", "passed",
                "experiments"):
        assert key in data, key
    assert data["passed"] is False and data["n_failed"] == 2
    assert {"python", "numpy", "numba", "sigprop"} <= set(data["versions"])
    assert set(data["timings"]) == {"good", "wrong", "crash", "total"}
    assert data["settings"]["profile"] == "smoke" and data["seed"] == 0
    for c in data["checks"]:
        for key in ("experiment", "name", "theory", "estimate", "stderr", "rule", "passed", "kind", "z"):
            assert key in c, key
    by_name = {(c["experiment"], c["name"]): c for c in data["checks"]}
    info = by_name[("good", "fixed point (info)")]
    assert info["estimate"] is None and info["passed"] is None  # nan written as null
    assert by_name[("wrong", "kappa of another activation")]["passed"] is False
    assert by_name[("crash", "completed")]["passed"] is False
    assert data["zmax"] == pytest.approx(suite.zmax)
    assert data["experiments"][0]["figures"] == [["a panel", "figures/good-panel.png"]]


def test_report_markdown_content(suite):
    md, _ = report.write_report(suite)
    text = md.read_text()
    head = text.split("## good")[0]
    assert "FAILED" in head and f"|z| <= {suite.zmax:.3f}" in head and "Sidak" in head
    assert f"{suite.n_judged} judged checks" in head
    assert "![a panel](figures/good-panel.png)" in text
    assert "| mean 0 |" in text and "**FAIL**" in text and "simulated crash" in text
    assert "good notes" in text and "| a |" in text


def test_terminal_table(suite):
    t = report.terminal_table(suite)
    assert "FAILED (2 of" in t and "kappa of another activation" in t and "FAIL" in t
    lines = t.splitlines()
    assert lines[0].split()[:3] == ["experiment", "check", "theory"]


def test_fmt():
    assert report.fmt(None) == "-" and report.fmt(0.0) == "0" and report.fmt(math.nan) == "nan"
    assert report.fmt(0.123456789) == "0.123457" and "e" in report.fmt(1.5e-9)
