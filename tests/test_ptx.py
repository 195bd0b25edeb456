"""Every CUDA kernel of the engine (explicit, gram, RNG benchmark) compiles to PTX for sm_90 and assembles to SASS
with no spills and a launchable register count (no GPU needed)."""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("numba.cuda") is None:  # pragma: no cover
    pytest.skip("numba-cuda is not installed (pip install 'sigprop[cuda]'): no PTX to compile",
                allow_module_level=True)

from sigprop.kernels.ptx import (  # noqa: E402
    REGISTER_FILE,
    SassInfo,
    assemble,
    compile_target,
    find_ptxas,
    launch_problems,
    main,
    parse_ptxas_report,
    ptx_targets,
)

TARGETS = ptx_targets()
PTXAS = find_ptxas()


def test_targets_cover_both_engines():
    names = {t[0] for t in TARGETS}
    assert "gram_cuda.k_gram_network" in names and "bench.k_rng_only" in names
    assert sum(n.startswith("explicit_cuda.") for n in names) >= 1
    assert all(isinstance(t[3], int) and 32 <= t[3] <= 1024 for t in TARGETS)


@pytest.mark.parametrize("name,fn,sig,threads", TARGETS, ids=[t[0] for t in TARGETS])
def test_kernel_compiles_to_ptx_and_assembles_for_sm90(name, fn, sig, threads):
    ptx = compile_target(fn, sig, cc=(9, 0))
    assert ".entry" in ptx and ".target sm_90" in ptx
    if PTXAS is None:  # pragma: no cover - the cuda extra ships ptxas
        pytest.skip("ptxas not installed")
    info = assemble(ptx, (9, 0), PTXAS)
    assert 0 < info.registers <= 255
    assert launch_problems(info, threads) == [], (name, info)


SAMPLE = """ptxas info    : 8 bytes gmem
ptxas info    : Compiling entry function 'k' for 'sm_90'
ptxas info    : Function properties for k
    16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
ptxas info    : Used 127 registers, used 1 barriers, 2048 bytes smem, 400 bytes cmem[0]
"""


def test_ptxas_report_is_parsed_and_judged():
    info = parse_ptxas_report(SAMPLE)
    assert info == SassInfo(registers=127, stack=16, spill_stores=8, spill_loads=12, shared=2048)
    assert any("spills" in p for p in launch_problems(info, 128))
    fine = SassInfo(registers=127, stack=0, spill_stores=0, spill_loads=0, shared=2048)
    assert launch_problems(fine, 128) == []  # 128 (allocated) x 128 = 16384 registers
    # 127 registers are allocated as 128 per thread: 512 threads need exactly the register file, 1024 do not fit
    assert launch_problems(fine, 512) == [] and 128 * 512 == REGISTER_FILE
    assert any("registers" in p for p in launch_problems(fine, 1024))
    assert any("shared" in p for p in launch_problems(SassInfo(32, 0, 0, 0, 64 * 1024), 128))
    with pytest.raises(ValueError, match="registers"):
        parse_ptxas_report("ptxas info : nothing useful")


def test_cli_rejects_bad_cc(capsys):
    with pytest.raises(SystemExit):
        main(["--cc", "nine"])
