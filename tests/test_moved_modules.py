"""Modules renamed to say what they hold keep their old path for one release: same objects, a DeprecationWarning."""
from __future__ import annotations

import importlib
import sys
import warnings

import pytest

MOVED = {
    "sigprop.theory.kernel_formulas": "sigprop.theory.pair_formulas",
    "sigprop.theory.closed_forms": "sigprop.theory.activation_closed_forms",
    "sigprop.theory.hermite_formulas": "sigprop.theory.hermite_integrals",
    "sigprop.validation.estimators": "sigprop.validation.correlator_estimators",
    "sigprop.validation.units": "sigprop.validation.work_units",
    "sigprop.kernels.training": "sigprop.kernels.learning.training",
    "sigprop.kernels.rfm": "sigprop.kernels.learning.rfm",
    "sigprop.kernels.datasets": "sigprop.kernels.learning.datasets",
    "sigprop.kernels.bench_training": "sigprop.kernels.learning.bench_training",
    "sigprop.kernels.bench_rfm": "sigprop.kernels.learning.bench_rfm",
    "sigprop.validation.rainbow_trained": "sigprop.validation.experiments.rainbow_trained",
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_warns_and_hands_on_the_same_objects(old):
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    assert any(issubclass(w.category, DeprecationWarning) and MOVED[old] in str(w.message) for w in caught)
    assert mod.__all__ == new.__all__
    assert all(getattr(mod, name) is getattr(new, name) for name in new.__all__)
