"""``sigprop simulate``: simulate random finite-width networks and write the statistics to an .npz file.

The .npz holds ``X``, the statistics arrays of :class:`sigprop.kernels.SimulationResult` and ``settings``
(a JSON string); read it back with :func:`sigprop.kernels.load_npz`.  With ``--jobs N`` or ``--scheduler ADDRESS``
the networks are split into chunks over Dask workers (:mod:`sigprop.kernels.distributed`; the same numbers, bit
for bit); ``--chunk-files`` writes each chunk to ``OUT.chunks/`` as it finishes and merges them into OUT, so that
no process holds every network.

In one process the networks run in batches of about :data:`BATCH_SECONDS` of work each (network ``s`` is a pure
function of ``(seed, s)``, so the batches do not change a number), so that Ctrl-C stops the run within about that
time (the engines' compiled loops do not see it) with one line and exit status 130.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time

import numpy as np

from sigprop.kernels.simulate import BACKENDS, METHODS, NORMS, WEIGHTS
from sigprop.theory.activations import ACTIVATION_NAMES
from sigprop.theory.errors import InputError

from .args import activation_from_args, add_activation_arguments, add_cluster_arguments, check_cluster_arguments
from .checks import check_input_file, check_output_path

__all__ = ["add_arguments", "run", "simulate", "BATCH_SECONDS"]

#: seconds of work per engine call in one process: how soon Ctrl-C is answered (the compiled engines do not see it)
BATCH_SECONDS = 1.0

# one example command per printed line (users copy them); the long ones are split only in this source
EXAMPLES = (
    "examples:\n"
    "  sigprop simulate --activation relu --C-W 2 --depth 20 --width 512 --networks 200 --inputs 8 --out relu.npz\n"
    "  sigprop simulate --activation tanh --C-W 1 --width 64 128 64 --depth 3 --corr 0.5 --networks 1000\n"
    "  sigprop simulate --activation leaky_relu --param slope=0.2 --C-W 1.923 --depth 10 --width 256"
    " --method explicit --weights rademacher --backward\n"
    "  sigprop simulate --X inputs.npy --activation gelu --C-W 1 --depth 10 --width 1024 --norm ln_pre"
    " --residual 0.5 --backend cuda\n"
    "  sigprop simulate --activation relu --C-W 2 --depth 10 --width 128 --networks 400 --jobs 2 --chunk 50"
    " --chunk-files --out big.npz\n"
    "(inputs.npy: your inputs, one per row, saved with numpy.save; --backend cuda needs an NVIDIA GPU)\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXAMPLES
    net = parser.add_argument_group("network")
    add_activation_arguments(net, help=f"activation name; one of: {', '.join(ACTIVATION_NAMES)}")
    net.add_argument("--depth", type=int, required=True, help="number of hidden layers L (>= 1)")
    net.add_argument("--width", type=int, nargs="+", required=True,
                     help="width of every hidden layer, or one width per layer (L values)")
    net.add_argument("--C-W", dest="C_W", type=float, required=True, help="weight variance times fan-in (> 0)")
    net.add_argument("--C-b", dest="C_b", type=float, default=0.0, help="bias variance (>= 0, default 0)")
    net.add_argument("--weights", choices=WEIGHTS, default="gaussian",
                     help="weight distribution, unit variance before scaling (default gaussian; others need "
                          "--method explicit or numpy)")
    net.add_argument("--residual", type=float, default=0.0,
                     help="skip weight r in [0, 1): h = sqrt(1-r^2) phi(z) + r S h_prev / sqrt(n) (default 0)")
    net.add_argument("--norm", choices=[n for n in NORMS if n], default=None,
                     help="normalisation across neurons: rms_pre, ln_pre (before phi), rms_post, ln_post (after)")
    inp = parser.add_argument_group("inputs (X, one input per row; default: 2 inputs of dimension 64)")
    inp.add_argument("--X", dest="X_path", default=None, metavar="FILE.npy",
                     help="load X (P, n_0) from a .npy file (overrides --inputs/--input-dim/--corr)")
    inp.add_argument("--inputs", type=int, default=2, help="number of inputs P for generated X (default 2)")
    inp.add_argument("--input-dim", type=int, default=64, help="input dimension n_0 for generated X (default 64)")
    inp.add_argument("--corr", type=float, default=None,
                     help="generate inputs with |x|^2/n_0 = 1 and all pairwise correlations equal to CORR in "
                          "(-1/(P-1), 1] (default: independent Gaussian inputs, seed --input-seed)")
    inp.add_argument("--input-seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    run_ = parser.add_argument_group("run")
    run_.add_argument("--networks", dest="n_networks", type=int, default=100, help="number of networks S (default 100)")
    run_.add_argument("--method", choices=METHODS, default="gram",
                      help="gram (exact Gram chain, Gaussian weights, forward only; default), explicit "
                           "(explicit weights, any distribution, --backward), numpy (dense reference, slow)")
    run_.add_argument("--backend", choices=BACKENDS, default="cpu", help="cpu (default) or cuda")
    run_.add_argument("--seed", type=int, default=0, help="random seed in [0, 2^64) (default 0)")
    run_.add_argument("--backward", action="store_true",
                      help="also compute backward_gram and tangent_gram (explicit/numpy, residual 0, no norm)")
    run_.add_argument("--out", default="simulation.npz",
                      help="output .npz path (default simulation.npz; .npz is appended when missing); its folder "
                           "must exist and be writable, checked before the simulation starts")
    dist = parser.add_argument_group("distributed (Dask; see docs/distributed.md)")
    add_cluster_arguments(dist, unit="chunks of networks")
    dist.add_argument("--chunk", type=int, default=None, metavar="C",
                      help="networks per Dask task (default: about 64 MiB of outputs, at least 4 tasks per worker)")
    dist.add_argument("--chunk-files", action="store_true",
                      help="write each chunk to OUT.chunks/ as it finishes (an interrupted run reuses them), then "
                           "merge them into OUT, one chunk in memory at a time")


def make_inputs(P: int, n0: int, corr: float | None, seed: int) -> np.ndarray:
    """(P, n0) inputs: i.i.d. N(0, 1) entries, or (corr given) exact equicorrelated rows with |x|^2/n0 = 1."""
    for name, v in (("--inputs", P), ("--input-dim", n0)):
        if v < 1:
            raise InputError(f"{name} must be >= 1, got {v}")
    if seed < 0:
        raise InputError(f"--input-seed must be an integer >= 0, got {seed}")
    g = np.random.default_rng(seed)
    if corr is None:
        return g.standard_normal((P, n0))
    lo = -1.0 / (P - 1) if P > 1 else -1.0
    if not lo <= corr <= 1.0:
        raise InputError(f"--corr must be in [{lo:g}, 1] for P={P} inputs, got {corr}")
    if n0 < P:
        raise InputError(f"--corr needs --input-dim >= --inputs (an orthonormal frame), got {n0} < {P}")
    Q, _ = np.linalg.qr(g.standard_normal((n0, P)))  # orthonormal columns
    C = np.full((P, P), corr) + (1 - corr) * np.eye(P)
    w, V = np.linalg.eigh(C)
    R = V * np.sqrt(np.maximum(w, 0.0))  # C = R R^T
    return math.sqrt(n0) * R @ Q.T


def simulate(X, *, batch_seconds: float = BATCH_SECONDS, **simulate_args):
    """:func:`sigprop.kernels.simulate`, bit for bit, in batches of about ``batch_seconds`` of work each: the
    simulation of ``sigprop simulate`` in one process.

    The first batch is one network; each next one is sized from the time per network measured so far (at most
    twice the last, and never more than the memory planner's batch), so that a Ctrl-C (which the compiled engines
    only see between calls) ends the run within about ``batch_seconds``.

    Parameters
    ----------
    X : array_like
        The inputs, as for ``simulate``.
    batch_seconds : float, optional
        Target seconds of work per engine call (default :data:`BATCH_SECONDS`).
    **simulate_args
        The other arguments of ``simulate``, all checked before any work.

    Returns
    -------
    SimulationResult
        What ``simulate(X, **simulate_args)`` returns.

    Examples
    --------
    >>> import numpy as np
    >>> from sigprop import kernels
    >>> args = dict(depth=2, width=8, activation="relu", C_W=2.0, n_networks=5, seed=1)
    >>> a = simulate(np.eye(2, 3), batch_seconds=0.0, **args)  # one network per engine call
    >>> np.array_equal(a.preact_gram, kernels.simulate(np.eye(2, 3), **args).preact_gram)
    True
    """
    from sigprop.kernels.simulate import assemble_result, check_request, plan_batches, run_networks

    request = r = check_request(X, **simulate_args)
    cap = plan_batches(r.X.shape[0], r.X.shape[1], r.widths, r.n_networks, r.method, r.backward, r.backend)
    parts, first, batch = [], 0, 1
    while first < r.n_networks:
        count = min(batch, cap, r.n_networks - first)
        t0 = time.perf_counter()
        parts.append(run_networks(request, first, count))
        elapsed = time.perf_counter() - t0
        first += count
        fit = int(batch_seconds * count / elapsed) if elapsed > 0 else 2 * count
        batch = max(1, min(2 * count, fit))
    return assemble_result(request, parts)


def _npz_path(out: str) -> str:
    """The file :meth:`SimulationResult.save_npz` writes for ``out`` (NumPy appends ``.npz`` when missing)."""
    return out if out.endswith(".npz") else out + ".npz"


def _load_X(path: str) -> np.ndarray:
    """The array in the .npy file ``path`` (``--X``), checked to exist, to be readable as an array and to hold
    real numbers (int or float: a complex array would lose its imaginary part, so it is refused), one input per
    row."""
    from sigprop.theory.arguments import real_array

    check_input_file(path, option="--X")
    try:
        X = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"--X: cannot read {path!r} as a .npy array: {exc}") from None
    return real_array(X, f"the array in {path!r}", "--X", 2)


def run(args: argparse.Namespace) -> int:
    # ---- paths first, before any work: one-line errors, exit 2 (see validation/cli/checks.py) ----
    check_output_path(args.out, option="--out", kind="file")  # empty, an existing folder ('.'), missing folder
    if _npz_path(args.out) != args.out:
        check_output_path(_npz_path(args.out), option="--out", kind="file")
    check_cluster_arguments(args)
    act = activation_from_args(args)
    if args.X_path is not None:
        X = _load_X(args.X_path)
    else:
        X = make_inputs(args.inputs, args.input_dim, args.corr, args.input_seed)
    width = args.width[0] if len(args.width) == 1 else args.width
    kwargs = dict(depth=args.depth, width=width, activation=act, C_W=args.C_W, C_b=args.C_b,
                  n_networks=args.n_networks, method=args.method, backend=args.backend, seed=args.seed,
                  weights=args.weights, residual=args.residual, norm=args.norm, backward=args.backward)
    if args.chunk is not None and args.chunk < 1:
        raise InputError(f"--chunk must be >= 1, got {args.chunk}")
    if args.jobs == 1 and args.scheduler is None:
        if args.chunk is not None or args.chunk_files:
            raise InputError("--chunk and --chunk-files need --jobs N (N > 1) or --scheduler")
        from sigprop.kernels.cluster import limit_threads

        with limit_threads(args.threads, args.threads) if args.threads else contextlib.nullcontext():
            res = simulate(X, **kwargs)
    else:
        from sigprop.kernels.cluster import open_client
        from sigprop.kernels.distributed import chunk_folder, simulate_distributed
        from sigprop.kernels.simulate import check_request

        check_request(X, **kwargs)  # every argument, before a cluster starts
        try:
            with open_client(jobs=args.jobs, scheduler=args.scheduler, threads=args.threads,
                             timeout=args.connect_timeout) as (client, plan):
                print(f"dask: {plan['mode']} {plan['address']}, {plan['workers']} workers", file=sys.stderr)
                res = simulate_distributed(client, X, chunk=args.chunk, progress=sys.stderr.isatty(),
                                           out=_npz_path(args.out) if args.chunk_files else None, **kwargs)
        except KeyboardInterrupt:
            if not args.chunk_files:
                raise  # the dispatcher's one line
            sys.stderr.write(f"\nsigprop simulate: interrupted; the finished chunks are kept in "
                             f"{chunk_folder(_npz_path(args.out))}/: run the same command again to reuse them\n")
            sys.stderr.flush()
            return 130
        if args.chunk_files:
            print(f"wrote {res} (merged from {chunk_folder_text(args.out)})")
            return 0
    path = res.save_npz(args.out)
    mean_pre = res.preact_gram.mean(axis=0)
    print(json.dumps(res.settings))
    print(f"wrote {path}: {', '.join(f'{k} {v.shape}' for k, v in res.arrays().items())}")
    print("mean preact_gram[0, 0] per layer:", np.array2string(mean_pre[:, 0, 0], precision=4))
    return 0


def chunk_folder_text(out: str) -> str:
    """Where ``--chunk-files`` puts the chunks of ``out`` (removed after the merge)."""
    from sigprop.kernels.distributed import chunk_folder

    return f"{chunk_folder(_npz_path(out))}/, removed after the merge"
