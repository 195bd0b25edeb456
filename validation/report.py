"""Writes a run of the validation suite: ``report.md``, ``results.json`` and a compact terminal table.

``results.json`` has a top-level ``checks`` list (every check with experiment, name, theory, estimate,
stderr, rule, kind, tol, z, passed, details), plus ``settings``, ``versions``, ``seed``, ``timings``,
``zmax``, ``n_judged``, ``family_level``, ``passed``, per-experiment metadata (``experiments``) and the judged
headline ``findings`` (see :func:`findings`).  Non-finite numbers are written as ``null`` so that the file is
strict JSON.

The verdict says whether the judged checks passed: that the engine's theory matches its simulations.  Right under
it, in ``report.md`` and on the terminal, a "Findings" block states each experiment's headline result and whether
it agrees with the paper it tests, so that PASSED is never read as "the papers' claims hold".
"""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sigprop.theory.errors import InputError

from .cache import jsonable, result_to_dict, write_atomic
from .experiment import Check, Finding
from .runner import SuiteResult

__all__ = ["results_dict", "write_results_json", "report_markdown", "write_report", "terminal_table", "fmt",
           "findings"]

SCHEMA_VERSION = 1


def fmt(x: float | None, digits: int = 6) -> str:
    """Compact number: ``digits`` significant figures, '-' for None, 'nan'/'inf' spelled out."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e6:
        return f"{x:.{digits}g}"
    return f"{x:.{max(digits - 3, 2)}e}"


def _status(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "info"}[passed]


def findings(suite: SuiteResult) -> list[dict[str, Any]]:
    """Every experiment's headline findings, judged under the run's z bound, in suite order.

    One entry per :class:`~sigprop.validation.experiment.Finding` that a check of the experiment carries, with keys
    ``experiment``, ``verdict`` ('agree', 'disagree', 'inconclusive', 'informational'), ``claim``, ``source``,
    ``text`` (the numbers) and ``finding`` (its fields); an experiment without one gets an entry with verdict
    'none' that says why (none declared, or the experiment raised an error).

    Examples
    --------
    >>> from sigprop.validation.experiment import Check, ExperimentResult, Finding
    >>> from sigprop.validation.runner import ExperimentRun, SuiteResult
    >>> f = Finding("l* grows as L^(3/5)", "Lou et al.", "interval", measured="exponent", value=2.1,
    ...             interval=(1.3, 2.9), paper_value=0.6, paper_text="3/5")
    >>> run = ExperimentRun("eq", "Eq", "", {}, ExperimentResult(checks=[f.as_check("eq")]), 1.0)
    >>> suite = SuiteResult([run], zmax=3.0, n_judged=0, family_level=0.99, settings={}, versions={}, seed=0,
    ...                     total_time=1.0)
    >>> [(e["experiment"], e["verdict"], e["text"]) for e in findings(suite)]
    [('eq', 'disagree', 'exponent 2.10, 95% CI [1.30, 2.90]; paper 3/5 = 0.600, outside the CI')]
    """
    out = []
    for run in suite.runs:
        found = [f for f in (Finding.from_check(c) for c in run.result.checks) if f is not None]
        if not found:
            why = "the experiment raised an error" if run.error else "no headline finding declared"
            out.append({"experiment": run.name, "verdict": "none", "claim": "", "source": "", "text": why,
                        "finding": None})
        for f in found:
            verdict, text = f.judge(run.result.checks, suite.zmax)
            out.append({"experiment": run.name, "verdict": verdict, "claim": f.claim, "source": f.source,
                        "text": text, "finding": f.to_dict()})
    return out


def _verdict_words(suite: SuiteResult) -> str:
    if suite.passed:
        return f"PASSED: all {suite.n_judged} judged checks passed"
    return f"FAILED ({suite.n_failed} of {suite.n_judged} judged checks)"


_FINDINGS_CAVEAT = ("the judged checks test this engine's theory against its own simulations; whether each paper's "
                    "claim holds is stated by the findings")


def results_dict(suite: SuiteResult) -> dict[str, Any]:
    checks = []
    for run, c in suite.checks():
        d = c.to_dict(suite.zmax)
        d["experiment"] = run.name
        checks.append(d)
    experiments = []
    for run in suite.runs:
        r = result_to_dict(run.result, Path(suite.settings["out"]))
        experiments.append({"name": run.name, "title": run.title, "description": run.description,
                            "settings": run.settings, "elapsed_s": run.elapsed, "cached": run.cached,
                            "error": run.error, "figures": r["figures"], "notes": run.result.notes,
                            "n_checks": len(run.result.checks),
                            "n_failed": sum(1 for c in run.result.checks if c.passed(suite.zmax) is False)})
    return jsonable({
        "schema": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "passed": suite.passed,
        "n_checks": len(checks),
        "n_judged": suite.n_judged,
        "n_failed": suite.n_failed,
        "family_level": suite.family_level,
        "zmax": suite.zmax,
        "seed": suite.seed,
        "settings": suite.settings,
        "versions": suite.versions,
        "timings": suite.timings,
        "experiments": experiments,
        "findings": findings(suite),
        "checks": checks,
    }, finite=True)


def write_results_json(suite: SuiteResult, path: Path | str) -> Path:
    """Write :func:`results_dict` to ``path`` (atomically); an ``OSError`` of the file system propagates."""
    path = Path(path)
    write_atomic(path, json.dumps(results_dict(suite), indent=1, allow_nan=False))
    return path


def _z_text(c: Check, zmax: float) -> str:
    if c.kind == "z":
        return f"{c.z:+.2f}"
    if c.kind == "exact":
        diff = abs(c.estimate - c.theory) if math.isfinite(c.estimate) and math.isfinite(c.theory) else math.nan
        return f"|d|={fmt(diff, 2)}"
    return ""


def _bound_text(c: Check, zmax: float) -> str:
    if c.kind == "z":
        return f"{zmax:.2f}"
    if c.kind == "exact":
        return f"tol {fmt(c.tol, 2)}"
    return ""


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def report_markdown(suite: SuiteResult) -> str:
    out = Path(suite.settings["out"])
    n_info = sum(1 for _, c in suite.checks() if c.kind == "info")
    lines = ["# sigprop validation report", ""]
    lines += [f"Result: **{_verdict_words(suite)}**. This is not a verdict on the papers: {_FINDINGS_CAVEAT}.", "",
              "**Findings** (each experiment's headline result against the claim it tests):", "",
              "| experiment | verdict | claim | source | result |", "|---|---|---|---|---|"]
    for f in findings(suite):
        verdict = f"**{f['verdict']}**" if f["verdict"] == "disagree" else f["verdict"]
        lines.append(f"| {f['experiment']} | {verdict} | {_md_escape(f['claim'] or '-')} | "
                     f"{_md_escape(f['source'] or '-')} | {_md_escape(f['text'])} |")
    lines += [
        "",
        f"- {suite.n_judged} judged checks (+{n_info} informational). One two-sided z bound for the whole run, "
        f"chosen by Sidak so that a correct theory passes every check with probability >= {suite.family_level:g}: "
        f"**|z| <= {suite.zmax:.3f}** (per-check level {1 - suite.family_level ** (1 / max(suite.n_judged, 1)):.2e}).",
        f"- Profile `{suite.settings['profile']}`, backend `{suite.settings['backend']}`, seed {suite.seed}, "
        f"jobs {suite.settings['jobs']}; total time {suite.total_time:.1f} s.",
        f"- Execution: {_execution_text(suite.settings.get('execution'))}.",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in suite.versions.items() if k != "platform") + ".",
        "",
        "| experiment | checks | failed | time (s) | cached |",
        "|---|---:|---:|---:|---|",
    ]
    for run in suite.runs:
        judged = sum(1 for c in run.result.checks if c.kind != "info")
        failed = sum(1 for c in run.result.checks if c.passed(suite.zmax) is False)
        lines.append(f"| [{run.name}](#{run.name.replace('_', '-')}) | {judged} | {failed} | {run.elapsed:.1f} | "
                     f"{'yes' if run.cached else 'no'} |")
    lines.append("")
    for run in suite.runs:
        lines += [f"## {run.name}", "", f"**{run.title}.** {run.description}", ""]
        lines += ["<details><summary>settings</summary>", "", "```json",
                  json.dumps(jsonable(run.settings)), "```", "</details>", ""]
        if run.error:
            lines += [f"**The experiment raised an error** after {run.elapsed:.1f} s:", "", "```", run.error, "```", ""]
        lines += ["| check | theory | estimate | stderr | z | bound | rule | result |",
                  "|---|---:|---:|---:|---:|---:|---|---|"]
        for c in run.result.checks:
            p = c.passed(suite.zmax)
            status = _status(p)
            marker = Finding.from_check(c) is not None  # a finding's own row: no number of its own is '-', not nan
            num = (lambda x: "-" if marker and not math.isfinite(x) else fmt(x))
            lines.append(f"| {_md_escape(c.name)} | {num(c.theory)} | {num(c.estimate)} | "
                         f"{fmt(c.stderr, 2) if c.kind == 'z' else '-'} | {_z_text(c, suite.zmax)} | "
                         f"{_bound_text(c, suite.zmax)} | {_md_escape(c.rule)} | "
                         f"{'**FAIL**' if p is False else status} |")
        lines.append("")
        for table in run.result.tables:
            lines += [table, ""]
        for caption, path in run.result.figures:
            p = Path(path)
            if p.is_absolute():
                try:
                    p = p.relative_to(out.resolve())
                except ValueError:
                    pass
            else:
                try:
                    p = p.relative_to(out)
                except ValueError:
                    pass
            lines += [f"![{_md_escape(caption)}]({p.as_posix()})", "", f"*{caption}*", ""]
        if run.result.notes:
            lines += [run.result.notes, ""]
    return "\n".join(lines)


def write_report(suite: SuiteResult, out_dir: Path | str | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``results.json`` into the run's folder (each atomically); returns their paths.

    The runner checks these paths before any work (:func:`sigprop.validation.runner.check_report_folder`); one
    that cannot be written now all the same (the folder made unwritable during the run, a full disk) is an
    :class:`~sigprop.theory.errors.InputError` naming it, which the ``sigprop`` command prints as one line (exit
    status 2), and no half-written file is left.
    """
    out = Path(out_dir or suite.settings["out"])
    md, js = out / "report.md", out / "results.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(md, report_markdown(suite))
        write_results_json(suite, js)
    except OSError as exc:
        where = exc.filename or out
        raise InputError(f"cannot write the report to {str(where)!r} ({exc.strerror or exc}); this run's checks "
                         "are not saved (finished experiments that could be cached are reused by the next run)"
                         ) from None
    return md, js


def terminal_table(suite: SuiteResult, max_rows_per_experiment: int = 12) -> str:
    """Compact plain-text summary: per experiment the worst checks (largest |z|), failures always shown."""
    rows = [("experiment", "check", "theory", "estimate", "stderr", "z", "result")]
    for run in suite.runs:
        checks = list(run.result.checks)

        def badness(c: Check) -> float:
            p = c.passed(suite.zmax)
            if p is False:
                return math.inf
            return abs(c.z) if c.kind == "z" and c.z is not None else -1.0

        shown = sorted(checks, key=badness, reverse=True)
        failed = [c for c in shown if c.passed(suite.zmax) is False]
        shown = failed + [c for c in shown if c not in failed][: max(0, max_rows_per_experiment - len(failed))]
        for c in shown:
            rows.append((run.name, c.name[:48], fmt(c.theory), fmt(c.estimate),
                         fmt(c.stderr, 2) if c.kind == "z" else "-", _z_text(c, suite.zmax),
                         _status(c.passed(suite.zmax))))
        if len(checks) > len(shown):
            rows.append((run.name, f"... {len(checks) - len(shown)} more (all pass or info)", "", "", "", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("")
    text.append(f"{_verdict_words(suite)}, |z| <= {suite.zmax:.3f} (Sidak, family level {suite.family_level:g}); "
                f"{suite.total_time:.1f} s")
    text.append("Findings (does each paper's claim hold? the verdict above covers the judged checks only):")
    found = findings(suite)
    width = max(len(f["experiment"]) for f in found) if found else 0
    for f in found:
        claim = f"{f['claim']} ({f['source']}): " if f["claim"] else ""
        text.append(f"  {f['verdict'].upper() if f['verdict'] == 'disagree' else f['verdict']:13s} "
                    f"{f['experiment']:{width}s}  {claim}{f['text']}")
    return "\n".join(text)


def _execution_text(execution: dict | None) -> str:
    """Where the experiments ran and with how many threads (``settings['execution']`` of the runner).

    Examples
    --------
    >>> _execution_text({"mode": "in-process", "address": None, "workers": 1, "numba_threads": 2,
    ...                  "blas_threads": 2, "cores": 2})
    'in-process, 1 worker(s), numba threads 2, BLAS threads 2, 2 cores'
    >>> _execution_text(None)
    'not recorded'
    """
    if not execution:
        return "not recorded"
    parts = [str(execution.get("mode", "?"))]
    if execution.get("address"):
        parts.append(f"scheduler {execution['address']}")
    parts.append(f"{execution.get('workers', '?')} worker(s)")
    for key, label in (("numba_threads", "numba threads"), ("blas_threads", "BLAS threads")):
        if key in execution:
            parts.append(f"{label} {execution[key]}")
    if "threads_used" in execution:
        parts.append(f"threads used by the units {execution['threads_used']}")
    if execution.get("cache_not_written"):
        parts.append(f"{execution['cache_not_written']} cache entries could not be written")
    if execution.get("cores"):
        parts.append(f"{execution['cores']} cores")
    return ", ".join(parts)
