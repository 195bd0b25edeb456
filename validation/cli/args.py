"""Arguments shared by the ``sigprop`` subcommands: one spelling and one parser for each.

- ``--activation NAME`` and ``--param KEY=VALUE`` (repeatable) for an activation's parameters, e.g.
  ``--activation leaky_relu --param slope=0.2``; :func:`activation_from_args` builds the Activation.
- ``--json``: print one JSON object instead of text.
- Variances are ``--C-W`` and ``--C-b`` everywhere.
- ``--jobs N`` / ``--scheduler ADDRESS`` / ``--threads T`` / ``--connect-timeout S``: where the work runs (Dask).

Errors in values are :class:`sigprop.theory.errors.InputError`, which the dispatcher prints as one line with exit 2.
"""
from __future__ import annotations

import argparse

from sigprop.theory.errors import InputError

__all__ = ["add_activation_arguments", "add_param_argument", "parse_params", "activation_from_args", "add_json_flag",
           "RenamedFlag", "add_cluster_arguments", "check_worker_counts", "check_cluster_arguments"]


def add_param_argument(parser) -> None:
    """``--param KEY=VALUE`` (repeatable): a parameter of the activation."""
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="activation parameter, e.g. slope=0.2 for leaky_relu or alpha=0.5 for elu (repeatable)")


def add_activation_arguments(parser, *, default: str | None = "relu", help: str | None = None) -> None:
    """``--activation NAME`` (required when ``default`` is None) and ``--param KEY=VALUE``."""
    text = help or "activation name (relu, leaky_relu, tanh, gelu, erf, ...)"
    if default is None:
        parser.add_argument("--activation", required=True, help=text)
    else:
        parser.add_argument("--activation", default=default, help=f"{text} (default {default})")
    add_param_argument(parser)


def parse_params(items: list[str]) -> dict[str, float]:
    """``['slope=0.2', ...]`` -> ``{'slope': 0.2, ...}``.

    Examples
    --------
    >>> parse_params(["slope=0.2", " alpha = 1"])
    {'slope': 0.2, 'alpha': 1.0}
    """
    out: dict[str, float] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--param must look like KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        try:
            out[k] = float(v)
        except ValueError:
            raise InputError(f"--param {k}: value must be a number, got {v!r}") from None
    return out


def activation_from_args(args: argparse.Namespace, name: str | None = None):
    """The Activation named by ``--activation`` (or ``name``) with the ``--param`` values."""
    from sigprop.theory.activations import activation

    return activation(args.activation if name is None else name, **parse_params(args.param))


def add_json_flag(parser) -> None:
    """``--json``: print one JSON object instead of text."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


class RenamedFlag(argparse.Action):
    """A hidden old spelling of an option: using it is an error that names the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs="?", help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is now spelled {self.new} (one spelling across sigprop commands)")


def add_cluster_arguments(parser, *, unit: str) -> None:
    """``--jobs N``, ``--scheduler ADDRESS``, ``--threads T`` and ``--connect-timeout S``: where the work runs
    (``unit``: what one task is, for the help text)."""
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help=f"run {unit} on a Dask LocalCluster of N worker processes, one task at a time each, "
                             "with max(1, cores // N) numba and BLAS threads (default 1: this process, no Dask; "
                             "N at most the cores this process may use; see docs/distributed.md)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"run {unit} on an existing Dask cluster: tcp://host:8786 or a scheduler file "
                             "(checked before any work; excludes --jobs)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="numba and BLAS threads per worker (default: cores // workers, so that workers x "
                             "threads <= cores; at most the cores this process may use, except with --scheduler, "
                             "whose workers run on the cluster's machines)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for --scheduler to answer (default 10)")


def check_worker_counts(jobs: int, threads: int | None, *, local: bool = True, cores: int | None = None) -> None:
    """``--jobs`` and ``--threads`` within ``[1, cores]``, the cores this process may use (its CPU affinity).

    More worker processes or threads than cores only slow the run down (and thousands of them exhaust the
    machine), so they are refused before any work.  ``local=False`` (``--scheduler``: the threads run on the
    cluster's machines) bounds ``--threads`` from below only.

    Parameters
    ----------
    jobs : int
        The value of ``--jobs``.
    threads : int or None
        The value of ``--threads`` (None: the default plan).
    local : bool, optional
        Whether the threads run on this machine.
    cores : int, optional
        The cores to bound by (default :func:`sigprop.kernels.cluster.available_cores`).

    Raises
    ------
    InputError
        A value outside its range, naming the option and the range.

    Examples
    --------
    >>> check_worker_counts(2, None, cores=4)
    >>> check_worker_counts(1000, None, cores=4)
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: --jobs must be in [1, 4] (the CPU cores this process may use), got 1000
    """
    if cores is None:
        from sigprop.kernels.cluster import available_cores

        cores = available_cores()
    if not 1 <= jobs <= cores:
        raise InputError(f"--jobs must be in [1, {cores}] (the CPU cores this process may use), got {jobs}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be >= 1, got {threads}")
    if threads is not None and local and threads > cores:
        raise InputError(f"--threads must be in [1, {cores}] (the CPU cores this process may use), got {threads}")


def check_cluster_arguments(args: argparse.Namespace) -> None:
    """The values of :func:`add_cluster_arguments`, before any work (InputError)."""
    if args.scheduler is not None and args.jobs > 1:
        raise InputError("--jobs and --scheduler exclude each other (the cluster's workers do the work)")
    check_worker_counts(args.jobs, args.threads, local=args.scheduler is None)
    if not args.connect_timeout > 0:
        raise InputError(f"--connect-timeout must be > 0, got {args.connect_timeout}")
    if args.scheduler is not None:
        from sigprop.kernels.cluster import SCHEMES, check_scheduler_address, scheduler_file_address

        try:
            check_scheduler_address(args.scheduler)
            if not args.scheduler.startswith(SCHEMES):  # a scheduler file: what it holds, too
                scheduler_file_address(args.scheduler)
        except InputError as exc:
            raise InputError(f"--scheduler: {exc}") from None
