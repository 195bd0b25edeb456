"""The error types of sigprop's input validation.

Every public function checks its arguments once, at its entry, before any work, and raises
:class:`InputError` (a ``ValueError``) or :class:`InputTypeError` (a ``TypeError`` and an ``InputError``) with a
message that names the argument and its allowed range.  Code that catches ``ValueError``/``TypeError`` keeps
working; the ``sigprop`` command prints these as one line with exit code 2, and shows the traceback of any other
exception (a bug).

Examples
--------
>>> from sigprop.theory.activations import activation
>>> try:
...     activation("nosuch")
... except InputError as exc:
...     print(type(exc).__name__, isinstance(exc, ValueError))
InputError True
"""
from __future__ import annotations

__all__ = ["InputError", "InputTypeError"]


class InputError(ValueError):
    """An argument outside its allowed range (the message names the argument and the range)."""


class InputTypeError(InputError, TypeError):
    """An argument of the wrong type (the message names the argument and the allowed types)."""
