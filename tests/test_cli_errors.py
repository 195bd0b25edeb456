"""One-line errors, exit status 2, before any work: comma lists, flag spellings, output and input paths,
the planner's MemoryError.

Unwritable places are made with a path under a regular file (``afile/out``) and with ``/proc``: as root,
permission bits do not stop writes, so a read-only folder would not test anything.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np
import pytest

from sigprop.validation.cli import checks as cli_checks
from sigprop.validation.cli import main
from sigprop.validation.cli.correlators import parse_widths

sim_cli = importlib.import_module("sigprop.validation.cli.simulate")
sim_mod = importlib.import_module("sigprop.kernels.simulate")


def one_error_line(capsys, cmd: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith(f"sigprop {cmd}: error: "), err
    return err


# --- comma-separated lists: no empty field ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["8,,8", "8,", ",8", "", " ", "8, ,8"])
def test_parse_widths_rejects_empty_fields(text):
    with pytest.raises(ValueError, match=r"--widths: field \d+ is empty"):
        parse_widths(text)


@pytest.mark.parametrize("text", ["8x0", "8x-1", "0", "-3", "8x", "x3", "8x2x3", "a"])
def test_parse_widths_rejects_bad_fields(text):
    with pytest.raises(ValueError, match="--widths: field"):
        parse_widths(text)


def test_parse_widths_good():
    assert parse_widths("8,8,16") == [8, 8, 16]
    assert parse_widths(" 32x3 ") == [32, 32, 32]
    assert parse_widths("8x2, 16") == [8, 8, 16]


def test_cli_empty_width_field_is_an_error_not_a_shorter_network(capsys):
    assert main(["correlators", "deep-linear", "--widths", "8,,8"]) == 2
    assert "field 2 is empty in '8,,8'" in one_error_line(capsys, "correlators")


@pytest.mark.parametrize("text", ["10,,20", "10,", ",10"])
def test_equilibrium_depths_reject_empty_fields(capsys, text):
    assert main(["equilibrium", "--depths", text]) == 2
    assert "is empty" in one_error_line(capsys, "equilibrium")


# --- one flag spelling: --C-W / --C-b everywhere ----------------------------------------------------------------


def test_correlators_take_the_dash_spelling(capsys):
    assert main(["correlators", "deep-linear", "--m", "2", "--widths", "4x3", "--C-W", "1.5"]) == 0
    assert "C_W=1.5" in capsys.readouterr().out
    assert main(["correlators", "vertex", "--activation", "relu", "--widths", "8x2", "--C-W", "2", "--C-b", "0.1"]) == 0
    assert "C_b=0.1" in capsys.readouterr().out


@pytest.mark.parametrize("argv, new", [
    (["deep-linear", "--widths", "4", "--C_W", "1"], "--C-W"),
    (["vertex", "--activation", "relu", "--widths", "4", "--C_W", "2"], "--C-W"),
    (["multi", "--activation", "relu", "--widths", "4", "--C-W", "2", "--C_b", "0.1"], "--C-b"),
])
def test_old_underscore_spelling_names_the_new_one(capsys, argv, new):
    with pytest.raises(SystemExit) as exc:
        main(["correlators", *argv])
    assert exc.value.code == 2
    assert f"is now spelled {new}" in capsys.readouterr().err


def test_help_shows_only_the_dash_spelling(capsys):
    with pytest.raises(SystemExit):
        main(["correlators", "vertex", "--help"])
    out = capsys.readouterr().out
    assert "--C-W" in out and "--C-b" in out and "--C_W" not in out and "--C_b" not in out


# --- output and input paths, checked before any work -----------------------------------------------------------


@pytest.fixture
def afile(tmp_path) -> Path:
    p = tmp_path / "afile"
    p.write_text("not a folder")
    return p


def test_check_output_path_file(tmp_path, afile):
    ok = tmp_path / "x.npz"
    assert cli_checks.check_output_path(str(ok), option="--out", kind="file") == ok
    assert cli_checks.check_output_path(str(afile), option="--out", kind="file") == afile  # overwritten later
    cases = {"": "must name a file", str(tmp_path): "is an existing folder",
             str(tmp_path / "missing" / "x.npz"): "does not exist", str(afile / "x.npz"): "is a file, not a folder",
             str(afile / "deeper" / "x.npz"): "is a file, not a folder"}
    for path, msg in cases.items():
        with pytest.raises(ValueError, match=f"--out.*{msg}"):
            cli_checks.check_output_path(path, option="--out", kind="file")
    assert list(tmp_path.iterdir()) == [afile], "the write probe must leave nothing behind"


def test_check_output_path_dir(tmp_path, afile):
    assert cli_checks.check_output_path(str(tmp_path / "new"), option="--out", kind="dir") == tmp_path / "new"
    assert cli_checks.check_output_path(str(tmp_path), option="--out", kind="dir") == tmp_path
    cases = {"": "must name a folder", str(afile): "is an existing file, not a folder",
             str(afile / "rep"): "is a file, not a folder", str(tmp_path / "missing" / "rep"): "does not exist"}
    for path, msg in cases.items():
        with pytest.raises(ValueError, match=f"--out.*{msg}"):
            cli_checks.check_output_path(path, option="--out", kind="dir")
    with pytest.raises(ValueError, match="kind must be"):
        cli_checks.check_output_path(str(tmp_path), option="--out", kind="folder")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_place_found_by_trying_not_by_permission_bits():
    """Creating a file in /proc fails even for root, for whom os.access says yes."""
    for kind in ("file", "dir"):
        with pytest.raises(ValueError, match="cannot write to '/proc/sigprop-out'"):
            cli_checks.check_output_path("/proc/sigprop-out", option="--out", kind=kind)


def test_check_input_file(tmp_path, afile):
    assert cli_checks.check_input_file(str(afile), option="--X") == afile
    for path, msg in {"": "must name a file", str(tmp_path / "missing.npy"): "does not exist",
                      str(tmp_path): "is a folder"}.items():
        with pytest.raises(ValueError, match=f"--X.*{msg}"):
            cli_checks.check_input_file(path, option="--X")


@pytest.fixture
def no_simulation(monkeypatch):
    monkeypatch.setattr(sim_cli, "simulate", lambda *a, **k: pytest.fail("the simulation started"))


SIM = ["simulate", "--depth", "2", "--width", "4", "--C-W", "1", "--networks", "2"]


def test_simulate_bad_out_is_refused_before_simulating(tmp_path, afile, no_simulation, capsys):
    for out, msg in [(str(tmp_path / "missing" / "x.npz"), "does not exist"),
                     (str(afile / "x.npz"), "is a file, not a folder"),
                     ("", "must name a file"), (str(tmp_path), "is an existing folder"),
                     (str(tmp_path / "nodir") + "/", "does not exist")]:
        assert main([*SIM, "--out", out]) == 2, out
        assert msg in one_error_line(capsys, "simulate")


def test_simulate_out_without_suffix_checks_the_npz_numpy_writes(tmp_path, no_simulation, capsys):
    (tmp_path / "res.npz").mkdir()  # np.savez would write res.npz for --out res
    assert main([*SIM, "--out", str(tmp_path / "res")]) == 2
    assert "res.npz' is an existing folder" in one_error_line(capsys, "simulate")


def test_simulate_missing_or_unreadable_X_is_refused_before_simulating(tmp_path, afile, no_simulation, capsys):
    out = str(tmp_path / "x.npz")
    assert main([*SIM, "--X", str(tmp_path / "missing.npy"), "--out", out]) == 2
    assert "--X: file" in one_error_line(capsys, "simulate")
    assert main([*SIM, "--X", str(afile), "--out", out]) == 2
    assert "--X: cannot read" in one_error_line(capsys, "simulate")


def test_simulate_good_paths_still_run(tmp_path, capsys):
    X = tmp_path / "X.npy"
    np.save(X, np.eye(2, 5))
    assert main([*SIM, "--X", str(X), "--out", str(tmp_path / "sim")]) == 0
    assert (tmp_path / "sim.npz").is_file()


def test_bench_bad_out_is_refused_before_benchmarks(tmp_path, afile, monkeypatch, capsys):
    from sigprop.validation.cli import bench

    monkeypatch.setattr(bench, "collect", lambda *a, **k: pytest.fail("the benchmarks started"))
    for out in (str(afile / "b.json"), "", str(tmp_path / "missing" / "b.json"), str(tmp_path)):
        assert main(["bench", "--out", out]) == 2, out
        one_error_line(capsys, "bench")


def test_validate_bad_out_is_refused_before_work(tmp_path, afile, monkeypatch, capsys):
    from sigprop.validation import runner

    monkeypatch.setattr(runner, "run_suite", lambda *a, **k: pytest.fail("the suite started"))
    for out, msg in [(str(afile), "is an existing file"), (str(afile / "rep"), "is a file, not a folder"),
                     (str(tmp_path / "missing" / "rep"), "does not exist"), ("", "must name a folder")]:
        assert main(["validate", "--profile", "smoke", "--out", out]) == 2, out
        assert msg in one_error_line(capsys, "validate")


# --- MemoryError from the planner: one line, exit 2, naming the width when the width is the cause ------------------


def test_planner_names_the_width_when_the_width_is_the_cause():
    with pytest.raises(MemoryError, match=r"use a smaller width \(largest width 1000000000\)"):
        sim_mod.plan_batches(2, 64, (8, 1_000_000_000), 2, "gram", False, "cpu")
    with pytest.raises(MemoryError, match=r"use a smaller n_0 \(n_0 = 1000000000\)"):
        sim_mod.plan_batches(2, 1_000_000_000, (8, 8), 2, "gram", False, "cpu")
    with pytest.raises(MemoryError, match="use fewer networks, layers or inputs") as exc:
        sim_mod.plan_batches(8, 64, (8,) * 2000, 100_000_000, "gram", False, "cpu")
    assert "width" not in str(exc.value)


def test_gpu_planner_names_the_width_when_the_width_is_the_cause(monkeypatch):
    monkeypatch.setattr("sigprop.kernels.backend.gpu_memory_available", lambda: 2**20)  # 1 MiB free
    with pytest.raises(MemoryError, match=r"GPU memory.*use a smaller width \(largest width 100000\)"):
        sim_mod.plan_batches(2, 64, (8, 100_000), 2, "gram", False, "cuda")
    with pytest.raises(MemoryError, match="GPU memory.*use fewer networks, layers or inputs"):
        sim_mod.plan_batches(64, 64, (8,) * 200, 2, "gram", False, "cuda")


def test_cli_prints_the_planner_memory_error_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sim_mod, "_run_batch", lambda *a, **k: pytest.fail("the simulation started"))
    assert main(["simulate", "--depth", "2", "--width", "1000000000", "--C-W", "1", "--networks", "2",
                 "--out", str(tmp_path / "x.npz")]) == 2
    err = one_error_line(capsys, "simulate")
    assert "use a smaller width" in err and not os.path.exists(tmp_path / "x.npz")


def test_cli_prints_any_memory_error_in_one_line(monkeypatch, tmp_path, capsys):
    def raise_memory(*a, **k):
        raise MemoryError("simulate: too big\n  for this machine")

    monkeypatch.setattr(sim_cli, "simulate", raise_memory)
    assert main([*SIM, "--out", str(tmp_path / "x.npz")]) == 2
    assert one_error_line(capsys, "simulate").endswith("simulate: too big for this machine")


def _fake_command(monkeypatch, exc: BaseException) -> None:
    """A `sigprop fake` subcommand whose run() raises ``exc``."""
    import sys
    import types

    from sigprop.validation import cli

    mod = types.ModuleType("sigprop_fake_cmd")
    mod.add_arguments = lambda parser: None

    def run(args):
        raise exc

    mod.run = run
    monkeypatch.setitem(sys.modules, "sigprop_fake_cmd", mod)
    monkeypatch.setitem(cli.SUBCOMMANDS, "fake", ("sigprop_fake_cmd", "raises"))


def test_input_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    """Only sigprop's input validation (InputError) becomes 'error: ...' with exit 2; a TypeError or ValueError
    from anywhere else is a bug and propagates (the dispatcher used to turn every TypeError into exit 2)."""
    from sigprop.theory.errors import InputError, InputTypeError
    from sigprop.validation.cli import main

    for exc in (InputError("width must be positive,\n  got 0"), InputTypeError("depth must be an int")):
        _fake_command(monkeypatch, exc)
        assert main(["fake"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("sigprop fake: error: ")
    for exc in (TypeError("'NoneType' object is not subscriptable"), ValueError("operands could not be broadcast")):
        _fake_command(monkeypatch, exc)
        with pytest.raises(type(exc)):
            main(["fake"])


def test_validation_errors_are_input_errors():
    """Public entries raise InputError (still a ValueError/TypeError for callers that catch those)."""
    import numpy as np

    from sigprop.kernels import simulate
    from sigprop.theory.errors import InputError, InputTypeError
    from sigprop.theory.kernel_map import KernelMap

    with pytest.raises(InputError, match="width"):
        simulate(np.ones((1, 2)), depth=2, width=0, activation="relu", C_W=2.0, n_networks=1)
    with pytest.raises(InputTypeError, match="activation"):
        KernelMap(3)
    assert issubclass(InputTypeError, TypeError) and issubclass(InputError, ValueError)
