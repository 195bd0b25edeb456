"""`sigprop theory`: text and JSON output, exact key set, error handling."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sigprop.theory import KernelMap, hermite_coefficients
from sigprop.validation.cli import main

KEYS = {"C", "kappa0", "kappa_prime0", "kappa_prime1", "case", "rho_star", "rate", "hermite", "kappa"}


def _json(capsys, *argv):
    assert main(["theory", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_json_relu(capsys):
    obj = _json(capsys, "relu", "--rho", "0.5", "--rho", "-1", "--rho", "1e-1", "--kmax", "4")
    assert set(obj) == KEYS
    assert obj["C"] == pytest.approx(math.sqrt(0.5)) and obj["case"] == 3 and obj["rho_star"] == 1.0
    assert obj["kappa_prime1"] == 1.0 and obj["kappa0"] == pytest.approx(1 / math.pi)
    assert (obj["hermite"] == pytest.approx(list(hermite_coefficients("relu", 4)), abs=1e-15)
            and len(obj["hermite"]) == 5)
    assert set(obj["kappa"]) == {"0.5", "-1", "1e-1"}  # keys are the strings as given
    assert obj["kappa"]["1e-1"] == pytest.approx(KernelMap("relu")(0.1), abs=1e-15)


def test_json_params_step_and_identity(capsys):
    obj = _json(capsys, "leaky_relu", "--param", "slope=-0.5", "--kmax", "0")
    assert obj["case"] == 3 and len(obj["hermite"]) == 1
    obj = _json(capsys, "step")
    assert obj["kappa_prime1"] == "inf" and obj["case"] == 4 and 0 < obj["rho_star"] < 1
    obj = _json(capsys, "identity")
    assert obj["case"] is None and obj["rho_star"] is None and obj["rate"] is None
    assert len(obj["hermite"]) == 11


def test_text_output(capsys):
    assert main(["theory", "gelu", "--rho", "0.25"]) == 0
    out = capsys.readouterr().out
    for word in ("C ", "kappa0", "kappa_prime0", "kappa_prime1", "case          4", "rho_star", "rate", "c_10",
                 "kappa(0.25)"):
        assert word in out


@pytest.mark.parametrize("argv", [["nosuch"], ["relu", "--rho", "1.5"], ["relu", "--rho", "nan"],
                                  ["relu", "--rho", "x"], ["relu", "--kmax", "-1"], ["relu", "--param", "slope=0.1"],
                                  ["leaky_relu", "--param", "slope"], ["leaky_relu", "--param", "slope=abc"],
                                  ["elu", "--param", "alpha=-1"]])
def test_bad_input_exits_nonzero(capsys, argv):
    assert main(["theory", *argv]) != 0
    err = capsys.readouterr().err
    assert "error" in err


def test_console_script_subprocess():
    exe = Path(sys.executable).with_name("sigprop")
    res = subprocess.run([str(exe), "theory", "tanh", "--json", "--rho", "0.9"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    obj = json.loads(res.stdout)
    assert (set(obj) == KEYS and obj["case"] == 1
            and obj["kappa"]["0.9"] == pytest.approx(KernelMap("tanh")(0.9), abs=1e-14))
    res = subprocess.run([str(exe), "theory", "relu6"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "unknown name" in res.stderr
