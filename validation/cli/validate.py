"""``sigprop validate``: run the theory-versus-simulation suite and write a report.

Exit status: 0 iff every judged check passed; 1 if any failed (or an experiment crashed);
2 on bad arguments (e.g. ``--backend cuda`` without a GPU, an ``--out`` that is a file or cannot be written, a
``--scheduler`` that is not an address or does not answer), reported by the dispatcher before any work; 130 after
Ctrl-C, with one line saying how many experiments are cached in ``DIR/.cache`` (running the same command again
reuses them and runs only the others).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sigprop.theory.errors import InputError

from .args import add_cluster_arguments, check_cluster_arguments
from .checks import check_output_path

__all__ = ["add_arguments", "run", "interrupted_message"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("quick", "full", "smoke"), default="quick",
                        help="quick (default): under 10 minutes on 2 CPU cores; full: paper-scale settings (hours); "
                             "smoke: seconds, tiny samples, for testing the machinery only")
    parser.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                        help="where simulations run (cuda needs an NVIDIA GPU)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (see --list)")
    parser.add_argument("--out", default="sigprop-report", metavar="DIR",
                        help="report folder: report.md, results.json, figures/ and the .cache of finished experiments "
                             "(default ./sigprop-report); created if missing, but its parent folder must exist; "
                             "checked before any work")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the whole run (default 0)")
    add_cluster_arguments(parser, unit="experiments")
    parser.add_argument("--family-level", type=float, default=0.99, metavar="P",
                        help="probability that a correct theory passes every check; sets the Sidak z bound "
                             "(default 0.99)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every experiment, ignoring DIR/.cache")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def interrupted_message(args: argparse.Namespace, experiments) -> str:
    """One line after Ctrl-C: how many selected experiments are cached, where, and how to resume.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``sigprop validate`` arguments (profile, backend, seed, only, out, no_cache).
    experiments : sequence of Experiment
        The discovered experiments.

    Returns
    -------
    str
        The message, without a trailing newline; it never raises (a failure to count says so).
    """
    cache_dir = Path(args.out) / ".cache"
    if args.no_cache:
        return (f"sigprop validate: interrupted; nothing was cached (--no-cache): run again without --no-cache to "
                f"keep finished experiments in {cache_dir}")
    try:
        from ..cache import ResultCache, cache_key, sigprop_version
        from ..runner import select_experiments

        selected = select_experiments(experiments, args.only)
        cache = ResultCache(args.out)
        version = sigprop_version()
        done = sum(1 for e in selected
                   if cache.path(e.name, cache_key(e.name, e.settings(args.profile), args.seed, args.backend,
                                                   version)).exists())
        counted = f"{done} of {len(selected)} experiments finished and are cached in {cache_dir}"
    except Exception as exc:  # noqa: BLE001 - the message must come out whatever happened
        counted = f"finished experiments are cached in {cache_dir} (could not count them: {exc})"
    return f"sigprop validate: interrupted; {counted}; run the same command again to resume from them"


def run(args: argparse.Namespace) -> int:
    from ..experiment import discover
    from ..report import terminal_table, write_report
    from ..runner import check_report_folder, run_suite, select_experiments

    check_cluster_arguments(args)
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 < args.family_level < 1.0:
        raise InputError(f"--family-level must be in (0, 1), got {args.family_level}")
    experiments = discover()
    if args.list:
        for e in experiments:
            print(f"{e.name:24s} {e.title}")
        return 0
    select_experiments(experiments, args.only)  # ValueError naming unknown experiments, before any work
    from sigprop.kernels.backend import cuda_available  # the one CUDA check (simulate and bench use it too)

    if args.backend == "cuda" and args.scheduler is None and not cuda_available():  # a cluster's workers: checked
        # by run_suite once connected
        raise InputError("--backend cuda: no usable CUDA GPU found (numba.cuda.is_available() is False); "
                         "use --backend cpu")
    out = check_output_path(args.out, option="--out", kind="dir")  # before any work: one line, exit 2
    check_report_folder(out, use_cache=not args.no_cache, option="--out")  # report.md, results.json, figures/...
    try:
        suite = run_suite(profile=args.profile, backend=args.backend, seed=args.seed, jobs=args.jobs,
                          out_dir=out, experiments=experiments, only=args.only, use_cache=not args.no_cache,
                          family_level=args.family_level, progress=not args.quiet,
                          scheduler=args.scheduler, threads=args.threads, connect_timeout=args.connect_timeout)
    except KeyboardInterrupt:
        sys.stderr.write("\n" + interrupted_message(args, experiments) + "\n")
        sys.stderr.flush()
        return 130
    print(terminal_table(suite))  # on screen before the report is written, should writing it fail
    md, js = write_report(suite)
    print(f"report: {md}   results: {js}")
    sys.stdout.flush()
    return 0 if suite.passed else 1
