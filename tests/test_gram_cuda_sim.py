"""The CUDA gram kernel in numba's simulator (tiny sizes): same numbers as the CPU kernel, exact moments.

NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is imported, so the CUDA side runs in a subprocess
that writes its results to an .npz; the CPU side runs here."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from sigprop.kernels.gram_cpu import run_gram_cpu
from sigprop.theory.activations import activation

pytestmark = pytest.mark.cudasim

CASES = [
    dict(X=np.random.default_rng(0).normal(size=(3, 4)).tolist(), widths=[5, 4, 6], act="tanh", C_W=1.2, C_b=0.1,
         S=3, seed=7, residual=0.3, norm="ln_pre", first=0),
    dict(X=np.random.default_rng(1).normal(size=(4, 3)).tolist(), widths=[3, 2], act="relu", C_W=2.0, C_b=0.0,
         S=2, seed=8, residual=0.0, norm="rms_post", first=5),  # P > width: rank-deficient covariances
    dict(X=[[1.0, 0.5]], widths=[4, 4, 4], act="identity", C_W=1.0, C_b=0.0, S=80, seed=9, residual=0.0,
         norm=None, first=0),
    # widths >= 8 and not multiples of 8: the lane sums' main loop and their partial last block
    dict(X=np.random.default_rng(3).normal(size=(5, 6)).tolist(), widths=[13, 17, 8], act="relu", C_W=2.0, C_b=0.05,
         S=2, seed=10, residual=0.2, norm="ln_post", first=3),
]

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from sigprop.kernels.gram_cuda import run_gram_cuda
    from sigprop.theory.activations import activation
    cases = json.loads(sys.argv[1])
    out = {}
    for k, c in enumerate(cases):
        r = run_gram_cuda(np.array(c["X"]), c["widths"], activation(c["act"]), c["C_W"], c["C_b"], c["S"], c["seed"],
                          residual=c["residual"], norm=c["norm"], first_network=c["first"])
        for name, v in r.items():
            out[f"{k}/{name}"] = v
    from sigprop.kernels import simulate  # the public API on backend='cuda' (memory plan, dispatch)
    c = cases[0]
    r = simulate(np.array(c["X"]), depth=3, width=c["widths"], activation=c["act"], C_W=c["C_W"], C_b=c["C_b"],
                 n_networks=c["S"], seed=c["seed"], residual=c["residual"], norm=c["norm"], backend="cuda")
    out["api/postact_gram"] = r.postact_gram
    # the RNG-only bound kernel of `sigprop bench --backend cuda`, tiny launch
    from sigprop.kernels.bench import rng_only_cuda
    out["bench/rng_rate"] = np.array(rng_only_cuda(64, threads=4, blocks_per_sm=1))
    np.savez(sys.argv[2], **out)
""")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path = tmp_path_factory.mktemp("cudasim") / "out.npz"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASES), str(path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("k", range(len(CASES)))
def test_cuda_gram_equals_cpu_gram(simulated, k):
    c = CASES[k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cpu = run_gram_cpu(np.array(c["X"]), c["widths"], activation(c["act"]), c["C_W"], c["C_b"], c["S"],
                           c["seed"], residual=c["residual"], norm=c["norm"], first_network=c["first"])
    # Bit for bit on every CPU: both sides run the same + - * / sqrt in the same order (gram_device.lane_sum's
    # 8 lanes, the CPU's vector lanes; numba emits no FMA without fastmath, the simulator runs Python floats),
    # rng's own log/sincos polynomials, and tanh from the same C library (numba calls libm's tanh; it would
    # vectorise it with Intel's SVML only if icc_rt were installed, which this project does not depend on).
    # bit for bit, NaN in the same places (case 1: a dead 2-neuron ReLU layer under RMSNorm)
    for name, v in cpu.items():
        got = simulated[f"{k}/{name}"]
        same = (got.view(np.int64) == v.view(np.int64)) | (np.isnan(got) & np.isnan(v))
        assert same.all(), (name, np.abs(got - v)[~same].max())
    post = cpu["postact_gram"]
    if k == 1:  # the NaN path (status, fill) is exercised, and so is the finite one
        assert np.isnan(post).any() and np.isfinite(post).any()
    else:
        assert np.all(np.isfinite(post))


def test_simulate_api_on_cuda_backend(simulated):
    c = CASES[0]
    cpu = run_gram_cpu(np.array(c["X"]), c["widths"], activation(c["act"]), c["C_W"], c["C_b"], c["S"], c["seed"],
                       residual=c["residual"], norm=c["norm"])
    np.testing.assert_allclose(simulated["api/postact_gram"], cpu["postact_gram"], rtol=1e-12, atol=1e-14)


def test_cuda_gram_deep_linear_moments(simulated):
    """E[z^2] = C_W^l |x|^2/n_0 and E[z^4] = 3 prod(1 + 2/n) E[z^2]^2 (n = 4), within 4 SE, from the GPU kernel."""
    m2 = simulated["2/preact_m2"][:, :, 0]
    m4 = simulated["2/preact_m4"][:, :, 0]
    S = m2.shape[0]
    G2 = 0.625
    z2 = (m2.mean(0) - G2) / (m2.std(0, ddof=1) / math.sqrt(S))
    assert np.all(np.abs(z2) < 4), z2
    theory = np.array([3 * (1 + 2 / 4) ** l * G2**2 for l in range(3)])
    z4 = (m4.mean(0) - theory) / (m4.std(0, ddof=1) / math.sqrt(S))
    assert np.all(np.abs(z4) < 4), z4



def test_rng_only_benchmark_kernel_runs(simulated):
    rate = float(simulated["bench/rng_rate"])
    assert rate > 0 and math.isfinite(rate)
