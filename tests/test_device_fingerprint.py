"""numba's disk cache and inlined device code: every cached CPU kernel is named with one fingerprint of all inlined
device sources (kernels.device_activations.DEVICE_MODULES), so editing any of them compiles the kernels afresh
instead of serving stale machine code (numba only notices edits of a kernel's own defining file)."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core.dispatcher import Dispatcher

from sigprop.kernels.device_activations import (
    DEVICE_MODULES,
    SWITCH_FINGERPRINT,
    device_sources,
    fingerprinted,
    switch_fingerprint,
)

CACHED_KERNEL_MODULES = ("sigprop.kernels.explicit_cpu", "sigprop.kernels.gram_cpu", "sigprop.kernels.bench")
ROOT = Path(__file__).resolve().parents[1]


def _cached_dispatchers(modname: str) -> dict[str, Dispatcher]:
    module = importlib.import_module(modname)
    return {k: v for k, v in vars(module).items()
            if isinstance(v, Dispatcher) and type(v._cache).__name__ != "NullCache"}


def test_device_modules_are_the_inlined_ones():
    assert set(DEVICE_MODULES) >= {"sigprop.kernels.rng", "sigprop.kernels.layer_ops", "sigprop.kernels.simd",
                                   "sigprop.kernels.gram_device", "sigprop.kernels.device_activations",
                                   "sigprop.theory.activation_registry"}
    assert SWITCH_FINGERPRINT == switch_fingerprint() == switch_fingerprint(device_sources())


@pytest.mark.parametrize("modname", CACHED_KERNEL_MODULES)
def test_every_cached_kernel_carries_the_fingerprint(modname):
    cached = _cached_dispatchers(modname)
    assert cached, f"{modname} has no cached kernel"  # the scan finds them (else this test would be empty)
    for name, disp in cached.items():
        assert disp.py_func.__qualname__.endswith("_" + SWITCH_FINGERPRINT), (modname, name)


@pytest.mark.parametrize("modname", DEVICE_MODULES)
def test_editing_a_copy_of_any_device_module_changes_the_fingerprint(modname, tmp_path):
    copies = []
    for name in DEVICE_MODULES:
        src = Path(importlib.util.find_spec(name).origin)
        dst = tmp_path / name.replace(".", "_")
        shutil.copyfile(src, dst)
        copies.append(dst)
    texts = tuple(p.read_text() for p in copies)
    assert switch_fingerprint(texts) == SWITCH_FINGERPRINT  # unedited copies: the same fingerprint
    edited = copies[DEVICE_MODULES.index(modname)]
    edited.write_text(edited.read_text() + "# an edit\n")
    texts_edited = tuple(p.read_text() for p in copies)
    assert switch_fingerprint(texts_edited) != SWITCH_FINGERPRINT


def test_fingerprinted_copies_and_leaves_the_original():
    def f(x, y=2.0):
        return x * y

    k = fingerprinted(f, error_model="numpy")
    assert k(3.0) == 6.0 and f.__name__ == "f" and k.py_func.__name__ == f"f_{SWITCH_FINGERPRINT}"
    assert type(k._cache).__name__ != "NullCache"


@pytest.mark.parametrize("edited", ["rng.py", "gram_device.py"])
def test_edited_package_copy_renames_the_kernels(edited, tmp_path):
    """End to end: a copy of the package whose device module gets one more comment line names its kernels anew."""
    pkg = tmp_path / "sigprop"
    for part in ("theory", "kernels"):
        shutil.copytree(ROOT / part, pkg / part, ignore=shutil.ignore_patterns("__pycache__"))
    with open(pkg / "kernels" / edited, "a") as f:
        f.write("# an edit\n")
    code = ("import sigprop.kernels.explicit_cpu as e, sigprop.kernels.gram_cpu as g; "
            "print(e.__file__); print(e._k_linear.py_func.__name__, g._sample_rows.py_func.__name__)")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0].startswith(str(tmp_path))  # the copy was imported
    fp = out[1].rsplit("_", 1)[1]
    assert len(fp) == 12 and fp != SWITCH_FINGERPRINT and out[2] == f"sample_rows_{fp}"
