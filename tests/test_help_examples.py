"""Every example that ``sigprop COMMAND --help`` prints runs as written, as a new user would run it.

The examples are read from the help output itself (every line that starts with ``sigprop``, in the help of every
subcommand and nested subcommand), so an example added to a help text is tested without editing this file.  Each
runs as its own process in a fresh folder holding ``inputs.npy`` (the file the examples name as the user's own
inputs), with a timeout, and must exit with status 0 and write the file it names with ``--out``.

An example with ``--backend cuda`` runs on the GPU where there is one; elsewhere it runs with ``--backend cpu``
(everything but the device is exercised).  Parsed but not run: the examples in ``NOT_RUN``, with the reason for
each (each must still match an example).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sigprop.validation import cli

TIMEOUT_S = 180  # one example; they take a few seconds each (the 2-core machine, loaded)

# example (exact line as printed) -> why it is parsed but not run; keep this short
NOT_RUN: dict[str, str] = {}


def _parser(name: str) -> argparse.ArgumentParser:
    """The parser ``sigprop NAME`` uses (built as :func:`sigprop.validation.cli.main` builds it)."""
    module_name, help_ = cli.SUBCOMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"sigprop {name}", description=help_)
    importlib.import_module(module_name).add_arguments(parser)
    return parser


def _nested(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``path`` and the paths of every nested subcommand below it."""
    found = [path]
    for action in parser._actions:  # noqa: SLF001 - argparse keeps its subparsers nowhere else
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                found += _nested(sub, path + (name,))
    return found


def command_paths() -> list[tuple[str, ...]]:
    """Every subcommand path that has a ``--help``: ``('simulate',)``, ``('correlators', 'wick')``..."""
    return [p for name in cli.SUBCOMMANDS for p in _nested(_parser(name), (name,))]


def help_text(path: tuple[str, ...]) -> str:
    """What ``sigprop PATH --help`` prints (run in this process through the real dispatcher)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        cli.main([*path, "--help"])
    assert exit_.value.code == 0, path
    return out.getvalue()


def help_examples() -> list[tuple[tuple[str, ...], str]]:
    """(command path, example line) for every line of every help text that starts with ``sigprop``."""
    return [(path, line.strip()) for path in command_paths() for line in help_text(path).splitlines()
            if line.strip().startswith("sigprop ")]


def parse_only(argv: list[str]) -> None:
    """Parse ``sigprop ARGV`` as the dispatcher does, without running it; fail with argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _parser(argv[0]).parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"sigprop {shlex.join(argv)} does not parse (exit {exc.code}):\n{err.getvalue()}")


def cuda_available() -> bool:
    from sigprop.kernels.backend import cuda_available as available

    return available()


def run_sigprop(argv: list[str], cwd: Path, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``sigprop ARGV`` as its own process in ``cwd`` (the installed package, this interpreter)."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "sigprop.validation.cli", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def user_folder(path: Path) -> Path:
    """A fresh folder with the files the examples name as the user's own: ``inputs.npy`` (4 inputs, n_0 = 32)."""
    np.save(path / "inputs.npy", np.random.default_rng(0).standard_normal((4, 32)))
    return path


def option(argv: list[str], name: str) -> str | None:
    """The value given to option ``name`` in ``argv`` (``--name V`` or ``--name=V``), or None."""
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def on_this_machine(argv: list[str]) -> list[str]:
    """``argv``, with ``--backend cuda`` replaced by ``--backend cpu`` where no CUDA GPU is usable."""
    if option(argv, "--backend") != "cuda" or cuda_available():
        return argv
    return [("--backend=cpu" if w == "--backend=cuda" else "cpu" if w == "cuda" and argv[i - 1] == "--backend" else w)
            for i, w in enumerate(argv)]


def check_runs(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run an example and check what every example must do: exit 0 and write what ``--out`` names."""
    done = run_sigprop(argv, cwd)
    assert done.returncode == 0, (f"sigprop {shlex.join(argv)} exited {done.returncode}\n"
                                  f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    if option(argv, "--out") is not None:
        out = cwd / option(argv, "--out")
        assert out.exists() or out.with_name(out.name + ".npz").exists(), f"--out {out.name} was not written"
    return done


EXAMPLES = help_examples()


def test_help_texts_list_examples():
    """The examples are found, and each is an example of the command whose help prints it."""
    by_command = {}
    for path, line in EXAMPLES:
        words = shlex.split(line)
        assert tuple(words[1:1 + len(path)]) == path, (path, line)
        by_command.setdefault(path, []).append(line)
    assert len(by_command.get(("simulate",), [])) >= 4
    stale = set(NOT_RUN) - {line for _, line in EXAMPLES}
    assert not stale, f"NOT_RUN names examples that no help prints: {stale}"


@pytest.mark.parametrize("path, line", EXAMPLES, ids=[line for _, line in EXAMPLES])
def test_help_example_runs(path, line, tmp_path):
    argv = shlex.split(line)[1:]
    parse_only(argv)
    if line in NOT_RUN:
        pytest.skip(f"parsed, not run: {NOT_RUN[line]}")
    check_runs(on_this_machine(argv), user_folder(tmp_path))
