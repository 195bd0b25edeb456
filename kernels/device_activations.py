"""The engines' device switch over the built-in activations: ``device_activation``, ``device_derivative``.

``device_activation(code, x, p0, p1)`` is phi(x) of the built-in activation with device code ``code`` and
parameters ``(p0, p1)`` (:attr:`sigprop.theory.Activation.device_params`); ``device_derivative`` is phi'(x).  Both
are ``@numba.njit(inline='always')`` scalar code, shared by the CPU and CUDA kernels, and are generated from the
registry (:mod:`sigprop.theory.activation_registry`): one branch ``if code == c: return formula(x, p0, p1)`` per
entry, in code order, each entry's scalar formula inlined, and NaN for an unknown code.  So the switch computes
exactly the registry's formulas (the same floating-point operations), and a new registry entry needs no change here.

Examples
--------
>>> from sigprop.theory import activation
>>> act = activation("leaky_relu", slope=0.2)
>>> device_activation(act.code, -2.0, *act.device_params), device_derivative(act.code, -2.0, *act.device_params)
(-0.4, 0.2)
>>> CODES["relu"], CUSTOM_CODE
(1, -1)
"""
from __future__ import annotations

import math
from typing import Callable

import numba

from sigprop.theory.activation_registry import REGISTRY
from sigprop.theory.activations import CUSTOM_CODE

__all__ = ["device_activation", "device_derivative", "CODES", "CUSTOM_CODE", "make_switch", "SWITCH_FINGERPRINT",
           "switch_fingerprint"]

# Device codes of the built-in activations (stable: they are compiled into kernels).
CODES: dict[str, int] = {e.name: e.code for e in REGISTRY}


def switch_fingerprint(sources: tuple[str, ...] | None = None) -> str:
    """12 hex digits of the SHA-256 of the source that defines the device switch (the registry, the activations
    module and this module), or of ``sources``.

    numba's disk cache (``cache=True``) is invalidated when the *defining* file of a kernel changes, not when a
    function it inlines does; the CPU kernels that inline this switch carry the fingerprint in their names
    (``gram_cpu``, ``explicit_cpu``), so editing a registry entry compiles them afresh instead of running a stale
    switch (for a new code: NaN).

    Examples
    --------
    >>> switch_fingerprint(("a",)) != switch_fingerprint(("b",)), len(SWITCH_FINGERPRINT)
    (True, 12)
    """
    import hashlib
    import inspect
    import sys

    if sources is None:
        from sigprop.theory import activation_registry, activations

        sources = tuple(inspect.getsource(m) for m in (activation_registry, activations, sys.modules[__name__]))
    h = hashlib.sha256()
    for text in sources:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def make_switch(name: str, formulas: dict[int, Callable[[float, float, float], float]], doc: str):
    """An inline numba function ``name(code, x, p0, p1)`` returning ``formulas[code](x, p0, p1)`` (NaN for an
    unknown code): a flat ``if``/``elif`` chain over the codes in increasing order, each formula compiled
    ``inline='always'``, so the compiled switch is the formulas' own arithmetic.

    Examples
    --------
    >>> sw = make_switch("sw", {0: lambda x, p0, p1: x + p0, 1: lambda x, p0, p1: x * p1}, "demo")
    >>> sw(0, 2.0, 1.0, 3.0), sw(1, 2.0, 1.0, 3.0), math.isnan(sw(7, 2.0, 1.0, 3.0))
    (3.0, 6.0, True)
    """
    lines = [f"def {name}(code, x, p0, p1):"]
    for i, code in enumerate(sorted(formulas)):
        lines += [f"    {'if' if i == 0 else 'elif'} code == {int(code)}:", f"        return _f{int(code)}(x, p0, p1)"]
    lines.append("    return math.nan")
    namespace = {"math": math, **{f"_f{int(c)}": numba.njit(inline="always")(f) for c, f in formulas.items()}}
    exec(compile("\n".join(lines) + "\n", f"<sigprop device switch {name}>", "exec"), namespace)  # noqa: S102
    fn = namespace[name]
    fn.__doc__ = doc
    fn.__module__ = __name__
    return numba.njit(inline="always")(fn)


device_activation = make_switch(
    "device_activation", {e.code: e.scalar for e in REGISTRY},
    "phi(x) for the built-in activation ``code`` with parameters (p0, p1) (NaN for an unknown code).")
device_derivative = make_switch(
    "device_derivative", {e.code: e.scalar_deriv for e in REGISTRY},
    "phi'(x) for the built-in activation ``code`` (the one-sided value 0 or slope at a kink; 0 for step).")


SWITCH_FINGERPRINT: str = switch_fingerprint()  # see switch_fingerprint
