"""report.md, results.json (schema, strict JSON) and the terminal table of a run with fake experiments."""
from __future__ import annotations

import json
import math

import pytest
from test_runner import CRASH, GOOD, WRONG

from sigprop.validation import report, runner


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


# --- findings: each experiment's headline against the paper, right under the verdict ---------------------------

from sigprop.validation.experiment import Check, Experiment, ExperimentResult, Finding  # noqa: E402

TRAINED = Finding("trained l*(L) ~ L^(3/5)", "Lou, Mingard & Hayou", "interval", measured="trained exponent",
                  value=2.1, interval=(1.3, 2.91), paper_value=0.6, paper_text="3/5", rivals=(0.0, 1.0))
BY_CHECKS = Finding("rho_l -> kappa^l(rho_0)", "Joudaki & Hofmann", "checks")


def _paper_run(ctx, settings):
    """Passes its one judged check; its headline (a trained exponent of 2.1 against 3/5) disagrees."""
    fit = Check("paper", "trained exponent vs 3/5", theory=0.6, estimate=2.1, stderr=0.4, rule="info", kind="info",
                details={"ci": [1.3, 2.91], "finding": TRAINED.to_dict()})
    return ExperimentResult(checks=[Check("paper", "a kernel", 1.0, 1.01, 0.1, "|z| <= zmax"), fit])


def _kernel_run(ctx, settings):
    """Judged checks that all pass (settings['shift'] = 0) or half of them 11 SE off, with a finding judged by them."""
    checks = [Check("kernel", f"layer {l}", 0.5, 0.5 + (0.01 + settings["shift"]) * (l % 2), 0.01, "|z| <= zmax")
              for l in range(4)]
    return ExperimentResult(checks=checks + [BY_CHECKS.as_check("kernel")])


def _silent_run(ctx, settings):
    return ExperimentResult(checks=[Check("silent", "x", 0.0, 0.0, 1.0, "|z| <= zmax")])


PAPER = Experiment("paper", "Paper", "a paper's law", lambda p: {}, _paper_run, order=1)
KERNEL = Experiment("kernel", "Kernel", "kernel map", lambda p: {"shift": 0.0}, _kernel_run, order=2)
KERNEL_WRONG = Experiment("kernel", "Kernel", "kernel map", lambda p: {"shift": 0.1}, _kernel_run, order=2)
SILENT = Experiment("silent", "Silent", "declares no finding", lambda p: {}, _silent_run, order=3)


def _run(tmp_path, experiments, **kw):
    return runner.run_suite(profile="smoke", out_dir=tmp_path, experiments=experiments, progress=False,
                            log=lambda m: None, **kw)


def test_findings_block_sits_under_the_verdict(tmp_path):
    suite = _run(tmp_path, [PAPER, KERNEL, SILENT, CRASH])
    text = report.report_markdown(suite)
    head = text.split("\n## ")[0].splitlines()
    result = next(i for i, line in enumerate(head) if line.startswith("Result:"))
    assert head[result + 2].startswith("**Findings**")
    block = head[result + 4: head.index("", result + 4)]
    assert block[0] == "| experiment | verdict | claim | source | result |"
    rows = block[2:]
    assert [r.split(" | ")[0] for r in rows] == ["| paper", "| kernel", "| silent", "| crash"]
    assert rows[0].split(" | ")[1] == "**disagree**"
    assert "trained exponent 2.10, 95% CI [1.30, 2.91]; paper 3/5 = 0.600, outside the CI" in rows[0]
    assert rows[1].split(" | ")[1] == "agree" and "4 of 4 judged checks pass (largest \\|z\\| 1.00" in rows[1]
    assert rows[2].split(" | ")[1] == "none" and "no headline finding declared" in rows[2]
    assert rows[3].split(" | ")[1] == "none" and "raised an error" in rows[3]
    # the summary of the judged checks comes after the findings, not between them and the verdict
    assert head.index(rows[-1]) < next(i for i, line in enumerate(head) if "judged checks (+" in line)


def test_verdict_names_the_judged_checks_not_the_papers(tmp_path):
    suite = _run(tmp_path, [PAPER, KERNEL])
    assert suite.passed
    text = report.report_markdown(suite)
    verdict = next(line for line in text.splitlines() if line.startswith("Result:"))
    assert f"all {suite.n_judged} judged checks passed" in verdict and "not a verdict on the papers" in verdict
    table = report.terminal_table(suite).splitlines()
    i = next(i for i, line in enumerate(table) if line.startswith("PASSED"))
    assert f"all {suite.n_judged} judged checks passed" in table[i]
    assert table[i + 1].startswith("Findings (does each paper's claim hold?")
    assert table[i + 2].split()[:2] == ["DISAGREE", "paper"] and "outside the CI" in table[i + 2]
    assert table[i + 3].split()[:2] == ["agree", "kernel"]


def test_a_failed_check_makes_a_checks_finding_disagree(tmp_path):
    suite = _run(tmp_path, [KERNEL_WRONG])
    (f,) = report.findings(suite)
    assert not suite.passed and f["verdict"] == "disagree" and f["text"].startswith("2 of 4 judged checks pass")


def test_findings_in_results_json_and_through_the_cache(tmp_path):
    first = _run(tmp_path, [PAPER, KERNEL])
    second = _run(tmp_path, [PAPER, KERNEL])
    assert all(run.cached for run in second.runs)
    assert json.dumps(report.findings(second)) == json.dumps(report.findings(first))
    _, js = report.write_report(second)
    data = json.loads(js.read_text())
    assert [(f["experiment"], f["verdict"]) for f in data["findings"]] == [("paper", "disagree"), ("kernel", "agree")]
    assert data["findings"][0]["finding"]["paper_value"] == 0.6 and data["findings"][1]["finding"]["value"] is None


@pytest.mark.parametrize("interval, verdict", [((1.3, 2.91), "disagree"), ((0.2, 0.9), "agree"),
                                               ((-3.0, 3.7), "inconclusive"), (None, "informational")])
def test_interval_finding_verdicts(interval, verdict):
    f = Finding("l* ~ L^(3/5)", "Lou et al.", "interval", measured="b", value=0.6 if interval else 2.0,
                interval=interval, paper_value=0.6, rivals=(0.0, 1.0))
    assert f.judge([], zmax=4.0)[0] == verdict


def test_finding_rejects_bad_basis():
    with pytest.raises(ValueError, match="basis"):
        Finding("c", "s", "vibes")
    with pytest.raises(ValueError, match="paper_value"):
        Finding("c", "s", "interval", value=1.0, interval=(0.0, 2.0))


def test_every_experiment_declares_a_finding():
    """Each experiment of the suite states a headline finding judged by its checks, except equilibrium (below)."""
    import importlib

    from sigprop.validation.experiment import discover

    names = [exp.name for exp in discover()]
    assert "equilibrium" in names
    for name in names:
        if name != "equilibrium":
            finding = importlib.import_module(f"sigprop.validation.experiments.{name}").FINDING
            assert isinstance(finding, Finding) and finding.basis == "checks", name


def test_equilibrium_finding_is_the_trained_exponent_against_three_fifths(tmp_path):
    from sigprop.validation.experiment import Context
    from sigprop.validation.experiments.equilibrium import EXPERIMENT, protocol

    settings = EXPERIMENT.settings("smoke")
    res = EXPERIMENT.run(Context(profile="smoke", out_dir=tmp_path), settings)
    carriers = [c for c in res.checks if Finding.from_check(c) is not None]
    assert [c.name for c in carriers] == ["trained exponent vs asymptotic 3/5"]
    (c,) = carriers
    f = Finding.from_check(c)
    assert (f.basis, f.paper_value, f.paper_text, f.source) == ("interval", 0.6, "3/5", "Lou, Mingard & Hayou")
    assert f.value == c.estimate and list(f.interval) == c.details["ci"]
    verdict, text = f.judge(res.checks, zmax=4.0)
    lo, hi = f.interval
    assert verdict == ("disagree" if not lo <= 0.6 <= hi else "inconclusive" if lo <= 0 or hi >= 1 else "agree")
    assert (f"trained exponent (L = 4..12, at loss<1.5; protocol: {protocol(settings)}) {c.estimate:#.3g}, "
            f"95% CI [{lo:#.3g}, {hi:#.3g}]") in text
    # the verdict names the protocol it rests on: data, optimiser, learning rate, threshold rule, alignment
    for part in ("100 sklearn digits", "SGD momentum 0.9, batch 32, lr 0.01, gradient norm clipped at 2",
                 "loss reached 1.5 (full training loss below it)", "the reference code's per-layer definition"):
        assert part in text
    full = protocol(EXPERIMENT.settings("full"))
    for part in ("MNIST-5k", "trainable zero-initialised biases, float32", "batch 128",
                 "the reference code's lr per depth", "no clipping", "weight decay 0", "at most 8000 steps",
                 "running average (0.9) of batch losses below it at two consecutive epoch ends"):
        assert part in full


def test_docstring_examples():
    import doctest

    from sigprop.validation import experiment

    for module in (experiment, report):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, (module.__name__, result)
