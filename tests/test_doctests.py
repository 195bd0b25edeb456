"""The Examples sections of every sigprop module run as doctests (part of the README test command and CI).

``pytest --doctest-modules`` cannot import the package's folders under their ``sigprop.*`` names (theory/,
kernels/ and validation/ are mapped into the namespace by pyproject.toml, and a folder imported as a top-level
package breaks its relative imports), so each module is imported by its public name and run through
:mod:`doctest` here.  Flags: ELLIPSIS and NORMALIZE_WHITESPACE, as numpy's and scipy's docs use them.
"""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import sigprop.kernels
import sigprop.theory
import sigprop.validation

PACKAGES = (sigprop.theory, sigprop.kernels, sigprop.validation)
MODULES = sorted(name for pkg in PACKAGES
                 for _, name, _ in pkgutil.walk_packages(pkg.__path__, prefix=pkg.__name__ + "."))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module, name) if t.examples]


WITH_EXAMPLES = [name for name in MODULES if _doctests(name)]

# public entry points whose docstrings must carry a runnable Examples section
DOCUMENTED = [
    "sigprop.kernels.simulate.simulate",
    "sigprop.theory.activations.activation",
    "sigprop.theory.activations.custom_activation",
    "sigprop.theory.kernel_map.KernelMap",
    "sigprop.theory.hermite.hermite_coefficients",
    "sigprop.theory.meanfield.kernel_recursion",
    "sigprop.theory.meanfield.critical_point",
    "sigprop.theory.equilibrium.equilibrium_layer",
    "sigprop.theory.correlators.wick.wick_factor",
    "sigprop.validation.stats.fit_power_law",
    "sigprop.validation.stats.wls_extrapolate",
]


def test_every_package_is_walked():
    assert len(MODULES) > 40 and "sigprop.kernels.simulate" in MODULES and "sigprop.theory.meanfield" in MODULES


@pytest.mark.parametrize("qualname", DOCUMENTED)
def test_public_entry_point_has_examples(qualname):
    module_name, attr = qualname.rsplit(".", 1)
    obj = getattr(importlib.import_module(module_name), attr)
    tests = doctest.DocTestFinder(recurse=False).find(obj, qualname)
    assert tests and tests[0].examples, f"{qualname} has no Examples section with >>> lines"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with np.printoptions(legacy="1.25"):  # NumPy scalars print as 1.5, not np.float64(1.5)
        for t in _doctests(name):
            runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples of {name} failed (see above)"
