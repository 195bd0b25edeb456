"""``sigprop validate``: run the theory-versus-simulation suite and write a report.

Exit status: 0 iff every judged check passed; 1 if any failed (or an experiment crashed);
2 on bad arguments (e.g. ``--backend cuda`` without a GPU), reported by the dispatcher.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run", "cuda_available"]


def cuda_available() -> bool:
    try:
        from numba import cuda

        return bool(cuda.is_available())
    except Exception:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("quick", "full", "smoke"), default="quick",
                        help="quick (default): under 10 minutes on 2 CPU cores; full: paper-scale settings (hours); "
                             "smoke: seconds, tiny samples, for testing the machinery only")
    parser.add_argument("--backend", choices=("cpu", "cuda"), default="cpu",
                        help="where simulations run (cuda needs an NVIDIA GPU)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments (see --list)")
    parser.add_argument("--out", default="sigprop-report", metavar="DIR",
                        help="report folder: report.md, results.json, figures/ and the .cache of finished experiments "
                             "(default ./sigprop-report)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the whole run (default 0)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="run experiments in N processes, each with max(1, cores // N) numba threads (default 1)")
    parser.add_argument("--family-level", type=float, default=0.99, metavar="P",
                        help="probability that a correct theory passes every check; sets the Sidak z bound (default 0.99)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every experiment, ignoring DIR/.cache")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from .experiment import discover
    from .report import terminal_table, write_report
    from .runner import run_suite, select_experiments

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 < args.family_level < 1.0:
        raise ValueError(f"--family-level must be in (0, 1), got {args.family_level}")
    experiments = discover()
    if args.list:
        for e in experiments:
            print(f"{e.name:24s} {e.title}")
        return 0
    select_experiments(experiments, args.only)  # ValueError naming unknown experiments, before any work
    if args.backend == "cuda" and not cuda_available():
        raise ValueError("--backend cuda: no usable CUDA GPU found (numba.cuda.is_available() is False); "
                         "use --backend cpu")
    suite = run_suite(profile=args.profile, backend=args.backend, seed=args.seed, jobs=args.jobs,
                      out_dir=Path(args.out), experiments=experiments, only=args.only, use_cache=not args.no_cache,
                      family_level=args.family_level, progress=not args.quiet)
    md, js = write_report(suite)
    print(terminal_table(suite))
    print(f"report: {md}   results: {js}")
    sys.stdout.flush()
    return 0 if suite.passed else 1
