"""The examples of README.md and docs/*.md run as a reader would run them, and print what the page says.

What is run:

* every ```` ```python ```` block, in page order, in one namespace per page (a reader's session) and a fresh folder;
  when the next fence is introduced by a line that starts with "Output", the block must print that;
* every ``$ sigprop ...`` line of a plain fence, as its own process in a fresh folder holding ``inputs.npy``
  (``test_help_examples.user_folder``); the lines after it, up to the next ``$`` line or the fence's end, are its
  output, which it must print (a command without such lines must exit 0 and write what ``--out`` names).  As in
  the ``--help`` test, ``--backend cuda`` runs on the CPU where there is no GPU, and the commands in ``NOT_RUN``
  are parsed but not run;
* every inline ``sigprop ...`` code span of the prose is parsed (not run) unless it holds a placeholder
  (a capitalised word such as ``COMMAND``, ``[...]`` or ``|``).

Printed and documented output match when their text is equal up to runs of spaces and their numbers agree:
integers exactly, decimals within one unit of the last digit the page prints or 1e-9 relative, whichever is
larger (so a page may round, and rounding differences between machines in the 16th digit do not matter).  A line
``...`` in the documented output stands for any number of lines.
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from test_help_examples import check_runs, on_this_machine, parse_only, user_folder

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# command (as on the page, without "$ ") -> why it is parsed but not run; keep this short
NOT_RUN = {
    "sigprop bench --only kernels --backend cuda --profile full --out bench_cuda.json":
        "the full kernel benchmark runs for minutes and is meant for a GPU (docs/benchmarks.md)",
}

NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"


@dataclass
class Fence:
    page: Path
    line: int      # 1-based line of the opening ```
    info: str      # the language after ```, '' for a plain fence
    body: list[str]
    intro: str     # the last non-blank prose line before the fence

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def fences(page: Path) -> list[Fence]:
    lines = page.read_text().splitlines()
    found, prose, i = [], [], 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        j = next((k for k in range(i + 1, len(lines)) if lines[k].startswith("```")), len(lines))
        intro = next((p.strip() for p in reversed(prose) if p.strip()), "")
        found.append(Fence(page, i + 1, m.group(1), lines[i + 1:j], intro))
        prose, i = [], j + 1
    return found


def documented_output(fs: list[Fence], k: int) -> list[str] | None:
    """The output block that follows fence ``k`` ("Output..." and a plain fence), or None."""
    if k + 1 < len(fs) and fs[k + 1].info == "" and fs[k + 1].intro.startswith("Output"):
        return fs[k + 1].body
    return None


def shell_commands() -> list[tuple[str, str, list[str]]]:
    """(where, command without '$ ', documented output lines) for every ``$ sigprop`` line of a plain fence."""
    found = []
    for page in PAGES:
        for f in fences(page):
            if f.info != "":
                continue
            starts = [i for i, line in enumerate(f.body) if line.startswith("$ ")]
            for a, b in zip(starts, starts[1:] + [len(f.body)]):
                command = f.body[a][2:].strip()
                assert command.startswith("sigprop "), f"{f.where}: a '$' line that is not a sigprop command"
                found.append((f"{f.where}+{a + 1}", command, f.body[a + 1:b]))
    return found


def inline_commands() -> list[tuple[str, str]]:
    """(page, span) for every inline code span of the prose that starts with ``sigprop``."""
    found = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)  # prose only
        for span in re.findall(r"`([^`]+)`", text):
            span = " ".join(span.split())
            if span.startswith("sigprop "):
                found.append((page.name, span))
    return found


def _has_placeholder(span: str) -> bool:
    return any(c in span for c in "[]|") or "..." in span or any(
        re.fullmatch(r"[A-Z][A-Z_]*", w) for w in span.split())


# --- matching printed against documented output -------------------------------------------------------------

def _tokens(line: str) -> tuple[list[str], list[str]]:
    parts = re.split(f"({NUMBER})", line)
    return [" ".join(p.split()) for p in parts[0::2]], parts[1::2]


ABS_FLOOR = 1e-15


def _close(doc: str, got: str) -> bool:
    if re.fullmatch(r"[-+]?\d+", doc):
        return re.fullmatch(r"[-+]?\d+", got) is not None and int(doc) == int(got)
    exponent = Decimal(doc).as_tuple().exponent
    unit = 10.0 ** exponent if exponent < 0 else 0.0
    # ABS_FLOOR: a quantity that is 0 in exact arithmetic prints as rounding noise (e.g. a Hermite coefficient
    # -5.12e-17 on one CPU, -4.92e-17 on another: libm and FMA differ between CPUs), so below it only the
    # magnitude is documented
    return abs(float(got) - float(doc)) <= max(unit, 1e-9 * abs(float(doc)), ABS_FLOOR) * (1 + 1e-9)


def _same_line(doc: str, got: str) -> bool:
    dt, dn = _tokens(doc)
    gt, gn = _tokens(got)
    return dt == gt and len(dn) == len(gn) and all(_close(d, g) for d, g in zip(dn, gn))


def same_output(doc: list[str], got: list[str]) -> bool:
    """Whether printed lines ``got`` match documented lines ``doc`` (``...`` = any number of lines)."""
    def trim(lines):
        lines = [line.rstrip() for line in lines]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    doc, got = trim(doc), trim(got)

    def match(i: int, j: int) -> bool:
        if i == len(doc):
            return j == len(got)
        if doc[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and _same_line(doc[i], got[j]) and match(i + 1, j + 1)

    return match(0, 0)


def assert_same_output(doc: list[str], printed: str, where: str) -> None:
    assert same_output(doc, printed.splitlines()), (
        f"{where}: the page documents\n" + "\n".join(doc) + "\n\nbut this prints\n" + printed)


def test_matching_rules():
    """The matcher itself: rounding to the printed digit passes, a wrong figure or word fails."""
    assert same_output(["theory 0.4001  z = -0.22"], ["theory 0.40014   z = -0.2249"])
    assert not same_output(["theory 0.4001"], ["theory 0.4003"])
    assert not same_output(["layer 3"], ["layer 4"]) and not same_output(["layer 3"], ["layer 3.0"])
    assert same_output(["0.8049152182777091"], ["0.8049152182777093"])
    assert same_output(["c_3 -5.12421052e-17"], ["c_3 -4.92227786e-17"])  # rounding noise of an exact 0
    assert not same_output(["c_3 -5.1e-12"], ["c_3 -4.9e-12"])
    assert not same_output(["case 3"], ["case 3", "extra line"])
    assert same_output(["...", "end 1.5"], ["a", "b", "end 1.5"]) and not same_output(["...", "end"], ["a"])
    assert not same_output(["kappa0 0.318"], ["kappa1 0.318"])


# --- the tests ---------------------------------------------------------------------------------------------

PYTHON_PAGES = [p for p in PAGES if any(f.info == "python" for f in fences(p))]
SHELL = shell_commands()


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=[p.name for p in PYTHON_PAGES])
def test_python_examples(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__main__"}
    fs = fences(page)
    for k, f in enumerate(fs):
        if f.info != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                exec(compile("\n".join(f.body), f.where, "exec"), namespace)  # noqa: S102 - the page's example
            except Exception as exc:  # noqa: BLE001
                pytest.fail(f"{f.where}: the example raises {type(exc).__name__}: {exc}")
        doc = documented_output(fs, k)
        if doc is not None:
            assert_same_output(doc, out.getvalue(), f.where)


@pytest.mark.parametrize("where, command, doc", SHELL, ids=[f"{w} {c}" for w, c, _ in SHELL])
def test_shell_examples(where, command, doc, tmp_path):
    argv = shlex.split(command)[1:]
    parse_only(argv)
    if command in NOT_RUN:
        pytest.skip(f"parsed, not run: {NOT_RUN[command]}")
    done = check_runs(on_this_machine(argv), user_folder(tmp_path))
    if doc:
        assert_same_output(doc, done.stdout, f"{where}: $ {command}")


def test_pages_have_examples():
    """The collection finds what the pages hold, and NOT_RUN names only commands that are on a page."""
    assert {p.name for p in PYTHON_PAGES} >= {"simulation.md", "theory.md", "validation.md"}
    with_output = [(p.name, k) for p in PYTHON_PAGES for k, f in enumerate(fences(p))
                   if f.info == "python" and documented_output(fences(p), k) is not None]
    assert len(with_output) >= 3, with_output  # simulation.md twice (quick start, comparison), theory.md
    assert len(SHELL) >= 10 and sum(1 for _, _, doc in SHELL if doc) >= 5
    assert set(NOT_RUN) <= {c for _, c, _ in SHELL}


def test_inline_commands_parse():
    spans = [(page, span) for page, span in inline_commands() if not _has_placeholder(span)]
    assert len(spans) >= 10
    for page, span in spans:
        argv = shlex.split(span)[1:]
        if "--help" in argv or "-h" in argv:
            continue
        parse_only(argv)
