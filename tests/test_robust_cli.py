"""The ``sigprop`` command under bad input, exhausting requests, damaged files and Ctrl-C: one line on stderr and
exit status 2 before any work (130 after Ctrl-C), never a traceback, a hang or a silently wrong number.

- ``simulate --X`` with a complex array is refused (its imaginary part would be dropped);
- ``--jobs`` and ``--threads`` are bounded by the cores this process may use (``validate`` and ``simulate``);
- ``equilibrium --depths`` counts a range before building it;
- ``--scheduler FILE`` checks that FILE is a Dask scheduler file;
- ``simulate --input-seed`` is checked;
- a damaged chunk file of ``simulate --chunk-files`` is computed again (and a merge never leaves its temporary file);
- Ctrl-C on ``sigprop simulate`` (with and without ``--jobs``) ends with one line and exit status 130, within
  seconds (one process runs the networks in short batches, which change no number).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sigprop.kernels import cluster, load_npz, simulate
from sigprop.kernels.distributed import DamagedChunkWarning, chunk_folder, merge_chunks, simulate_distributed
from sigprop.theory.errors import InputError
from sigprop.validation.cli import main
from sigprop.validation.cli.args import check_worker_counts
from sigprop.validation.cli.equilibrium import MAX_DEPTHS, _parse_depths
from sigprop.validation.cli.simulate import simulate as simulate_in_batches

SIM = ["simulate", "--activation", "relu", "--C-W", "2", "--depth", "2", "--width", "8", "--networks", "3"]


def one_error_line(capsys, cmd: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"sigprop {cmd}: error: "), err
    return err


# --- complex --X --------------------------------------------------------------------------------------------------


def test_simulate_refuses_a_complex_X_naming_it(tmp_path, capsys):
    path = tmp_path / "c.npy"
    np.save(path, np.ones((2, 4)) + 1j)
    out = tmp_path / "o.npz"
    assert main([*SIM, "--X", str(path), "--out", str(out)]) == 2
    err = one_error_line(capsys, "simulate")
    assert "--X" in err and "complex" in err
    assert not out.exists()


def test_simulate_still_takes_a_real_X(tmp_path, capsys):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(8, dtype=np.int32).reshape(2, 4))
    assert main([*SIM, "--X", str(path), "--out", str(tmp_path / "o.npz")]) == 0
    res, _ = load_npz(tmp_path / "o.npz")
    assert np.array_equal(res["X"], np.arange(8.0).reshape(2, 4))


# --- --jobs and --threads bounded by the cores ------------------------------------------------------------------


@pytest.fixture
def three_cores(monkeypatch):
    monkeypatch.setattr(cluster, "available_cores", lambda: 3)


@pytest.mark.parametrize("flags, option", [(["--jobs", "1000"], "--jobs"), (["--jobs", "4"], "--jobs"),
                                           (["--threads", "1000"], "--threads"), (["--jobs", "0"], "--jobs"),
                                           (["--threads", "0"], "--threads")])
def test_validate_bounds_jobs_and_threads_by_the_cores(tmp_path, capsys, three_cores, flags, option):
    out = tmp_path / "rep"
    t0 = time.perf_counter()
    assert main(["validate", "--profile", "smoke", "--quiet", "--out", str(out), *flags]) == 2
    assert time.perf_counter() - t0 < 10  # refused at once, not after starting 1000 workers
    err = one_error_line(capsys, "validate")
    assert f"{option} must be in [1, 3]" in err or (flags[1] == "0" and f"{option} must be" in err)
    assert not out.exists()


@pytest.mark.parametrize("flags, option", [(["--jobs", "1000"], "--jobs"), (["--jobs", "2", "--threads", "64"],
                                                                          "--threads")])
def test_simulate_bounds_jobs_and_threads_the_same_way(tmp_path, capsys, three_cores, flags, option):
    out = tmp_path / "s.npz"
    assert main([*SIM, *flags, "--out", str(out)]) == 2
    assert f"{option} must be in [1, 3] (the CPU cores this process may use), got" in one_error_line(capsys, "simulate")
    assert not out.exists()


def test_worker_counts_within_the_cores_pass():
    check_worker_counts(3, 3, cores=3)
    check_worker_counts(1, None, cores=1)
    check_worker_counts(1, 64, local=False, cores=2)  # --scheduler: the threads run on the cluster's machines
    with pytest.raises(InputError, match=r"--threads must be >= 1"):
        check_worker_counts(1, 0, local=False, cores=2)


def test_simulate_applies_threads_in_one_process(tmp_path, monkeypatch):
    """``--threads`` without ``--jobs`` is not dropped: the one process runs with that many threads."""
    seen = []
    real = cluster.limit_threads

    def recording(numba_threads=None, blas_threads=None):
        seen.append((numba_threads, blas_threads))
        return real(numba_threads, blas_threads)

    monkeypatch.setattr(cluster, "limit_threads", recording)
    assert main([*SIM, "--threads", "1", "--out", str(tmp_path / "t.npz")]) == 0
    assert seen == [(1, 1)]


# --- equilibrium --depths: the count before the list ------------------------------------------------------------


def test_equilibrium_depths_range_is_counted_before_it_is_built(capsys):
    t0 = time.perf_counter()
    assert main(["equilibrium", "--depths", "10:1000000000:1"]) == 2
    assert time.perf_counter() - t0 < 5
    err = one_error_line(capsys, "equilibrium")
    assert "--depths" in err and str(MAX_DEPTHS) in err and "999999991" in err


def test_equilibrium_depths_count_limit_is_exact():
    assert len(_parse_depths(f"2:{MAX_DEPTHS + 1}")) == MAX_DEPTHS
    with pytest.raises(InputError, match="at most"):
        _parse_depths(f"2:{MAX_DEPTHS + 2}")
    with pytest.raises(InputError, match="at most"):
        _parse_depths(",".join(["10"] * (MAX_DEPTHS + 1)))


# --- --scheduler FILE that is not a scheduler file --------------------------------------------------------------


@pytest.mark.parametrize("content", ["{}", "hello, not JSON", '{"address": "http://x:8786"}', '["tcp://h:1"]',
                                     '{"address": "tcp://"}', ""])
def test_scheduler_file_that_is_not_one_is_one_line(tmp_path, capsys, content):
    sched = tmp_path / "s.json"
    sched.write_text(content)
    out = tmp_path / "s.npz"
    assert main([*SIM, "--scheduler", str(sched), "--connect-timeout", "1", "--out", str(out)]) == 2
    err = one_error_line(capsys, "simulate")
    assert "--scheduler" in err and "not a Dask scheduler file" in err
    assert not out.exists()
    rep = tmp_path / "rep"
    assert main(["validate", "--profile", "smoke", "--quiet", "--scheduler", str(sched), "--out", str(rep)]) == 2
    assert "--scheduler" in one_error_line(capsys, "validate")
    assert not rep.exists()


def test_scheduler_file_address_reads_a_good_file(tmp_path):
    sched = tmp_path / "s.json"
    sched.write_text(json.dumps({"type": "Scheduler", "id": "x", "address": "tcp://127.0.0.1:8786", "workers": {}}))
    assert cluster.scheduler_file_address(str(sched)) == "tcp://127.0.0.1:8786"


# --- --input-seed -------------------------------------------------------------------------------------------------


def test_negative_input_seed_is_one_line_naming_it(tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main([*SIM, "--input-seed", "-1", "--out", str(out)]) == 2
    err = one_error_line(capsys, "simulate")
    assert "--input-seed" in err and ">= 0" in err
    assert not out.exists()


# --- damaged chunk files ------------------------------------------------------------------------------------------

ARGS = dict(depth=3, width=8, activation="relu", C_W=2.0, n_networks=12, seed=3)
X = np.random.default_rng(0).standard_normal((2, 5))


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0",
                                  silence_logs=40) as lc, distributed.Client(lc) as c:
        yield c


def _flip(path: Path, n: int = 8) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    path.write_bytes(bytes(data))


def test_a_damaged_chunk_is_computed_again_with_a_warning(tmp_path, client):
    out = tmp_path / "big.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DamagedChunkWarning)
        simulate_distributed(client, X, chunk=4, out=out, keep_chunks=True, **ARGS)
    first, settings = load_npz(out)
    chunks = sorted(chunk_folder(out).glob("chunk-*.npz"))
    assert len(chunks) == 3
    _flip(chunks[1])
    out.unlink()
    with pytest.warns(DamagedChunkWarning, match=r"chunk-000000000004\.npz is damaged"):
        simulate_distributed(client, X, chunk=4, out=out, **ARGS)
    again, settings2 = load_npz(out)
    assert settings2 == settings and all(np.array_equal(first[k], again[k]) for k in first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.npz"]  # no temporary file, chunks removed


def test_chunks_of_other_inputs_are_not_reused(tmp_path, client):
    out = tmp_path / "run.npz"
    simulate_distributed(client, X, chunk=4, out=out, keep_chunks=True, **ARGS)
    X2 = 2.0 * X
    simulate_distributed(client, X2, chunk=4, out=out, **ARGS)
    fresh = simulate_distributed(client, X2, **ARGS)
    got, _ = load_npz(out)
    assert np.array_equal(got["X"], X2)
    assert np.array_equal(got["preact_gram"], fresh.preact_gram)


def test_merge_of_a_damaged_chunk_names_it_and_leaves_no_temporary_file(tmp_path, client):
    out = tmp_path / "m.npz"
    simulate_distributed(client, X, chunk=4, out=out, keep_chunks=True, **ARGS)
    out.unlink()
    _flip(sorted(chunk_folder(out).glob("chunk-*.npz"))[2])
    with pytest.raises(InputError, match=r"chunk file .*chunk-000000000008\.npz cannot be read"):
        merge_chunks(chunk_folder(out), out)
    assert not out.exists() and not list(tmp_path.glob("m.npz.tmp*"))


# --- Ctrl-C -------------------------------------------------------------------------------------------------------

# hours of work, small outputs (the planner accepts it)
LONG = ["simulate", "--activation", "relu", "--C-W", "2", "--depth", "100", "--width", "2048", "--networks",
        "5000", "--method", "explicit"]


def _as_from_a_terminal() -> None:
    """In the child, before exec: SIGINT deliverable and at its default action, as a shell starts a command.  A
    child inherits an ignored SIGINT and a blocked signal mask from its parent, and this test's parent is a test
    worker that other tests (Dask clusters, thread pools) may have left in either state."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(argv: list[str], tmp_path: Path, wait_for: str | None, after: float) -> tuple[int, list[str], float]:
    """Run ``sigprop ARGV`` in a new process group; once ``wait_for`` is on stderr (or the CLI is imported), wait
    ``after`` seconds and send SIGINT to the group, as a terminal's Ctrl-C does; its exit status, stderr lines and
    the seconds from SIGINT to its exit."""
    code = ("import sys\nfrom sigprop.validation.cli import main\nprint('ready', flush=True)\n"
            f"sys.exit(main({argv!r}))\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env,
                            preexec_fn=_as_from_a_terminal)
    try:
        assert proc.stdout.readline().strip() == "ready"
        if wait_for is not None:
            line = proc.stderr.readline()
            assert line.startswith(wait_for), line
        time.sleep(after)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.perf_counter()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit 60 s after SIGINT; this worker's SIGINT handler {signal.getsignal(signal.SIGINT)!r}, "
                        f"blocked signals {sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))}")
        latency = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, [line for line in err.splitlines() if line.strip()], latency


def test_ctrl_c_on_simulate_is_one_line_and_exit_130_within_seconds(tmp_path):
    """Interrupted in the middle of the engines' work (after the imports and the compilation, on an idle machine):
    answered within a few seconds, not when the whole run would have ended."""
    rc, err, latency = _interrupt([*LONG, "--out", "o.npz"], tmp_path, None, 5.0)
    assert rc == 130 and err == ["sigprop simulate: interrupted"], err
    assert latency < 10
    assert not (tmp_path / "o.npz").exists()


def test_ctrl_c_on_simulate_with_jobs_is_one_line_and_exit_130(tmp_path):
    rc, err, _ = _interrupt([*LONG, "--jobs", "2", "--chunk", "10", "--chunk-files", "--out", "o.npz"], tmp_path,
                            "dask:", 1.0)
    assert rc == 130 and len(err) == 1, err
    assert err[0].startswith("sigprop simulate: interrupted; the finished chunks are kept in o.npz.chunks/"), err


@pytest.mark.parametrize("extra", [dict(), dict(method="explicit", weights="rademacher", backward=True),
                                   dict(method="numpy", C_b=0.1), dict(residual=0.5, norm="ln_pre"),
                                   dict(C_W=1e80)])
def test_batches_of_the_cli_give_the_numbers_of_simulate(extra):
    args = {**dict(depth=3, width=6, activation="tanh", C_W=1.5, n_networks=7, seed=5), **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = simulate(X, **args)
        batched = simulate_in_batches(X, batch_seconds=0.0, **args)  # one network per engine call
    for k, v in whole.arrays().items():
        assert np.array_equal(v, batched.arrays()[k], equal_nan=True), k
    assert whole.settings == batched.settings


@pytest.mark.parametrize("X", [np.ones((2, 3)) + 1j, np.ones((2, 3), dtype=bool), np.array([["a", "b"]])])
def test_library_simulate_refuses_non_real_X_naming_it(X):
    """simulate(X=complex) dropped the imaginary part with only numpy's ComplexWarning; bool and strings too."""
    from sigprop.theory.errors import InputTypeError

    with pytest.raises(InputTypeError, match=r"^X must be a real \(P, n_0\) array of int or float dtype"):
        simulate(X, depth=2, width=4, activation="relu", C_W=2.0, n_networks=1)
