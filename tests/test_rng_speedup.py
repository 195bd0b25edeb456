"""The generator's numbers do not depend on the CPU target numba compiles for, nor on the vector width it picks.

docs/benchmarks.md ("The generator on Intel Skylake-AVX512") traces the generator's slower speed on Skylake-AVX512
to LLVM's choice of 256-bit vectors for that CPU; the generator now marks the function it is compiled into with
``simd.prefer_wide_vectors`` (512-bit loops wherever AVX-512 exists), unless the process asks for 256 bits with
``NUMBA_CPU_FEATURES=+prefer-256-bit``.  That is only a speed setting if the numbers stay the same: every loop of
``rng.draw_pairs_into`` does, lane by lane, the scalar IEEE operations (no fast-math, no contraction into FMA,
no reassociation), so 2, 4 or 8 lanes give the same bits.  These tests compile the generator in fresh processes
for other targets (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``), check from the machine code that the vector
width really differs (zmm for skylake-avx512 with or without ``-prefer-256-bit``, ymm only with
``+prefer-256-bit``, no zmm for haswell), and compare the draws of all three kinds bit for bit with this
process's.  A target whose instructions this CPU lacks is skipped (its code could not run here).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from llvmlite import binding as llb

from sigprop.kernels import rng

# (seed, stream, network, layer, rows, cols): extreme coordinates, odd widths (a scalar tail after the vector
# loops), and a width below one vector.
COORDS = [(0, 0, 0, 1, 9, 515), (2**64 - 1, 255, 2**32 - 1, 2**24 - 1, 5, 1031), (12345, 4, 77, 3, 17, 7)]

# target -> (NUMBA_CPU_NAME, NUMBA_CPU_FEATURES, host features it needs, vector registers expected).  With
# NUMBA_CPU_NAME alone numba would add this host's feature list; "" gives the named CPU's own instruction set.
TARGETS = {
    "skylake-avx512": ("skylake-avx512", "", ("avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"), "zmm"),
    "skylake-avx512, -prefer-256-bit": ("skylake-avx512", "-prefer-256-bit",
                                        ("avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"), "zmm"),
    "skylake-avx512, +prefer-256-bit": ("skylake-avx512", "+prefer-256-bit",
                                        ("avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"), "ymm"),
    "haswell": ("haswell", "", ("avx2", "fma", "bmi", "bmi2", "lzcnt", "movbe", "f16c"), "ymm"),
}

CHILD = textwrap.dedent("""
    import json, sys
    import numba, numpy as np
    from numba import types
    from sigprop.kernels import rng

    @numba.njit(error_model="numpy")
    def row(seed, count, E, O):
        rng.draw_pairs_into(0, seed, 0, 5, 1, 3, 0, 0, 1, count, E, O)

    vec = types.Array(types.float64, 1, "C")
    sig = (types.uint64, types.int64, vec, vec)
    row.compile(sig)
    asm = row.inspect_asm(sig)
    coords, out = json.loads(sys.argv[1]), sys.argv[2]
    np.save(out, np.concatenate([rng.draws(kind, *c).ravel() for kind in (0, 1, 2) for c in coords]))
    cfg = numba.config
    print(json.dumps({"cpu": cfg.CPU_NAME, "features": cfg.CPU_FEATURES,
                      "zmm": asm.count("zmm"), "ymm": asm.count("ymm")}))
""")


def _host_draws() -> np.ndarray:
    return np.concatenate([rng.draws(kind, *c).ravel() for kind in (0, 1, 2) for c in COORDS])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_draws_are_bit_identical_across_compile_targets(target, tmp_path):
    cpu, features, needs, register = TARGETS[target]
    host = llb.get_host_cpu_features()
    missing = [f for f in needs if not host.get(f, False)]
    if missing:
        pytest.skip(f"this CPU lacks {missing}: code compiled for {target} cannot run here")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               NUMBA_NUM_THREADS="1")
    out = tmp_path / "draws.npy"
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(COORDS), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (info["cpu"], info["features"]) == (cpu, features)
    if register == "zmm":
        assert info["zmm"] > 0, info
    else:
        assert info["zmm"] == 0 and info["ymm"] > 0, info
    theirs = np.load(out)
    ours = _host_draws()
    assert theirs.shape == ours.shape
    np.testing.assert_array_equal(theirs.view(np.uint64), ours.view(np.uint64))
