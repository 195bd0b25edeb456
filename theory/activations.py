"""Activation objects: numeric (NumPy and numba scalar), symbolic (SymPy), derivative and kinks.

An :class:`Activation` is a small immutable object.  The built-in ones are made by :func:`activation` from their
entries in :mod:`sigprop.theory.activation_registry`, which hold every fact about each (the integer device
``code``, the scalar formulas the compiled engines switch over in ``sigprop.kernels.device_activations``, the
closed forms, ...); parameters travel to the device as two floats ``device_params = (p0, p1)``.
:func:`custom_activation` makes a user's activation (``code = CUSTOM_CODE``), whose numba ``scalar`` the engines
call instead of the switch.

Conventions: ``phi`` is applied elementwise to pre-activations; ``kinks`` lists the points where
``phi`` is not smooth (for integration, split there); ``jumps`` the subset where ``phi`` itself is
discontinuous (``phi'`` then has a delta mass and ``E[phi'^2]`` is infinite).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from sigprop.theory.errors import InputError, InputTypeError

from .activation_registry import REGISTRY, ActivationEntry, entry_named

__all__ = [
    "Activation",
    "activation",
    "as_activation",
    "custom_activation",
    "activation_from_entry",
    "ACTIVATION_NAMES",
    "CUSTOM_CODE",
]

CUSTOM_CODE = -1  # the device code of every custom activation (the built-ins' codes are in their registry entries)
ACTIVATION_NAMES: tuple[str, ...] = tuple(e.name for e in REGISTRY)


# --------------------------------------------------------------------------------------------
# The Activation object
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """A pointwise activation ``phi`` with its derivative, kinks and (optionally) SymPy form.

    ``fn``/``deriv`` are vectorised NumPy callables; ``scalar``/``scalar_deriv`` are numba-compiled
    scalar functions (for built-ins, the registry entry's scalar formulas at the activation's parameters);
    ``sympy_builder(x)`` returns the SymPy expression in the symbol ``x`` (None if no closed form).
    ``slopes = (a_plus, a_minus)`` is set for positively homogeneous (scale-invariant) activations.
    ``entry`` is the registry entry of a built-in (None for a custom activation): closed forms, exact Hermite
    coefficients and the other optional facts are read from it.
    """

    name: str
    params: tuple[tuple[str, float], ...]
    fn: Callable[[np.ndarray], np.ndarray] = field(compare=False, repr=False)
    deriv: Callable[[np.ndarray], np.ndarray] = field(compare=False, repr=False)
    kinks: tuple[float, ...] = ()
    jumps: tuple[float, ...] = ()
    code: int = CUSTOM_CODE
    device_params: tuple[float, float] = (0.0, 0.0)
    parity: str | None = None  # "odd", "even" or None
    slopes: tuple[float, float] | None = None
    sympy_builder: Callable[[Any], Any] | None = field(default=None, compare=False, repr=False)
    scalar: Any = field(default=None, compare=False, repr=False)
    scalar_deriv: Any = field(default=None, compare=False, repr=False)
    entry: ActivationEntry | None = field(default=None, compare=False, repr=False)

    def __call__(self, x):
        return self.fn(np.asarray(x, dtype=float))

    def derivative(self, x):
        """phi'(x), vectorised (0 at jumps; the delta mass is not represented)."""
        return self.deriv(np.asarray(x, dtype=float))

    @property
    def param_dict(self) -> dict[str, float]:
        return dict(self.params)

    @property
    def is_builtin(self) -> bool:
        return self.code != CUSTOM_CODE

    @property
    def is_linear(self) -> bool:
        return self.name == "identity"

    def sympy(self, x=None):
        """SymPy expression of phi in the symbol ``x`` (a real Symbol named 'x' by default), or None."""
        if self.sympy_builder is None:
            return None
        import sympy as sp

        if x is None:
            x = sp.Symbol("x", real=True)
        return self.sympy_builder(x)

    @property
    def label(self) -> str:
        """Human-readable name with parameters, e.g. ``leaky_relu(slope=0.1)``."""
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v:g}" for k, v in self.params) + ")"


# --------------------------------------------------------------------------------------------
# Built-in activations from their registry entries
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _compiled_formula(formula: Callable[[float, float, float], float]):
    """A registry scalar formula ``(x, p0, p1) -> float`` as an inline numba function (one per formula)."""
    return numba.njit(inline="always")(formula)


def _builtin_scalars(entry: ActivationEntry, p0: float, p1: float):
    """The numba scalars ``x -> phi(x)``, ``x -> phi'(x)`` of a built-in at device parameters (p0, p1)."""
    phi_f, dphi_f = _compiled_formula(entry.scalar), _compiled_formula(entry.scalar_deriv)

    @numba.njit(inline="always")
    def scalar(x):
        return phi_f(x, p0, p1)

    @numba.njit(inline="always")
    def scalar_d(x):
        return dphi_f(x, p0, p1)

    return scalar, scalar_d


def _checked_params(entry: ActivationEntry, params: dict[str, Any]) -> dict[str, float]:
    """The entry's parameters with defaults filled in; TypeError/ValueError for unknown, non-real or out-of-range."""
    key = entry.name
    allowed = {p.name: p for p in entry.params}
    unknown = set(params) - set(allowed)
    if unknown:
        taken = ", ".join(allowed) if allowed else "no parameters"
        raise InputTypeError(f"activation {key!r} does not take parameter(s) {sorted(unknown)}; it takes {taken}")
    out: dict[str, float] = {}
    for pname, spec in allowed.items():
        v = params.get(pname, spec.default)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"activation {key!r}: parameter {pname} must be a real number, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or not spec.low < v < spec.high:
            raise InputError(f"activation {key!r}: parameter {pname}={v!r} must be finite and in "
                             f"({spec.low}, {spec.high})")
        out[pname] = v
    return out


def activation_from_entry(entry: ActivationEntry, **params: float) -> Activation:
    """The :class:`Activation` of a registry entry with parameters (defaults filled in, ranges checked).

    :func:`activation` resolves a name to its entry and calls this; call it directly to try an entry before it
    is added to the registry (see docs/theory.md, "Adding an activation").

    Examples
    --------
    >>> from sigprop.theory.activation_registry import entry_named
    >>> a = activation_from_entry(entry_named("elu"), alpha=0.5)
    >>> a.label, a.code, a.device_params, a == activation("elu", alpha=0.5)
    ('elu(alpha=0.5)', 9, (0.5, 0.0), True)
    """
    p = _checked_params(entry, params)
    dev = tuple(p.values()) + (0.0,) * (2 - len(p))
    p0, p1 = float(dev[0]), float(dev[1])
    scalar, scalar_d = _builtin_scalars(entry, p0, p1)
    bound = (lambda f: functools.partial(f, **p)) if p else (lambda f: f)
    return Activation(name=entry.name, params=tuple(p.items()), fn=bound(entry.fn), deriv=bound(entry.deriv),
                      kinks=entry.kinks, jumps=entry.jumps, code=entry.code, device_params=(p0, p1),
                      parity=entry.parity_at(p), slopes=entry.slopes_at(p), sympy_builder=bound(entry.sympy),
                      scalar=scalar, scalar_deriv=scalar_d, entry=entry)


def activation(name: str | Activation, **params: float) -> Activation:
    """The built-in activation ``name`` with parameters, e.g. ``activation('leaky_relu', slope=0.2)``.

    Known names: identity, relu, leaky_relu(slope), abs, step, tanh, erf, sigmoid, gelu (erf form),
    gelu_tanh, elu(alpha), celu(alpha), selu, softplus, silu, exp, sin, cos (the entries of
    :data:`sigprop.theory.activation_registry.REGISTRY`).  An ``Activation`` passed in is returned unchanged
    (and must then come with no parameters).

    Examples
    --------
    >>> import numpy as np
    >>> a = activation("leaky_relu", slope=0.2)
    >>> a.label, a.kinks
    ('leaky_relu(slope=0.2)', (0.0,))
    >>> a.fn(np.array([-1.0, 2.0]))
    array([-0.2,  2. ])
    """
    if isinstance(name, Activation):
        if params:
            raise InputTypeError(f"activation: parameters {sorted(params)} given with an Activation object")
        return name
    if not isinstance(name, str):
        raise InputTypeError(f"activation: name must be a str or Activation, got {type(name).__name__}")
    entry = entry_named(name.strip().lower().replace("-", "_"))
    if entry is None:
        raise InputError(f"activation: unknown name {name!r}; known: {', '.join(ACTIVATION_NAMES)}")
    return activation_from_entry(entry, **params)


def as_activation(act: str | Activation, *, argname: str = "act", **params: float) -> Activation:
    """The one resolver of an activation argument: a built-in name (with parameters) or an :class:`Activation`.

    Every function of the package that takes "a name or an Activation" resolves it here.

    Parameters
    ----------
    act : str or Activation
        A name in :data:`ACTIVATION_NAMES` (or an alias: linear, lrelu, swish, heaviside), or an Activation,
        which is returned unchanged.
    argname : str, optional
        The caller's name for the argument, used in the TypeError; default ``"act"``.
    **params : float
        Parameters of a built-in activation, e.g. ``slope`` for leaky_relu; none with an Activation.

    Returns
    -------
    Activation
        The resolved activation.

    Raises
    ------
    TypeError
        ``act`` is neither a str nor an Activation (the message names ``argname``); parameters given with an
        Activation or not taken by the named activation.
    ValueError
        An unknown name (the message lists the known names) or a parameter value out of range.

    Examples
    --------
    >>> relu = as_activation("relu")
    >>> as_activation(relu) is relu
    True
    >>> as_activation("leaky_relu", slope=0.2).label
    'leaky_relu(slope=0.2)'
    >>> as_activation(3, argname="activation")
    Traceback (most recent call last):
        ...
    sigprop.theory.errors.InputTypeError: activation must be an activation name (str) or an Activation, got int
    """
    if not isinstance(act, (str, Activation)):
        raise InputTypeError(f"{argname} must be an activation name (str) or an Activation, got {type(act).__name__}")
    return activation(act, **params)


def _as_njit(f: Callable[[float], float]):
    """A numba dispatcher for the scalar callable ``f``: itself if already compiled, ``njit(f)`` for a Python
    function, and a compiled wrapper ``x -> f(x)`` for builtins and ufuncs (``math.tanh``, ``np.tanh``), which
    numba can call but not compile directly."""
    if hasattr(f, "py_func"):
        return f
    if isinstance(f, type(lambda: 0)):
        return numba.njit(f)
    return numba.njit(lambda x: f(x))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _numba_error_line(exc: BaseException) -> str:
    """The first informative line of a numba compilation error (not its 'Failed in ... pipeline' header)."""
    lines = [_ANSI.sub("", ln).strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Failed in", "During:", "File \"", "<source"))]
    return lines[0] if lines else type(exc).__name__


def _short_name(f: Any) -> str:
    """A short description of a callable for messages: ``<ufunc 'erf'>``, ``function <lambda>``, ..."""
    if isinstance(f, np.ufunc):
        return repr(f)
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None)
    return f"{type(f).__name__} {name}" if name else repr(f)[:60]


def _compile_scalar(f: Callable[[float], float], what: str):
    """``f`` as a numba dispatcher compiled now for one float64 argument, returning a real number.

    Parameters
    ----------
    f : callable
        The scalar function (Python function, builtin/ufunc, or numba dispatcher).
    what : str
        How to name it in the error, e.g. ``'scalar='``.

    Returns
    -------
    numba dispatcher
        Compiled for ``(float64,)``; later calls from the kernels reuse that compilation.

    Raises
    ------
    ValueError
        numba cannot compile ``f`` for a float64 argument (with numba's first informative error line), or the
        compiled function returns something other than a real number (an array, a tuple, a complex).
    """
    disp = _as_njit(f)
    if not isinstance(disp, CPUDispatcher):  # e.g. a CUDA device function: not ours to compile on the CPU
        return disp
    try:
        disp.compile((numba.types.float64,))
        ret = disp.overloads[(numba.types.float64,)].signature.return_type
    except Exception as exc:  # numba raises TypingError, UnsupportedError, NotImplementedError, ...
        raise InputError(f"custom_activation: {what} must be a scalar function numba can compile for a float64 "
                         f"argument (it runs inside the Monte-Carlo kernels), got {_short_name(f)}; numba says: "
                         f"{_numba_error_line(exc)}") from None
    if not isinstance(ret, (numba.types.Float, numba.types.Integer, numba.types.Boolean)):
        raise InputError(f"custom_activation: {what} must return a real number for a float64 argument, but numba "
                         f"types its result as {ret} (a vectorised NumPy function such as np.where returns an "
                         "array: write the scalar with math/if instead)")
    return disp


# Points at which a claimed parity is verified: small, moderate and large |x| (and their negatives).
_PARITY_GRID = np.array([1e-6, 1e-3, 0.1, 0.37, 0.5, 1.0, 1.3, 2.0, 3.0, 5.0, 10.0, 30.0])
_PARITY_RTOL = 1e-8


def _check_parity(fn: Callable[[np.ndarray], np.ndarray], parity: str) -> None:
    """ValueError naming ``parity=`` and the first point where ``fn(-x) = +-fn(x)`` fails on :data:`_PARITY_GRID`.

    The tolerance is relative: ``|fn(-x) -+ fn(x)| <= 1e-8 (|fn(x)| + |fn(-x)|) + 1e-14 max(1, max |fn|)``, the
    second term allowing rounding near a zero of fn.  Equal infinities count as equal; NaN is a violation.
    """
    x = _PARITY_GRID
    with np.errstate(all="ignore"):
        plus = np.asarray(fn(x), dtype=float)
        minus = np.asarray(fn(-x), dtype=float)
    if plus.shape != x.shape or minus.shape != x.shape:
        raise InputTypeError("custom_activation: fn must map an array to an array of the same shape")
    target = -plus if parity == "odd" else plus
    finite = np.isfinite(plus) & np.isfinite(minus)
    scale = max(1.0, float(np.max(np.abs(np.concatenate([plus[finite], minus[finite]])), initial=0.0)))
    with np.errstate(all="ignore"):
        tol = _PARITY_RTOL * (np.abs(plus) + np.abs(minus)) + 1e-14 * scale
        ok = (minus == target) | (np.abs(minus - target) <= tol)
    if not ok.all():
        k = int(np.argmin(ok))
        rel = "phi(-x) = -phi(x)" if parity == "odd" else "phi(-x) = phi(x)"
        grid = ", ".join(f"{v:g}" for v in x)
        raise InputError(f"custom_activation: parity={parity!r} claims {rel}, but at x = {x[k]:g}: phi(x) = "
                         f"{plus[k]:.17g}, phi(-x) = {minus[k]:.17g} (checked at x = +-{grid} with relative "
                         f"tolerance {_PARITY_RTOL:g}); pass parity=None if phi has no parity")


def custom_activation(
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    name: str = "custom",
    derivative: Callable[[np.ndarray], np.ndarray] | None = None,
    kinks: tuple[float, ...] = (),
    jumps: tuple[float, ...] = (),
    sympy_expr: Callable[[Any], Any] | None = None,
    scalar: Callable[[float], float] | None = None,
    scalar_derivative: Callable[[float], float] | None = None,
    parity: str | None = None,
) -> Activation:
    """A user's activation. ``fn`` must be vectorised over NumPy arrays; declare every kink.

    Parameters
    ----------
    fn : callable
        phi, vectorised over NumPy arrays.
    name : str
        Label of the activation.
    derivative : callable, optional
        phi', vectorised.  Without it, phi' is a central finite difference (step 1e-6), adequate for plots
        but not for 1e-10 work: pass the derivative when you need accuracy.
    kinks, jumps : tuple of float
        Points where phi is not smooth / is discontinuous (finite numbers).
    sympy_expr : callable, optional
        ``x -> SymPy expression`` of phi.
    scalar : callable, optional
        A numba-compilable scalar version of phi for the Monte-Carlo kernels.  It is compiled here, for a float64
        argument (about 0.1-0.5 s, the first one in a process about 1 s more), and rejected with a ValueError
        naming ``scalar=`` if numba cannot compile it or it does not return a real number.  Default: ``fn``
        compiled the same way, which works when ``fn`` only uses ``math``/NumPy ufunc calls on scalars; when
        it does not, the activation is still made (the theory needs no scalar) with ``scalar=None``, and the
        simulation refuses it before any work.
    scalar_derivative : callable, optional
        A numba-compilable scalar phi', compiled and checked like ``scalar``.
    parity : {None, 'odd', 'even'}
        A claimed parity; it is verified numerically (``phi(-x) = -phi(x)`` or ``phi(x)`` at
        ``x = +-1e-6 ... +-30``, relative tolerance 1e-8) since the theory uses it to skip work.

    Returns
    -------
    Activation
        With ``code = CUSTOM_CODE``.

    Raises
    ------
    TypeError
        ``fn`` not callable or not shape-preserving.
    ValueError
        A bad ``parity`` value or a parity that does not hold (naming ``parity=`` and the first violating
        point), non-finite kinks, or a ``scalar=``/``scalar_derivative=`` numba cannot compile.

    Examples
    --------
    Softsign, ``x / (1 + |x|)``, with its derivative and a scalar for the Monte-Carlo kernels (its kink at 0
    is in the derivative only, which is continuous there):

    >>> import numpy as np
    >>> soft = custom_activation(lambda x: x / (1 + np.abs(x)), name="softsign",
    ...                          derivative=lambda x: 1 / (1 + np.abs(x)) ** 2, parity="odd",
    ...                          scalar=lambda x: x / (1 + abs(x)))
    >>> soft.label, soft.parity
    ('softsign', 'odd')
    >>> soft.fn(np.array([1.0, -3.0]))
    array([ 0.5 , -0.75])
    >>> custom_activation(np.abs, parity="odd")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: ...parity=...
    """
    if not callable(fn):
        raise InputTypeError("custom_activation: fn must be callable")
    if parity not in (None, "odd", "even"):
        raise InputError(f"custom_activation: parity must be None, 'odd' or 'even', got {parity!r}")
    for what, pts in (("kinks", kinks), ("jumps", jumps)):
        for k in pts:
            if not math.isfinite(float(k)):
                raise InputError(f"custom_activation: {what} must be finite numbers, got {k!r}")
    kinks_t = tuple(sorted({float(k) for k in kinks} | {float(j) for j in jumps}))
    test = np.asarray(fn(np.linspace(-3.0, 3.0, 7)), dtype=float)
    if test.shape != (7,):
        raise InputTypeError("custom_activation: fn must map an array to an array of the same shape")
    if parity is not None:
        _check_parity(fn, parity)
    if derivative is None:
        h = 1e-6

        def derivative(x, _f=fn):
            return (np.asarray(_f(x + h)) - np.asarray(_f(x - h))) / (2 * h)
    if scalar is not None:
        scalar = _compile_scalar(scalar, "scalar=")
    else:
        try:
            scalar = _compile_scalar(fn, "scalar= (defaulting to fn)")
        except ValueError:
            scalar = None  # theory-only activation; simulate() refuses a custom activation without a scalar
    if scalar_derivative is not None:
        scalar_derivative = _compile_scalar(scalar_derivative, "scalar_derivative=")
    return Activation(name=name, params=(), fn=lambda x: np.asarray(fn(x), dtype=float), deriv=derivative,
                      kinks=kinks_t, jumps=tuple(float(j) for j in jumps), code=CUSTOM_CODE, parity=parity,
                      sympy_builder=sympy_expr, scalar=scalar, scalar_deriv=scalar_derivative)
