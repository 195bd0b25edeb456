"""A fixed list of Monte-Carlo configurations and the SHA-256 of every number each one returns.

The list covers every engine behind the two simulation entries (``simulate``: numpy, explicit, gram; the rainbow
covariance model: numpy, explicit, gram), weight distributions, residual and normalisation variants, the backward
statistics, ragged widths, several activations, and the CUDA kernels in numba's simulator.  Moving code between
modules must leave every hash as it is: that is the meaning of "no number changes".

Run as a script to print the table (``python tests/engine_fingerprints.py``), or with ``--write`` to record it in
``tests/data/engine_fingerprints.json`` (only when a change of numbers is intended, and said so in the commit).
``--cuda`` computes the CUDA-simulator part (it needs ``NUMBA_ENABLE_CUDASIM=1`` before numba is imported, so the
test runs it in a subprocess).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "engine_fingerprints.json"

_RNG = np.random.default_rng(20261206)
X3 = _RNG.normal(size=(3, 5)).round(6)
X4 = _RNG.normal(size=(4, 7)).round(6)
X1 = np.array([[1.0, -0.5, 0.25]])
ANCHORS = _RNG.normal(size=(2, 5)).round(6)
_B = _RNG.normal(size=(5, 5)).round(3)
C1_MATRIX = _B @ _B.T / 5


def _simulate_cases() -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for act in ("relu", "tanh", "erf", "gelu", "swish"):
        for method in ("gram", "explicit", "numpy"):
            cases[f"sim/{method}/{act}"] = dict(X="X3", depth=3, width=6, activation=act, C_W=1.7, C_b=0.1,
                                                n_networks=3, method=method, seed=11)
    for method in ("explicit", "numpy"):
        for weights in ("uniform", "rademacher"):
            cases[f"sim/{method}/{weights}"] = dict(X="X4", depth=2, width=[5, 9], activation="tanh", C_W=1.3,
                                                    C_b=0.05, n_networks=2, method=method, weights=weights, seed=3)
        cases[f"sim/{method}/backward"] = dict(X="X3", depth=3, width=[4, 7, 5], activation="tanh", C_W=1.5, C_b=0.2,
                                               n_networks=2, method=method, backward=True, seed=5)
        cases[f"sim/{method}/backward-relu"] = dict(X="X4", depth=2, width=8, activation="relu", C_W=2.0,
                                                    n_networks=2, method=method, backward=True, seed=6)
    for method in ("gram", "explicit", "numpy"):
        for norm in ("ln_pre", "ln_post", "rms_post"):
            cases[f"sim/{method}/{norm}"] = dict(X="X3", depth=3, width=7, activation="tanh", C_W=1.2, C_b=0.1,
                                                 n_networks=2, method=method, residual=0.3, norm=norm, seed=9)
        cases[f"sim/{method}/residual"] = dict(X="X4", depth=4, width=[6, 3, 9, 5], activation="relu", C_W=2.0,
                                               C_b=0.0, n_networks=3, method=method, residual=0.5, seed=2)
        cases[f"sim/{method}/one-input"] = dict(X="X1", depth=5, width=12, activation="erf", C_W=1.9, C_b=0.3,
                                                n_networks=4, method=method, seed=4)
        cases[f"sim/{method}/wide-P"] = dict(X="X4", depth=2, width=3, activation="relu", C_W=2.0, C_b=0.1,
                                             n_networks=2, method=method, seed=12)  # P > width
    cases["sim/gram/lanes"] = dict(X="X4", depth=3, width=[13, 17, 8], activation="relu", C_W=2.0, C_b=0.05,
                                   n_networks=2, method="gram", seed=10)
    return cases


def _rainbow_cases() -> dict[str, dict]:
    cases: dict[str, dict] = {}
    for act in ("relu", "tanh", "gelu"):
        for method in ("numpy", "explicit", "gram"):
            cases[f"rainbow/{method}/{act}"] = dict(act=act, X="X3", C1=1.5, a=[1.2, 0.8], b=[[0.3, 0.1], [0.0, 0.4]],
                                                    anchors="ANCHORS", widths=[6, 5, 7], n_networks=2, seed=8,
                                                    method=method, C_b=0.05)
    for method in ("numpy", "explicit", "gram"):
        cases[f"rainbow/{method}/white"] = dict(act="erf", X="X3", C1=2.0, a=[1.9, 1.9], widths=[8, 8, 8],
                                                n_networks=3, seed=1, method=method)
        cases[f"rainbow/{method}/network0"] = dict(act="relu", X="X3", C1=2.0, a=[2.0], b=[[1.0, 0.5]],
                                                   anchors="ANCHORS", widths=[9, 4], n_networks=2, seed=2,
                                                   network0=5, method=method)
        cases[f"rainbow/{method}/C1-matrix"] = dict(act="tanh", X="X3", C1="C1_MATRIX", a=[1.1, 1.4, 0.9],
                                                    b=[[0.2], [0.5], [0.1]], anchors="ANCHORS1", widths=[5, 6, 4, 7],
                                                    n_networks=2, seed=21, method=method, C_b=0.2)
    return cases


def cases(cuda: bool = False) -> dict[str, dict]:
    """The configurations, by name (CPU, or the CUDA subset: every compiled engine at a few settings)."""
    all_cases = {**_simulate_cases(), **_rainbow_cases()}
    if not cuda:
        return all_cases
    keep = [k for k in all_cases if ("/numpy/" not in k) and (k.endswith(("relu", "tanh", "backward", "ln_pre",
                                                                           "residual", "white", "network0", "C1-matrix",
                                                                           "uniform", "lanes")))]
    return {f"cuda/{k}": {**all_cases[k], "backend": "cuda"} for k in keep}


def _arrays(name: str, case: dict) -> dict[str, np.ndarray]:
    data = {"X1": X1, "X3": X3, "X4": X4, "ANCHORS": ANCHORS, "ANCHORS1": ANCHORS[:1], "C1_MATRIX": C1_MATRIX}
    kw = {k: (data[v] if isinstance(v, str) and v in data else v) for k, v in case.items()}
    from sigprop.kernels import RainbowCovariance, simulate
    if name.removeprefix("cuda/").startswith("rainbow/"):  # the rainbow covariance model, through simulate
        cov = RainbowCovariance(kw.pop("C1"), kw.pop("a"), kw.pop("b", None), kw.pop("anchors", None))
        widths = kw.pop("widths")
        kw = dict(kw, activation=kw.pop("act"), depth=len(widths), width=widths, covariance=cov,
                  first_network=kw.pop("network0", 0))
    X = kw.pop("X")
    r = simulate(X, **kw)
    out = {}
    for field in ("preact_gram", "postact_gram", "preact_m2", "preact_m4", "backward_gram", "tangent_gram"):
        v = getattr(r, field)
        if v is not None:
            out[field] = v
    return out


def fingerprint(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the named float64 arrays (names, shapes and bytes, in name order)."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k], dtype=np.float64)
        h.update(k.encode())
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def compute(cuda: bool = False) -> dict[str, str]:
    """``{name: hash}`` for every configuration of :func:`cases`."""
    return {name: fingerprint(_arrays(name, case)) for name, case in cases(cuda).items()}


if __name__ == "__main__":
    cuda = "--cuda" in sys.argv
    got = compute(cuda)
    if "--write" in sys.argv:
        stored = json.loads(DATA.read_text()) if DATA.exists() else {}
        stored.update(got)
        DATA.parent.mkdir(exist_ok=True)
        DATA.write_text(json.dumps(dict(sorted(stored.items())), indent=1) + "\n")
    print(json.dumps(got, indent=1))
