"""numba's disk cache and inlined device code: every cached CPU kernel is named with one fingerprint of all inlined
device sources (kernels.device_activations.DEVICE_MODULES), so editing any of them compiles the kernels afresh
instead of serving stale machine code (numba only notices edits of a kernel's own defining file).

The package-wide scan imports every module that uses numba and inspects every disk-cached dispatcher defined in the
package: each must carry the fingerprint, unless it is self-contained (its code, and that of the cached kernels it
calls, uses no name imported from sigprop and no closure), which numba's own invalidation covers."""
from __future__ import annotations

import ast
import gc
import importlib
import os
import shutil
import subprocess
import sys
import types
import weakref
from pathlib import Path

import numba
import pytest
from numba._dispatcher import Dispatcher as _BaseDispatcher
from numba.core.dispatcher import Dispatcher

from sigprop.kernels.device_activations import (
    DEVICE_MODULES,
    SWITCH_FINGERPRINT,
    device_sources,
    fingerprinted,
    switch_fingerprint,
)

CACHED_KERNEL_MODULES = ("sigprop.kernels.explicit_cpu", "sigprop.kernels.gram_cpu", "sigprop.kernels.bench",
                         "sigprop.kernels.rng", "sigprop.kernels.rainbow_cpu")
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"theory": "sigprop.theory", "kernels": "sigprop.kernels", "validation": "sigprop.validation"}


def _numba_modules() -> dict[str, Path]:
    """Every package module whose source mentions numba (the only ones that can define a dispatcher)."""
    found = {}
    for folder, pkg in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" not in path.parts and "numba" in path.read_text(encoding="utf-8"):
                rel = path.relative_to(ROOT / folder).with_suffix("").parts
                found[".".join((pkg, *rel)).removesuffix(".__init__")] = path
    return found


def _package_cached_dispatchers() -> list:
    """Every disk-cached numba dispatcher (CPU or CUDA) alive after importing the package's numba modules whose
    function is defined in a package file (the fingerprinted copies keep their original's file)."""
    for name in _numba_modules():
        importlib.import_module(name)
    folders = tuple(str(ROOT / folder) + os.sep for folder in PACKAGES)
    proxies = (weakref.ProxyType, weakref.CallableProxyType)  # isinstance() on a dead proxy raises ReferenceError
    return [obj for obj in gc.get_objects()
            if type(obj) not in proxies and isinstance(obj, _BaseDispatcher)
            and getattr(obj, "_cache", None) is not None and type(obj._cache).__name__ != "NullCache"
            and getattr(obj, "py_func", None) is not None and obj.py_func.__code__.co_filename.startswith(folders)]


def _sigprop_imported_names(module: types.ModuleType) -> set[str]:
    """The names ``module`` binds with an import from sigprop (absolute or relative, anywhere in its source)."""
    names = set()
    for node in ast.walk(ast.parse(Path(module.__file__).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("sigprop")):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("sigprop")}
    return names


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _self_contained(disp, seen: frozenset = frozenset()) -> bool:
    """True when numba's own cache invalidation (on edits of the defining file) covers everything ``disp`` compiles
    in: no closure, no name imported from sigprop, no sigprop module, and only callees of the same file that are
    themselves self-contained."""
    fn = disp.py_func
    if fn.__closure__:
        return False
    imported = _sigprop_imported_names(sys.modules[fn.__module__])
    for name in _code_names(fn.__code__):
        value = fn.__globals__.get(name)
        if name in imported or (isinstance(value, types.ModuleType) and value.__name__.startswith("sigprop")):
            return False
        if isinstance(value, _BaseDispatcher) and id(value) not in seen:
            callee = getattr(value, "py_func", None)
            if callee is None or callee.__code__.co_filename != fn.__code__.co_filename \
                    or not _self_contained(value, seen | {id(disp)}):
                return False
    return True


def _stale_risk(disp) -> bool:
    """A disk-cached dispatcher whose name lacks the fingerprint although it compiles in code of other files."""
    return not disp.py_func.__qualname__.endswith("_" + SWITCH_FINGERPRINT) and not _self_contained(disp)


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


def test_no_cached_kernel_of_the_package_misses_the_fingerprint():
    cached = _package_cached_dispatchers()
    modules = {d.py_func.__module__ for d in cached}
    assert set(CACHED_KERNEL_MODULES) <= modules, modules  # the scan sees the known cached kernels
    # every module that asks numba for a disk cache in its source has its cached kernels in the scan
    for name, path in _numba_modules().items():
        if "cache=True" in path.read_text(encoding="utf-8") and name != "sigprop.kernels.device_activations":
            assert name in modules, name
    stale = sorted(f"{d.py_func.__module__}.{d.py_func.__qualname__}" for d in cached if _stale_risk(d))
    assert not stale, f"disk-cached without the device fingerprint (use device_activations.fingerprinted): {stale}"


def test_the_scan_flags_an_unfingerprinted_copy_and_passes_self_contained_kernels():
    from sigprop.kernels import rng
    from sigprop.theory import equilibrium

    fn = rng._fill_draws.py_func
    plain = types.FunctionType(fn.__code__, fn.__globals__, "_fill_draws", fn.__defaults__, fn.__closure__)
    plain.__module__ = fn.__module__
    assert _stale_risk(numba.njit(plain)) and not _stale_risk(rng._fill_draws)  # uses simd and rng's inlined code
    assert _self_contained(equilibrium._gap_sequence)  # calls _gap_step, which calls _g_of_s: one file, no imports
    assert not _self_contained(numba.njit(lambda x: fingerprinted(x)))  # a name imported from sigprop


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
    code = ("import sigprop.kernels.explicit_cpu as e, sigprop.kernels.gram_cpu as g, sigprop.kernels.rng as r, "
            "sigprop.kernels.rainbow_cpu as rc; print(e.__file__); "
            "print(e._k_linear.py_func.__name__, g._sample_rows.py_func.__name__, r._fill_draws.py_func.__name__, "
            "rc._k_linear.py_func.__name__, rc._sample_rows.py_func.__name__)")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert out[0].startswith(str(tmp_path))  # the copy was imported
    fp = out[1].rsplit("_", 1)[1]
    assert len(fp) == 12 and fp != SWITCH_FINGERPRINT and out[2] == f"sample_rows_{fp}"
    assert out[3:] == [f"_fill_draws_{fp}", f"_k_linear_{fp}", f"sample_rows_{fp}"]
