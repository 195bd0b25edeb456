"""A custom activation's compiled kernels never stand in for the built-ins'.

The defect: the gram method's custom kernels were built by rebinding the globals of the built-in kernel's
``__code__``; numba names machine code by qualified name and a per-process counter, so in a fresh process that
ran a custom activation first, later built-in runs were linked to the custom activation's code (relu and tanh
both gave the custom's 1.507).  The test therefore runs in fresh processes: one runs every built-in alone, the
other runs each kind of custom activation first and every built-in after each; the built-ins' numbers must be
bit-identical (same seed, same process-independent generator).  Both methods, the CPU backend and the CUDA
backend in numba's simulator.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, math, sys
    import numpy as np
    from sigprop.kernels import simulate
    from sigprop.theory.activations import ACTIVATION_NAMES, custom_activation

    backend, customs_first = sys.argv[1], sys.argv[2] == "1"
    # every kind of custom activation: a scalar only (a kink declared), a scalar with its derivative, a claimed
    # parity; each with the explicit method's backward pass where it has a derivative
    customs = [
        custom_activation(lambda x: np.where(x > 0, x * x, 0.0), name="relu_sq", kinks=(0.0,),
                          scalar=lambda x: x * x if x > 0.0 else 0.0),
        custom_activation(lambda x: 0.5 * x + np.sin(x), name="half_x_sin", derivative=lambda x: 0.5 + np.cos(x),
                          scalar=lambda x: 0.5 * x + math.sin(x), scalar_derivative=lambda x: 0.5 + math.cos(x),
                          parity="odd"),
        custom_activation(lambda x: np.cos(2.0 * x), name="cos2x", scalar=lambda x: math.cos(2.0 * x),
                          parity="even"),
    ]
    X = np.array([[1.0, -0.5, 0.25, 2.0], [0.3, 1.1, -0.7, 0.0]])
    kw = dict(depth=2, width=4, C_W=1.3, C_b=0.1, n_networks=2, seed=11, backend=backend)
    names = list(ACTIVATION_NAMES)

    def run(act, method):
        r = simulate(X, activation=act, method=method, **kw)
        return [float(v) for v in r.postact_gram.ravel()] + [float(v) for v in r.preact_m4.ravel()]

    out = []
    rounds = customs if customs_first else [None]
    for c in rounds:
        if c is not None:
            for method in ("gram", "explicit"):
                run(c, method)
        out.append({f"{n}/{m}": run(n, m) for n in names for m in ("gram", "explicit")})
    print(json.dumps(out))
""")


def _run(backend: str, customs_first: bool, env: dict) -> list[dict]:
    res = subprocess.run([sys.executable, "-c", SCRIPT, backend, "1" if customs_first else "0"], env=env,
                         capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["cpu", pytest.param("cuda", marks=pytest.mark.cudasim)])
def test_builtins_after_custom_activations_are_unchanged(backend):
    env = dict(os.environ)
    if backend == "cuda":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    alone = _run(backend, False, env)[0]
    after = _run(backend, True, env)
    assert len(after) == 3 and len(alone) >= 2 * 17
    for k, custom_round in enumerate(after):
        wrong = [key for key in alone if custom_round[key] != alone[key]]
        assert not wrong, f"after custom activation #{k}, these built-in runs changed: {wrong}"
