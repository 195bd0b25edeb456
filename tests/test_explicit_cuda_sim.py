"""CUDA explicit-weight kernels: PTX compilation for sm_90, and agreement with the CPU engine in numba's
CUDA simulator (run in a subprocess: NUMBA_ENABLE_CUDASIM must be set before numba.cuda is imported)."""
import os
import subprocess
import sys
import textwrap

import pytest

SIM_SCRIPT = textwrap.dedent("""
    import math
    import numpy as np
    from numba import config
    assert config.ENABLE_CUDASIM
    from sigprop.kernels.explicit_cpu import run_explicit
    from sigprop.kernels.explicit_cuda import run_explicit_cuda
    from sigprop.theory.activations import activation, custom_activation

    soft = custom_activation(lambda x: 0.5 * x + np.sin(x), scalar=lambda x: 0.5 * x + math.sin(x),
                             scalar_derivative=lambda x: 0.5 + math.cos(x))
    X = np.random.default_rng(3).standard_normal((2, 5))
    cases = [
        (activation('relu'), (4, 3, 5), dict(backward=True)),
        (activation('tanh'), (3, 4), dict(norm='ln_pre', residual=0.3, weights='rademacher')),
        (soft, (5, 3), dict(norm='rms_post', weights='uniform', backward=False)),
        (soft, (3, 4), dict(backward=True)),
        (activation('gelu'), (4, 2), dict(norm='ln_post', residual=0.5)),
        (activation('erf'), (3, 3), dict(norm='rms_pre')),
    ]
    for act, widths, kw in cases:
        a = run_explicit_cuda(X, widths, act, 1.5, 0.1, 2, 42, first_network=3, **kw)
        b = run_explicit(X, widths, act, 1.5, 0.1, 2, 42, first_network=3, **kw)
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14, err_msg=f'{act.label} {kw} {k}')

    # deep linear, one input: E[z^4] / (3 E[z^2]^2) = (1 + 2/n)^(l-1) (docs/derivations.md, 3.1); S = 400 networks
    # (the simulator is slow), tolerance |z| < 4 with a delta-method standard error, and the Gaussian value 1
    # must be excluded at layer 2 (z > 3)
    S, n, L = 400, 4, 3
    x = np.ones((1, 4))
    res = run_explicit_cuda(x, (n,) * L, activation('identity'), 1.0, 0.0, S, 77)
    m2, m4 = res['preact_m2'][:, :, 0], res['preact_m4'][:, :, 0]
    M2, M4 = m2.mean(0), m4.mean(0)
    R = M4 / (3 * M2 ** 2)
    se = (m4 / (3 * M2 ** 2) - 2 * M4 * m2 / (3 * M2 ** 3)).std(0, ddof=1) / np.sqrt(S)
    z = (R - (1 + 2 / n) ** np.arange(L)) / se
    assert np.all(np.abs(z) < 4), (R, z)
    assert (R[1] - 1) / se[1] > 3, (R, se)
    print('OK')
""")


@pytest.mark.cudasim
def test_cuda_kernels_match_cpu_in_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    res = subprocess.run([sys.executable, "-c", SIM_SCRIPT], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    assert "OK" in res.stdout


def test_rng_and_row_kernels_compile_to_ptx():
    """The kernels that inline the RNG and the shared row/column helpers compile for sm_90 (the full list,
    PTX_TARGETS, is compiled by ``python -m sigprop.kernels.ptx`` in CI)."""
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        pytest.skip("compile_ptx is not available in the simulator")
    from sigprop.kernels.explicit_cuda import PTX_TARGETS, cuda_kernels

    names = [name for name, *_ in cuda_kernels()]
    assert names == [name for name, *_ in PTX_TARGETS] and len(set(names)) == len(names) >= 8
    for name, fn, sig, _threads in PTX_TARGETS:
        if name in ("k_linear", "k_backprop", "k_gram"):
            ptx, _ = cuda.compile_ptx(fn, sig, cc=(9, 0))
            assert ".entry" in ptx and "sm_90" in ptx, name
