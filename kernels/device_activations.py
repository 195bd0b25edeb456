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
           "switch_fingerprint", "DEVICE_MODULES", "device_sources", "fingerprinted"]

# Device codes of the built-in activations (stable: they are compiled into kernels).
CODES: dict[str, int] = {e.name: e.code for e in REGISTRY}


# Every module whose numba code the cached CPU kernels contain (inlined with ``inline='always'``, or linked in from a
# compiled callee): the activation switch and its registry formulas, the counter-based generator, the row/column
# operations, the vector intrinsics, and the gram and rainbow engines' device code.  A kernel module's own source
# is covered by numba itself (its disk cache is invalidated when the defining file changes).
DEVICE_MODULES: tuple[str, ...] = (
    "sigprop.theory.activation_registry",
    "sigprop.theory.activations",
    "sigprop.kernels.device_activations",
    "sigprop.kernels.rng",
    "sigprop.kernels.layer_ops",
    "sigprop.kernels.simd",
    "sigprop.kernels.gram_device",
    "sigprop.kernels.rainbow_device",
)


def device_sources(modules: tuple[str, ...] = DEVICE_MODULES) -> tuple[str, ...]:
    """The source texts of ``modules`` (read from their files, without importing them), in the given order.

    Parameters
    ----------
    modules : tuple of str
        Dotted module names; by default :data:`DEVICE_MODULES`.

    Returns
    -------
    tuple of str
        One text per module.

    Examples
    --------
    >>> texts = device_sources()
    >>> len(texts) == len(DEVICE_MODULES), "def normal_pair" in texts[DEVICE_MODULES.index("sigprop.kernels.rng")]
    (True, True)
    """
    import importlib.util
    from pathlib import Path

    return tuple(Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8") for name in modules)


def switch_fingerprint(sources: tuple[str, ...] | None = None) -> str:
    """12 hex digits of the SHA-256 of all inlined device sources (the modules of :data:`DEVICE_MODULES`), or of
    ``sources``.

    numba's disk cache (``cache=True``) is invalidated when the *defining* file of a kernel changes, not when a
    function it inlines or calls from another file does.  Every cached CPU kernel (``explicit_cpu``, ``gram_cpu``,
    ``rainbow_cpu``, ``rng``, ``bench``) therefore carries this fingerprint in its name (compiled with
    :func:`fingerprinted`, or so named by its module's kernel factory; tests/test_device_fingerprint.py scans the
    package for any that does not): editing the activation registry, the generator, the row/column operations,
    the vector intrinsics or the gram or rainbow device code compiles the kernels afresh instead of running stale
    machine code (for a new activation code: NaN).  The texts are hashed in order, each followed by a NUL byte, so
    that moving text between modules changes the fingerprint too.

    Parameters
    ----------
    sources : tuple of str, optional
        Texts to fingerprint instead of :func:`device_sources`.

    Returns
    -------
    str
        12 lowercase hex digits.

    Examples
    --------
    >>> switch_fingerprint(("a",)) != switch_fingerprint(("b",)), len(SWITCH_FINGERPRINT)
    (True, 12)
    """
    import hashlib

    if sources is None:
        sources = device_sources()
    h = hashlib.sha256()
    for text in sources:
        h.update(text.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def fingerprinted(fn: Callable, **options) -> Callable:
    """``numba.njit(cache=True, **options)`` of a copy of ``fn`` named ``<name>_<SWITCH_FINGERPRINT>``.

    The copy shares ``fn``'s code, globals, defaults and closure, so it computes the same numbers; only its name
    (the key of numba's disk cache, and the symbol of its machine code) carries the fingerprint of all inlined
    device sources (:func:`switch_fingerprint`).  ``fn`` itself (for example the ``py_func`` of another module's
    dispatcher) is left unchanged.

    Parameters
    ----------
    fn : function
        A plain Python function that numba can compile.
    **options
        Further options of ``numba.njit`` (``parallel``, ``error_model``, ...).

    Returns
    -------
    numba dispatcher
        The compiled (on first call), disk-cached function.

    Examples
    --------
    >>> from sigprop.kernels import layer_ops
    >>> k = fingerprinted(layer_ops.column_dot.py_func)
    >>> k.py_func.__name__ == "column_dot_" + SWITCH_FINGERPRINT, layer_ops.column_dot.py_func.__name__
    (True, 'column_dot')
    """
    import types

    name = f"{fn.__name__}_{SWITCH_FINGERPRINT}"
    copy = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    copy.__qualname__ = name
    copy.__module__ = fn.__module__
    copy.__doc__ = fn.__doc__
    copy.__kwdefaults__ = fn.__kwdefaults__
    return numba.njit(cache=True, **options)(copy)


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


SWITCH_FINGERPRINT: str = switch_fingerprint()  # of all inlined device sources; see switch_fingerprint
