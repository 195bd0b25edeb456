"""The curated fronts of sigprop.kernels and sigprop.validation: every listed name resolves to its home, loaded on
first use, and no exported name hides a submodule."""
from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest


@pytest.mark.parametrize("package", ["sigprop.kernels", "sigprop.validation"])
def test_every_exported_name_resolves(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        assert obj is not None
        if not isinstance(obj, types.ModuleType):
            home = importlib.import_module(obj.__module__)
            assert getattr(home, name) is obj, (name, obj.__module__)
    assert set(pkg.__all__) <= set(dir(pkg))
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        getattr(pkg, "no_such_name")


def test_names_loaded_on_first_use_do_not_hide_submodules():
    import sigprop.kernels as k

    for name in k._LAZY:
        assert importlib.util.find_spec(f"sigprop.kernels.{name}") is None, name
    assert isinstance(importlib.import_module("sigprop.kernels.learning.rfm"), types.ModuleType)


def test_importing_the_packages_stays_light():
    code = ("import sys, sigprop.kernels, sigprop.validation; "
            "print(sorted(m for m in ('sigprop.kernels.learning.training', 'sigprop.kernels.distributed', "
            "'sigprop.validation.runner', 'sigprop.validation.measures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
