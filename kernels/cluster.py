"""Dask clusters for sigprop: connect to one (a new ``LocalCluster`` or an existing scheduler) and fix the threads.

Every worker runs one task at a time (one Dask thread) and gives that task an explicit number of numba and BLAS
threads, so that ``workers x threads <= cores`` unless the caller asks for more: :func:`thread_plan` chooses the
numbers, :func:`open_client` starts the ``LocalCluster`` with them in the workers' environment (set before numba or
a BLAS library is loaded), and :func:`limit_threads` applies them inside a task (on a cluster someone else started,
whose environment sigprop does not control).  Dask is imported only when a cluster is used.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from sigprop.theory.errors import InputError

__all__ = ["ThreadPlan", "thread_plan", "check_scheduler_address", "scheduler_file_address", "open_client",
           "limit_threads", "blas_thread_limit", "threads_in_use", "available_cores", "CONNECT_TIMEOUT_S",
           "SCHEMES"]

CONNECT_TIMEOUT_S = 10.0
SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")
# a scheduler file is a small JSON object; a larger file is not one (and is not read whole)
_SCHEDULER_FILE_MAX_BYTES = 2**20
_THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class ThreadPlan(dict):
    """How work is spread: ``workers`` processes, each with ``numba_threads`` and ``blas_threads``.

    A dict (so that it goes into ``results.json`` as it is) with the keys ``mode`` ('in-process', 'LocalCluster',
    'scheduler'), ``address``, ``workers``, ``numba_threads``, ``blas_threads`` (None: the worker's own choice, one
    per core it has divided by its task slots) and ``cores`` (of this machine).
    """


def thread_plan(workers: int, threads: int | None = None, cores: int | None = None, mode: str = "LocalCluster",
                address: str | None = None) -> ThreadPlan:
    """The numba/BLAS threads per worker: ``threads`` if given, else ``max(1, cores // workers)``.

    Parameters
    ----------
    workers : int
        Worker processes (>= 1).
    threads : int, optional
        Threads per worker chosen by the user (may exceed ``cores // workers``).
    cores : int, optional
        Cores to share (default :func:`available_cores`).
    mode, address : str
        Recorded in the plan.

    Returns
    -------
    ThreadPlan

    Examples
    --------
    >>> p = thread_plan(2, cores=2)
    >>> p["workers"], p["numba_threads"], p["blas_threads"]
    (2, 1, 1)
    >>> thread_plan(3, threads=4, cores=8)["numba_threads"]
    4
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InputError(f"threads must be a positive integer, got {threads!r}")
    cores = cores or available_cores()
    n = threads if threads is not None else max(1, cores // workers)
    return ThreadPlan(mode=mode, address=address, workers=workers, numba_threads=n, blas_threads=n, cores=cores)


def check_scheduler_address(address: str) -> str:
    """``address`` if it names a scheduler (``tcp://host:port`` and the other Dask schemes, or an existing
    scheduler file); else :class:`InputError`, before any connection is tried.

    Examples
    --------
    >>> check_scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    >>> check_scheduler_address("nope.json")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: scheduler 'nope.json': not an address (tcp://host:port, ...) and no such file
    """
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"scheduler must be an address such as tcp://host:8786 or a scheduler file, got {address!r}")
    if address.startswith(SCHEMES):
        host = address.split("://", 1)[1]
        if not host or host.startswith(":"):
            raise InputError(f"scheduler {address!r}: no host in the address (e.g. tcp://host:8786)")
        return address
    if "://" in address:
        raise InputError(f"scheduler {address!r}: unknown scheme; use one of {', '.join(SCHEMES)}")
    if not Path(address).is_file():
        raise InputError(f"scheduler {address!r}: not an address (tcp://host:port, ...) and no such file")
    return address


def scheduler_file_address(path: str) -> str:
    """The scheduler's address written in the Dask scheduler file ``path`` (``dask scheduler --scheduler-file``).

    Parameters
    ----------
    path : str
        An existing file.

    Returns
    -------
    str
        Its ``"address"``, checked by :func:`check_scheduler_address` (e.g. ``'tcp://10.0.0.5:8786'``).

    Raises
    ------
    InputError
        The file cannot be read, or is not a JSON object with an ``"address"`` such as ``tcp://host:8786`` (any
        other file: a typo, a report, an empty file), before any connection is tried.

    Examples
    --------
    >>> import json, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "scheduler.json")
    ...     with open(path, "w") as f:
    ...         json.dump({"type": "Scheduler", "address": "tcp://10.0.0.5:8786"}, f)
    ...     scheduler_file_address(path)
    'tcp://10.0.0.5:8786'
    """
    what = (f"scheduler file {path!r} is not a Dask scheduler file (a JSON object with an \"address\" such as "
            "tcp://host:8786, written by `dask scheduler --scheduler-file FILE`)")
    try:
        with open(path, "rb") as f:
            data = f.read(_SCHEDULER_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"scheduler file {path!r}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > _SCHEDULER_FILE_MAX_BYTES:
        raise InputError(f"{what}: it is larger than {_SCHEDULER_FILE_MAX_BYTES} bytes")
    try:
        cfg = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputError(f"{what}: it is not JSON") from None
    address = cfg.get("address") if isinstance(cfg, dict) else None
    if not isinstance(address, str) or not address.startswith(SCHEMES):
        raise InputError(f"{what}: its \"address\" is missing or not an address")
    try:
        return check_scheduler_address(address)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


@contextlib.contextmanager
def open_client(*, jobs: int = 1, scheduler: str | None = None, threads: int | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> Iterator[tuple[Any, ThreadPlan]]:
    """A ``distributed.Client`` and its :class:`ThreadPlan`; closed (with the cluster it started) on exit.

    With ``scheduler`` (an address or a scheduler file, whose content is checked first with
    :func:`scheduler_file_address`): connect to that cluster; failing to connect within ``timeout`` seconds is an
    :class:`InputError`.  Otherwise start a ``LocalCluster`` of ``jobs`` worker processes
    with one task slot each and the plan's numba/BLAS threads in their environment; they ignore Ctrl-C (this
    process stops them when the body exits, also after Ctrl-C).

    Examples
    --------
    >>> with open_client(jobs=2) as (client, plan):  # doctest: +SKIP
    ...     print(plan["workers"], client.submit(sum, [1, 2]).result())
    2 3
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        address = check_scheduler_address(scheduler)
        if not address.startswith(SCHEMES):  # a scheduler file: its content checked before connecting
            scheduler_file_address(address)
        try:
            if address.startswith(SCHEMES):
                client = Client(address, timeout=timeout)
            else:
                client = Client(scheduler_file=address, timeout=timeout)
        except (OSError, TimeoutError, ValueError, KeyError) as exc:
            raise InputError(f"scheduler {address!r}: cannot connect ({type(exc).__name__}: {exc})") from None
        try:
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            plan = ThreadPlan(mode="scheduler", address=client.scheduler.address, workers=workers,
                              numba_threads=threads, blas_threads=threads, cores=None)
            yield client, plan
        finally:
            client.close()
        return
    plan = thread_plan(jobs, threads)
    env = {var: str(plan["numba_threads"]) for var in _THREAD_VARS}
    env["MPLBACKEND"] = "Agg"
    # silence_logs=CRITICAL: the workers' own log lines (heartbeats that fail while the cluster closes after Ctrl-C
    # on a busy machine, ...) are infrastructure noise on the user's terminal; what fails in a task reaches the
    # client as its exception (a failed check with the traceback)
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
                      scheduler_kwargs={"dashboard": False}, env=env, preload=[__name__],
                      silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
        plan["address"] = cluster.scheduler_address
        yield client, plan


def blas_thread_limit(threads: int | None) -> contextlib.AbstractContextManager:
    """A context capping BLAS at ``threads`` threads (threadpoolctl), or doing nothing for None: the one cap of the
    trainer (``train(blas_threads=)``) and of ``rfm(blas_threads=)``, whose callers check ``threads >= 1``.

    Examples
    --------
    >>> with blas_thread_limit(None):
    ...     pass
    """
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads, user_api="blas")


@contextlib.contextmanager
def limit_threads(numba_threads: int | None = None, blas_threads: int | None = None) -> Iterator[dict[str, int]]:
    """Run the body with these numba and BLAS threads (None: the cores this process may use, over this worker's task
    slots, and no more than the worker's environment allows: ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` & co.).

    Yields :func:`threads_in_use` as set; restores the previous numba setting and BLAS limits on exit.

    Examples
    --------
    >>> with limit_threads(1, 1) as used:
    ...     used["numba_threads"], used["blas_threads"] <= 1
    (1, True)
    """
    import numba
    from threadpoolctl import threadpool_limits

    _numba_follows_environment()
    default = max(1, available_cores() // _task_slots())
    previous = numba.get_num_threads()
    # NUMBA_NUM_THREADS (and, for the default, OMP_NUM_THREADS & co.) in the worker's environment are upper bounds
    numba.set_num_threads(max(1, min(numba_threads or default, numba.config.NUMBA_NUM_THREADS)))
    blas_now = threads_in_use()["blas_threads"]
    try:
        with threadpool_limits(limits=blas_threads or min(default, blas_now)):
            yield threads_in_use()
    finally:
        numba.set_num_threads(previous)


def _numba_follows_environment() -> None:
    """Make numba's thread-pool size and ``NUMBA_NUM_THREADS`` in ``os.environ`` agree.

    A Dask worker's environment is set after numba was imported, so numba's configuration may still hold the
    default when the first unit launches its threads; numba re-reads the variable at every compilation and raises
    ``RuntimeError`` if it differs from the launched pool's size.  Before the pool exists, numba re-reads the
    environment here; once it exists, the variable is set to the pool's size.
    """
    import numba

    try:
        numba.config.reload_config()
    except RuntimeError:  # threads already launched with another size: that size stands
        os.environ["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)


def threads_in_use() -> dict[str, int]:
    """``numba_threads`` (numba's current setting) and ``blas_threads`` (the largest of the BLAS pools loaded, 1 if
    none is)."""
    import numba
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return {"numba_threads": int(numba.get_num_threads()), "blas_threads": int(max(blas, default=1))}


def dask_setup(worker) -> None:
    """Preload hook of the ``LocalCluster``'s workers: they ignore Ctrl-C, which reaches the whole process group;
    the process that started them stops them (no traceback from every worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, e.g. a SLURM allocation; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _task_slots() -> int:
    """Task slots (Dask threads) of the worker this runs in; 1 outside a Dask worker."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1
