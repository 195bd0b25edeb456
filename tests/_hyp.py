"""Hypothesis helpers shared by the tests: per-test example counts scaled by the active profile.

The profiles themselves are registered in ``tests/conftest.py`` (see docs/testing.md).  A test that sets
``@settings(max_examples=N)`` overrides the profile's ``max_examples``, so ``explore`` could not give it more
examples; writing ``@settings(max_examples=examples(N))`` instead keeps ``N`` under the ``ci`` profile and
multiplies it under ``explore``.
"""
from __future__ import annotations

from hypothesis import settings

__all__ = ["examples", "BASE_MAX_EXAMPLES"]

BASE_MAX_EXAMPLES = 100  # the ci profile's max_examples (Hypothesis' default): per-test counts are relative to it


def examples(n: int) -> int:
    """``n`` scaled by the active profile: ``n * max_examples / 100`` (``n`` under ``ci``, ``10 n`` under ``explore``).

    Evaluated when the test module is imported, i.e. after ``tests/conftest.py`` and pytest's
    ``--hypothesis-profile`` have loaded the profile.

    Raises
    ------
    ValueError
        If ``n`` is not a positive int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"examples(n) needs a positive int, got {n!r}")
    return max(1, (n * settings().max_examples) // BASE_MAX_EXAMPLES)
