"""``simulate`` over Dask workers: the networks split into chunks, one task per chunk, the same numbers as one process.

Network ``s`` is a pure function of ``(seed, s)`` (:func:`sigprop.kernels.simulate.run_networks` computes any range
of them), so the chunks may run on any workers in any order: :func:`simulate_distributed` joins them in network
order and applies the overflow/underflow convention once to the joined networks, exactly as
:func:`sigprop.kernels.simulate` does, and returns the same :class:`SimulationResult`, bit for bit.

For runs too large for one process, ``out=PATH`` writes each chunk, as it arrives, to
``PATH.chunks/chunk-<first network>.npz`` (atomically; a chunk file already there from an interrupted run with the
same settings is reused), then :func:`merge_chunks` streams them into ``PATH``, array by array, chunk by chunk:
neither the client nor a worker ever holds more than one chunk.  The convention is then applied chunk by chunk (it
acts on each network alone, so the numbers are the same) and its reports are merged (:func:`merge_reports`) into
the one warning of each kind that ``simulate`` gives.  The files are written by the client, so the workers need no
shared filesystem.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from sigprop.theory.errors import InputError

from .backend import host_memory_available
from .float_range import BACKWARD_FIELDS, FORWARD_FIELDS, RangeReport, warn_range
from .result import SimulationResult, flat_arrays
from .simulate import SimulationRequest, assemble_result, check_request, estimate_memory, range_convention, run_networks

__all__ = ["simulate_distributed", "plan_chunks", "merge_chunks", "merge_reports", "chunk_folder", "CHUNK_BYTES",
           "DamagedChunkWarning"]

# default chunk: about this many bytes of outputs (and at least 4 chunks per worker, to balance the load)
CHUNK_BYTES = 64 * 2**20


def plan_chunks(n_networks: int, per_network_bytes: int, workers: int,
                chunk: int | None = None) -> list[tuple[int, int]]:
    """``(first, count)`` of each chunk, in network order.

    ``chunk`` networks each if given, else ``min(ceil(S / (4 workers)), CHUNK_BYTES // per_network_bytes)``.

    Examples
    --------
    >>> plan_chunks(10, 1000, 1, chunk=4)
    [(0, 4), (4, 4), (8, 2)]
    >>> plan_chunks(10, 1000, 2)
    [(0, 2), (2, 2), (4, 2), (6, 2), (8, 2)]
    """
    if chunk is None:
        chunk = min(math.ceil(n_networks / (4 * max(1, workers))), max(1, CHUNK_BYTES // max(1, per_network_bytes)))
    elif isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InputError(f"chunk must be a positive integer (networks per task), got {chunk!r}")
    chunk = max(1, chunk)
    return [(first, min(chunk, n_networks - first)) for first in range(0, n_networks, chunk)]


def _run_chunk(request: SimulationRequest, first: int, count: int) -> dict[str, np.ndarray]:
    """Worker task: the raw statistics of networks ``first .. first + count - 1``, with the worker's threads fixed."""
    from .cluster import limit_threads

    with limit_threads():
        return run_networks(request, first, count)


def _settings(request: SimulationRequest) -> dict[str, Any]:
    """The settings a one-process :meth:`SimulationResult.save_npz` writes for this request."""
    empty = np.empty((0,))
    return SimulationResult(empty, empty, empty, empty, None, None, activation=request.activation,
                            **request.shared_settings()).settings


def chunk_folder(out: str | Path) -> Path:
    """The folder of the chunk files of the run whose merged file is ``out`` (``out`` + ``.chunks``)."""
    return Path(str(out) + ".chunks")


def simulate_distributed(client, X, *, chunk: int | None = None, out: str | Path | None = None,
                         keep_chunks: bool = False, progress: bool = False,
                         **simulate_args: Any) -> SimulationResult | Path:
    """:func:`sigprop.kernels.simulate` with its networks split over the workers of a Dask ``client``.

    Parameters
    ----------
    client : distributed.Client
        E.g. from :func:`sigprop.kernels.cluster.open_client`.
    X : array_like
        The inputs, as for ``simulate``.
    chunk : int, optional
        Networks per task (default: :func:`plan_chunks`); a chunk's outputs and buffers must fit in a worker.
    out : path, optional
        Write the chunks to ``chunk_folder(out)`` as they finish and merge them into the .npz file ``out`` (the
        layout of :meth:`SimulationResult.save_npz`; read it with :func:`sigprop.kernels.load_npz`).
    keep_chunks : bool
        With ``out``: keep the chunk files after the merge (default: removed).
    progress : bool
        A progress bar of the chunks (tqdm, on stderr).
    **simulate_args
        ``depth``, ``width``, ``activation``, ``C_W``, ``n_networks`` and the other arguments of ``simulate`` (a
        ``covariance`` model included), all checked before any task is submitted.

    Returns
    -------
    SimulationResult or Path
        Without ``out``: what ``simulate(X, **simulate_args)`` returns, bit for bit.  With ``out``: the merged file.

    Raises
    ------
    ValueError, TypeError
        A bad argument (as ``simulate``), before any work.
    MemoryError
        Without ``out``: when all networks' outputs would not fit in this process (use ``out``).

    Examples
    --------
    >>> from sigprop.kernels.cluster import open_client
    >>> with open_client(jobs=2) as (client, plan):  # doctest: +SKIP
    ...     res = simulate_distributed(client, X, depth=10, width=512, activation="relu", C_W=2.0,
    ...                                n_networks=100_000, chunk=5_000)
    """
    request = check_request(X, **simulate_args)
    r = request
    N, n0 = r.n_rows, r.X.shape[1]  # N = P inputs (+ m anchors of a covariance model)
    per_net = estimate_memory(N, n0, r.widths, 1, r.method, r.backward)["outputs"]
    if r.keep_activations:
        per_net += N * sum(r.widths) * 8
    if out is None and r.n_networks * per_net > 0.8 * host_memory_available():
        raise MemoryError(f"simulate_distributed: the outputs of {r.n_networks} networks need about "
                          f"{r.n_networks * per_net / 2**30:.3g} GiB, more than 80% of the memory available here; "
                          "pass out=PATH to write them chunk by chunk")
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    chunks = plan_chunks(r.n_networks, per_net, workers, chunk)
    if out is not None:
        return _to_files(client, request, chunks, Path(out), keep_chunks, progress)
    futures = [client.submit(_run_chunk, request, first, count, pure=False) for first, count in chunks]
    parts = _gather_in_order(client, futures, progress)
    return assemble_result(request, parts)


def _completed(client, futures: list, progress: bool, desc: str = "chunks") -> Iterable:
    from distributed import as_completed

    done = as_completed(futures)
    if progress:
        import sys

        from tqdm.auto import tqdm

        done = tqdm(done, total=len(futures), desc=desc, dynamic_ncols=True, file=sys.stderr)
    return done


def _gather_in_order(client, futures: list, progress: bool) -> list[dict[str, np.ndarray]]:
    index = {f.key: i for i, f in enumerate(futures)}
    parts: list[Any] = [None] * len(futures)
    try:
        for fut in _completed(client, futures, progress):
            parts[index[fut.key]] = fut.result()
            fut.release()
    finally:
        client.cancel([f for f in futures if not f.done()])
    return parts


def _chunk_path(folder: Path, first: int) -> Path:
    return folder / f"chunk-{first:012d}.npz"


class DamagedChunkWarning(RuntimeWarning):
    """A chunk file left by an earlier run cannot be read whole (a truncated or corrupted file): it is computed
    again."""


# what reading a damaged .npz raises: a bad zip structure or CRC, an unknown compression method, a bad .npy
# header or JSON, a missing or truncated member
_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, NotImplementedError, zlib.error, zipfile.BadZipFile,
                zipfile.LargeZipFile)


def _stored_report(path: Path, settings: dict[str, Any], X: np.ndarray, first: int, count: int) -> RangeReport | None:
    """The range report of the chunk file ``path`` if it is one of this run (settings, range, inputs ``X``), else
    None; every array is read whole first (so that the zip checks each member's CRC-32) and must hold ``count``
    networks: a damaged file raises one of :data:`_READ_ERRORS`."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["chunk"]))
        if not isinstance(meta, dict):
            raise ValueError("its 'chunk' entry is not a JSON object")
        if meta.get("settings") != settings or meta.get("first") != first or meta.get("count") != count:
            return None  # a chunk of another run or chunking: not damaged, replaced
        same_inputs = True
        for k in f.files:
            a = f[k]  # read whole: a damaged member fails here
            if k == "X":
                same_inputs = a.dtype == X.dtype and np.array_equal(a, X)
            elif k != "chunk" and (a.ndim == 0 or a.shape[0] != count):
                raise ValueError(f"array {k!r} has shape {a.shape}, not {count} networks")
            del a
        if "X" not in f.files:
            raise KeyError("no array 'X'")
    if not same_inputs:
        return None  # the same settings on other inputs: another run
    try:
        return RangeReport(**meta["report"])
    except TypeError as exc:
        raise ValueError(f"its range report is not valid ({exc})") from None


def _chunk_matches(path: Path, settings: dict[str, Any], X: np.ndarray, first: int,
                   count: int) -> RangeReport | None:
    """The stored range report if ``path`` is a complete, undamaged chunk file of this run (settings, inputs ``X``)
    and range, else None (a damaged file with a :class:`DamagedChunkWarning`: it will be computed again)."""
    if not path.exists():
        return None
    try:
        return _stored_report(path, settings, X, first, count)
    except _READ_ERRORS as exc:
        warnings.warn(f"chunk file {path} is damaged or incomplete ({type(exc).__name__}: {exc}); computing its "
                      f"networks {first}..{first + count - 1} again", DamagedChunkWarning, stacklevel=4)
        return None


def _write_chunk(path: Path, X: np.ndarray, out: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    try:
        np.savez(tmp, X=X, chunk=np.array(json.dumps(meta)), **out)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # left only when writing failed (or was interrupted)


def _to_files(client, request: SimulationRequest, chunks: list[tuple[int, int]], out: Path, keep: bool,
              progress: bool) -> Path:
    folder = chunk_folder(out)
    folder.mkdir(parents=True, exist_ok=True)
    settings = _settings(request)
    reports: dict[int, RangeReport] = {}
    todo = []
    for first, count in chunks:
        rep = _chunk_matches(_chunk_path(folder, first), settings, request.X, first, count)
        if rep is None:
            todo.append((first, count))
        else:  # finished by an interrupted run with the same settings
            reports[first] = rep
    futures = [client.submit(_run_chunk, request, first, count, pure=False) for first, count in todo]
    where = {f.key: rng for f, rng in zip(futures, todo)}
    try:
        for fut in _completed(client, futures, progress):
            first, count = where[fut.key]
            part = fut.result()
            fut.release()
            # the convention acts on each network alone: per chunk it gives the numbers of the joined run
            rep = range_convention(request, part, warn=False)
            meta = {"settings": settings, "first": first, "count": count, "report": rep.__dict__}
            _write_chunk(_chunk_path(folder, first), request.X, flat_arrays(part), meta)
            reports[first] = rep
            del part
    finally:
        client.cancel([f for f in futures if not f.done()])
    stale = set(folder.glob("chunk-*.npz")) - {_chunk_path(folder, first) for first, _ in chunks}
    for p in stale:  # chunk files of another chunking of an earlier run
        p.unlink()
    merged = merge_chunks(folder, out)
    warn_range(merge_reports([reports[first] for first, _ in chunks]), request.method, stacklevel=3)
    if not keep:
        shutil.rmtree(folder)
    return merged


def merge_reports(reports: list[RangeReport]) -> RangeReport:
    """The :class:`RangeReport` that :func:`check_statistics` gives for the networks of several consecutive chunks
    joined, from the reports of the chunks (the convention acts on each network alone; only the summary is joined).

    Examples
    --------
    >>> a = RangeReport(4, 1, 3, "postact_gram", 0, None, None, None)
    >>> b = RangeReport(4, 2, 3, "preact_gram", 1, 5, "preact_m4", None)
    >>> m = merge_reports([a, b])
    >>> m.n_networks, m.overflow_networks, m.overflow_layer, m.overflow_field, m.underflow_layer
    (8, 3, 3, 'preact_gram', 5)
    """
    order = {k: i for i, k in enumerate(("preact_gram", "preact_m2", "preact_m4", "postact_gram"))}
    forward = [r for r in reports if r.overflow_layer is not None and r.overflow_field not in BACKWARD_FIELDS]
    backward = [r for r in reports if r.overflow_layer is not None and r.overflow_field in BACKWARD_FIELDS]
    o_layer = o_field = None
    if forward:  # the earliest stage: the lowest layer, its pre-activation statistics before its post-activations
        o_layer = min(r.overflow_layer for r in forward)
        o_field = min((r.overflow_field for r in forward if r.overflow_layer == o_layer), key=order.__getitem__)
    elif backward:  # the backward pass runs from the last layer down: the highest layer is the first reached
        o_layer = max(r.overflow_layer for r in backward)
        o_field = min((r.overflow_field for r in backward if r.overflow_layer == o_layer),
                      key=BACKWARD_FIELDS.index)
    under_order = FORWARD_FIELDS + BACKWARD_FIELDS
    flagged = [r for r in reports if r.underflow_layer is not None]
    u_layer = min((r.underflow_layer for r in flagged), default=None)
    u_field = min((r.underflow_field for r in flagged if r.underflow_layer == u_layer), key=under_order.index,
                  default=None)
    g_layer = min((r.gram_underflow_layer for r in reports if r.gram_underflow_layer is not None), default=None)
    return RangeReport(sum(r.n_networks for r in reports), sum(r.overflow_networks for r in reports), o_layer,
                       o_field, sum(r.underflow_networks for r in reports), u_layer, u_field, g_layer)


def merge_chunks(folder: str | Path, out: str | Path) -> Path:
    """Stream the chunk files of ``folder`` into one .npz ``out`` laid out as :meth:`SimulationResult.save_npz`.

    Each array is written chunk by chunk (one chunk in memory at a time); the chunks must cover networks
    ``0 .. S-1`` without gaps and share their settings, else :class:`InputError`; a chunk file that cannot be read
    (damaged) is an :class:`InputError` naming it.  Written atomically: on any failure (Ctrl-C included) ``out`` is
    left as it was and no temporary file remains.
    """
    folder, out = Path(folder), Path(out)
    paths = sorted(folder.glob("chunk-*.npz"))
    if not paths:
        raise InputError(f"merge_chunks: no chunk files in {folder}")
    metas = []
    for p in paths:
        with _reading(p), np.load(p, allow_pickle=False) as f:
            metas.append(json.loads(str(f["chunk"])))
            if len(metas) == 1:
                X = f["X"]
                keys = [k for k in f.files if k not in ("X", "chunk")]
                tails = {k: (f[k].shape[1:], f[k].dtype) for k in keys}
    settings = metas[0]["settings"]
    expect = 0
    for p, m in zip(paths, metas):
        if m["settings"] != settings or m["first"] != expect:
            raise InputError(f"merge_chunks: {p.name} does not continue the chunks before it (first {m['first']}, "
                             f"expected {expect}; or other settings)")
        expect += m["count"]
    if expect != settings["n_networks"]:
        raise InputError(f"merge_chunks: the chunks hold {expect} networks, the run {settings['n_networks']}")
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            _write_npy(zf, "X", X)
            _write_npy(zf, "settings", np.array(json.dumps(settings)))
            for k in keys:
                shape, dtype = tails[k]
                with zf.open(f"{k}.npy", "w", force_zip64=True) as fp:
                    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                              "shape": (expect, *shape)}
                    np.lib.format.write_array_header_2_0(fp, header)
                    for p in paths:
                        with _reading(p), np.load(p, allow_pickle=False) as f:
                            a = f[k]
                        if a.shape[1:] != shape or a.dtype != dtype:
                            raise InputError(f"merge_chunks: chunk file {p} holds {k} of shape {a.shape[1:]} and "
                                             f"dtype {a.dtype} per network, the first chunk {shape} and {dtype}")
                        fp.write(np.ascontiguousarray(a).tobytes())
                        del a
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # only there when the merge failed or was interrupted
    return out


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn the errors of reading a damaged chunk file into one :class:`InputError` naming it."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise InputError(f"merge_chunks: chunk file {path} cannot be read ({type(exc).__name__}: {exc}); delete it "
                         "(or run again with the same settings: a damaged chunk is computed again)") from None


def _write_npy(zf: zipfile.ZipFile, name: str, a: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    zf.writestr(f"{name}.npy", buf.getvalue())
