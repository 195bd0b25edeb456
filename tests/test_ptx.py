"""Every CUDA kernel of the engine (explicit, gram, RNG benchmark) compiles to PTX for sm_90 (no GPU needed)."""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("numba.cuda") is None:  # pragma: no cover
    pytest.skip("numba-cuda is not installed (pip install 'sigprop[cuda]'): no PTX to compile",
                allow_module_level=True)

from sigprop.kernels.ptx import compile_target, main, ptx_targets  # noqa: E402

TARGETS = ptx_targets()


def test_targets_cover_both_engines():
    names = {n for n, _, _ in TARGETS}
    assert "gram_cuda.k_gram_network" in names and "bench.k_rng_only" in names
    assert sum(n.startswith("explicit_cuda.") for n in names) >= 1


@pytest.mark.parametrize("name,fn,sig", TARGETS, ids=[t[0] for t in TARGETS])
def test_kernel_compiles_to_ptx_for_sm90(name, fn, sig):
    ptx = compile_target(fn, sig, cc=(9, 0))
    assert ".entry" in ptx and ".target sm_90" in ptx


def test_cli_rejects_bad_cc(capsys):
    with pytest.raises(SystemExit):
        main(["--cc", "nine"])
