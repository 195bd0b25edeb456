"""No number changes: every configuration of tests/engine_fingerprints.py returns the recorded bits (SHA-256).

60 CPU configurations (simulate: numpy, explicit, gram; the rainbow covariance model: numpy, explicit, gram) and 22 on
the CUDA kernels in numba's simulator (a subprocess, since NUMBA_ENABLE_CUDASIM must be set before numba is imported).
A refactor of the engines must leave them all as they are."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_fingerprints as fp  # noqa: E402

STORED = json.loads(fp.DATA.read_text())


def test_the_list_is_long_enough():
    assert len(fp.cases()) >= 60 and len(fp.cases(cuda=True)) >= 20
    assert set(fp.cases()) | set(fp.cases(cuda=True)) == set(STORED)


@pytest.mark.parametrize("name", sorted(fp.cases()))
def test_cpu_fingerprint(name):
    assert fp.fingerprint(fp._arrays(name, fp.cases()[name])) == STORED[name]


@pytest.mark.cudasim
def test_cuda_simulator_fingerprints():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    out = subprocess.run([sys.executable, str(Path(fp.__file__)), "--cuda"], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    got = json.loads(out)
    changed = sorted(k for k in got if got[k] != STORED[k])
    assert len(got) == len(fp.cases(cuda=True)) and not changed, changed
