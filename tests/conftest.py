"""Hypothesis profiles for the test suite (docs/testing.md).

``ci`` (the default): derandomised -- every run of a given source tree tries the same examples -- with no
example database (no failure is stored in or replayed from ``.hypothesis/examples``), no deadline, no timing
health check (no timed tests), and ``print_blob`` so that a failure prints the ``@reproduce_failure`` line
that replays it.  ``explore``: random examples, the example database on (failures found are replayed first
next time), ``SIGPROP_HYPOTHESIS_SCALE`` (default 10) times the examples of ``ci``, also in the tests that set
their own count with ``@settings(max_examples=examples(N))`` (``tests/_hyp.py``).

Select with ``SIGPROP_HYPOTHESIS_PROFILE=explore`` or pytest's ``--hypothesis-profile=explore`` (which wins).
"""
from __future__ import annotations

import importlib
import os
import pkgutil

from hypothesis import HealthCheck, settings

from _hyp import BASE_MAX_EXAMPLES

PROFILE_ENV = "SIGPROP_HYPOTHESIS_PROFILE"
SCALE_ENV = "SIGPROP_HYPOTHESIS_SCALE"
PROFILES = ("ci", "explore")


def _explore_scale() -> int:
    """The factor of ``explore`` on every example count, from ``SIGPROP_HYPOTHESIS_SCALE`` (default 10)."""
    raw = os.environ.get(SCALE_ENV, "10")
    try:
        scale = int(raw)
    except ValueError:
        scale = 0
    if scale < 1:
        raise ValueError(f"{SCALE_ENV} must be a positive integer, got {raw!r}")
    return scale


def _import_every_sigprop_module() -> None:
    """Import every module of the package now, before any test runs.

    Hypothesis mixes into its examples constants it finds in the source of the local modules already
    imported (``.venv``'s site-packages and ``tests/`` excluded).  Without this, which modules those are
    would depend on the tests that ran earlier in the same process (lazy imports, pytest-xdist's scheduling),
    and a derandomised test could see different examples from run to run.  Optional dependencies that are
    missing (ImportError) leave their modules out, the same way in every run on that machine.
    """
    import sigprop.kernels
    import sigprop.theory
    import sigprop.validation

    for pkg in (sigprop.theory, sigprop.kernels, sigprop.validation):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            try:
                importlib.import_module(info.name)
            except ImportError:
                pass


_COMMON = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", derandomize=True, database=None, max_examples=BASE_MAX_EXAMPLES, **_COMMON)
settings.register_profile("explore", derandomize=False, max_examples=BASE_MAX_EXAMPLES * _explore_scale(),
                          **_COMMON)

_profile = os.environ.get(PROFILE_ENV, "ci")
if _profile not in PROFILES:
    raise ValueError(f"{PROFILE_ENV} must be one of {PROFILES}, got {_profile!r}")
settings.load_profile(_profile)
_import_every_sigprop_module()
