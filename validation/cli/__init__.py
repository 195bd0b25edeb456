"""The ``sigprop`` command: a thin dispatcher over subcommands, each defined in its own module of this package
(``sigprop.validation.cli.<name>``), with the arguments they share in :mod:`.args` and the path checks in
:mod:`.checks`.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; it is imported only when
its subcommand runs, so ``sigprop theory`` does not pay for the Monte-Carlo kernels' import.

Errors: sigprop's input validation (:class:`sigprop.theory.errors.InputError`, a ``ValueError``: bad input,
found before any work) or a ``MemoryError`` (a run that cannot fit in memory, e.g. from the simulation planner)
is printed as one line ``sigprop CMD: error: ...`` with exit status 2; argparse's own errors also exit with 2.
Any other exception is a bug: it propagates with its traceback.  Ctrl-C (``KeyboardInterrupt``) anywhere in a
command ends it with one line ``sigprop CMD: interrupted`` and exit status 130 (a command may print a more
specific line itself, as ``sigprop validate`` does, and return 130).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from sigprop.theory.errors import InputError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("sigprop.validation.cli.validate", "run the theory-versus-simulation suite and write a report"),
    "theory": ("sigprop.validation.cli.theory",
               "kernel map, Hermite coefficients and convergence case of an activation"),
    "simulate": ("sigprop.validation.cli.simulate",
                 "simulate random finite-width networks and write an .npz of statistics"),
    "correlators": ("sigprop.validation.cli.correlators",
                    "finite-width correlators: Wick factors, exact and 1/n recursions"),
    "equilibrium": ("sigprop.validation.cli.equilibrium", "equilibrium layer l*(L) and its fitted exponent"),
    "bench": ("sigprop.validation.cli.bench", "benchmarks of the theory and Monte-Carlo engines"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sigprop", description="sigprop: numerical theory engine for signal propagation in deep networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


#: the exit status after Ctrl-C (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the ``sigprop`` command line ``argv`` (default ``sys.argv[1:]``); return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(argv)
    except KeyboardInterrupt:
        command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
        sys.stderr.write(f"\nsigprop{' ' + command if command else ''}: interrupted\n")
        sys.stderr.flush()
        return INTERRUPTED


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    if argv[0] == "--version":
        from importlib.metadata import version

        print(version("sigprop"))
        return 0
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(SUBCOMMANDS)}")
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    sub_parser = argparse.ArgumentParser(prog=f"sigprop {name}", description=help_)
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except InputError as exc:  # bad input (sigprop's validation): one clear line, exit code 2; anything else is a bug
        # and shows its traceback
        print(f"sigprop {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # the planner's "does not fit" (before work), or an allocation that failed
        print(f"sigprop {name}: error: {_one_line(exc) or 'out of memory'}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    """``str(exc)`` on one line (newlines and runs of spaces collapsed), for the one-line error messages."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
