"""Activation functions: numeric (NumPy and numba scalar), symbolic (SymPy), derivative and kinks.

An :class:`Activation` is a small immutable object.  Built-in activations carry an integer ``code``
and two float parameters ``(p0, p1)`` so that compiled kernels can evaluate any of them through one
switch (:func:`device_activation`, :func:`device_derivative`), written once as
``@numba.njit(inline='always')`` scalar code and shared by the CPU and CUDA kernels.

Conventions: ``phi`` is applied elementwise to pre-activations; ``kinks`` lists the points where
``phi`` is not smooth (for integration, split there); ``jumps`` the subset where ``phi`` itself is
discontinuous (``phi'`` then has a delta mass and ``E[phi'^2]`` is infinite).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numba
import numpy as np
from numba.core.registry import CPUDispatcher
from scipy import special

from sigprop.theory.errors import InputError, InputTypeError

__all__ = [
    "Activation",
    "activation",
    "as_activation",
    "custom_activation",
    "ACTIVATION_NAMES",
    "device_activation",
    "device_derivative",
]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715

# Device codes of the built-in activations (stable: they are compiled into kernels).
CODES: dict[str, int] = {
    "identity": 0, "relu": 1, "leaky_relu": 2, "abs": 3, "tanh": 4, "erf": 5, "sigmoid": 6,
    "gelu": 7, "gelu_tanh": 8, "elu": 9, "celu": 10, "selu": 11, "softplus": 12, "silu": 13,
    "exp": 14, "sin": 15, "cos": 16, "step": 17,
}
CUSTOM_CODE = -1


# --------------------------------------------------------------------------------------------
# Scalar device code: one source for CPU (njit) and CUDA kernels.
# --------------------------------------------------------------------------------------------
@numba.njit(inline="always", cache=True)
def _sigmoid_scalar(x: float) -> float:
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(inline="always", cache=True)
def device_activation(code: int, x: float, p0: float, p1: float) -> float:
    """phi(x) for the built-in activation ``code`` with parameters (p0, p1)."""
    if code == 0:
        return x
    elif code == 1:
        return 0.0 if x <= 0.0 else x  # NaN propagates, as in np.maximum(x, 0)
    elif code == 2:
        return x if x > 0.0 else p0 * x
    elif code == 3:
        return abs(x)
    elif code == 4:
        return math.tanh(x)
    elif code == 5:
        return math.erf(x)
    elif code == 6:
        return _sigmoid_scalar(x)
    elif code == 7:
        return 0.5 * x * (1.0 + math.erf(x / 1.4142135623730951))
    elif code == 8:
        return 0.5 * x * (1.0 + math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    elif code == 9:
        return x if x > 0.0 else p0 * math.expm1(x)
    elif code == 10:
        return x if x > 0.0 else p0 * math.expm1(x / p0)
    elif code == 11:
        return 1.0507009873554805 * (x if x > 0.0 else 1.6732632423543772 * math.expm1(x))
    elif code == 12:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    elif code == 13:
        return x * _sigmoid_scalar(x)
    elif code == 14:
        return math.exp(x)
    elif code == 15:
        return math.sin(x)
    elif code == 16:
        return math.cos(x)
    elif code == 17:
        return 1.0 if x > 0.0 else 0.0
    return math.nan


@numba.njit(inline="always", cache=True)
def device_derivative(code: int, x: float, p0: float, p1: float) -> float:
    """phi'(x) for the built-in activation ``code`` (the one-sided value 0 or slope at a kink; 0 for step)."""
    if code == 0:
        return 1.0
    elif code == 1:
        return 1.0 if x > 0.0 else 0.0
    elif code == 2:
        return 1.0 if x > 0.0 else p0
    elif code == 3:
        return 1.0 if x > 0.0 else -1.0
    elif code == 4:
        t = math.tanh(x)
        return 1.0 - t * t
    elif code == 5:
        return 1.1283791670955126 * math.exp(-x * x)
    elif code == 6:
        s = _sigmoid_scalar(x)
        return s * (1.0 - s)
    elif code == 7:
        return 0.5 * (1.0 + math.erf(x / 1.4142135623730951)) + x * 0.3989422804014327 * math.exp(-0.5 * x * x)
    elif code == 8:
        u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        t = math.tanh(u)
        du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    elif code == 9:
        return 1.0 if x > 0.0 else p0 * math.exp(x)
    elif code == 10:
        return 1.0 if x > 0.0 else math.exp(x / p0)
    elif code == 11:
        return 1.0507009873554805 * (1.0 if x > 0.0 else 1.6732632423543772 * math.exp(x))
    elif code == 12:
        return _sigmoid_scalar(x)
    elif code == 13:
        s = _sigmoid_scalar(x)
        return s * (1.0 + x * (1.0 - s))
    elif code == 14:
        return math.exp(x)
    elif code == 15:
        return math.cos(x)
    elif code == 16:
        return -math.sin(x)
    elif code == 17:
        return 0.0
    return math.nan


# --------------------------------------------------------------------------------------------
# The Activation object
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """A pointwise activation ``phi`` with its derivative, kinks and (optionally) SymPy form.

    ``fn``/``deriv`` are vectorised NumPy callables; ``scalar``/``scalar_deriv`` are numba-compiled
    scalar functions (for built-ins, ``device_activation(code, x, p0, p1)`` with fixed code/params);
    ``sympy_builder(x)`` returns the SymPy expression in the symbol ``x`` (None if no closed form).
    ``slopes = (a_plus, a_minus)`` is set for positively homogeneous (scale-invariant) activations.
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


def _relu(x):
    return np.maximum(x, 0.0)


def _sigmoid(x):
    return special.expit(x)


def _gelu(x):
    return 0.5 * x * (1.0 + special.erf(x / _SQRT2))


def _gelu_d(x):
    return 0.5 * (1.0 + special.erf(x / _SQRT2)) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3)))


def _gelu_tanh_d(x):
    t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * _GELU_TANH_C * x * x)


def _spec(name: str, p: Mapping[str, float]) -> dict:
    """Numeric and symbolic definition of a built-in activation with parameters ``p``."""
    import_sp = _lazy_sympy
    if name == "identity":
        return dict(fn=lambda x: x + 0.0, deriv=lambda x: np.ones_like(x), parity="odd", slopes=(1.0, 1.0),
                    sympy_builder=lambda x: x)
    if name == "relu":
        return dict(fn=_relu, deriv=lambda x: (x > 0).astype(float), kinks=(0.0,), slopes=(1.0, 0.0),
                    sympy_builder=lambda x: import_sp().Max(x, 0))
    if name == "leaky_relu":
        a = p["slope"]
        return dict(fn=lambda x: np.where(x > 0, x, a * x), deriv=lambda x: np.where(x > 0, 1.0, a),
                    kinks=(0.0,), slopes=(1.0, a), parity={1.0: "odd", -1.0: "even"}.get(a),
                    sympy_builder=lambda x: import_sp().Piecewise((x, x > 0), (import_sp().nsimplify(a) * x, True)))
    if name == "abs":
        return dict(fn=np.abs, deriv=lambda x: np.where(x > 0, 1.0, -1.0), kinks=(0.0,), slopes=(1.0, -1.0),
                    parity="even", sympy_builder=lambda x: import_sp().Abs(x))
    if name == "step":
        return dict(fn=lambda x: (x > 0).astype(float), deriv=lambda x: np.zeros_like(x), kinks=(0.0,), jumps=(0.0,),
                    sympy_builder=lambda x: import_sp().Heaviside(x, 0))
    if name == "tanh":
        return dict(fn=np.tanh, deriv=lambda x: 1.0 - np.tanh(x) ** 2, parity="odd",
                    sympy_builder=lambda x: import_sp().tanh(x))
    if name == "erf":
        return dict(fn=special.erf, deriv=lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), parity="odd",
                    sympy_builder=lambda x: import_sp().erf(x))
    if name == "sigmoid":
        return dict(fn=_sigmoid, deriv=lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)),
                    sympy_builder=lambda x: 1 / (1 + import_sp().exp(-x)))
    if name == "gelu":
        return dict(fn=_gelu, deriv=_gelu_d,
                    sympy_builder=lambda x: x * (1 + import_sp().erf(x / import_sp().sqrt(2))) / 2)
    if name == "gelu_tanh":
        def b(x):
            sp = import_sp()
            return x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 1000000) * x**3))) / 2
        return dict(fn=_gelu_tanh, deriv=_gelu_tanh_d, sympy_builder=b)
    if name == "elu":
        a = p["alpha"]
        return dict(fn=lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
                    deriv=lambda x: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0.0))),
                    kinks=(0.0,),
                    sympy_builder=lambda x: import_sp().Piecewise(
                        (x, x > 0), (import_sp().nsimplify(a) * (import_sp().exp(x) - 1), True)))
    if name == "celu":
        a = p["alpha"]
        return dict(fn=lambda x: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0) / a)),
                    deriv=lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0) / a)),
                    kinks=(0.0,),
                    sympy_builder=lambda x: import_sp().Piecewise(
                        (x, x > 0),
                        (import_sp().nsimplify(a) * (import_sp().exp(x / import_sp().nsimplify(a)) - 1), True)))
    if name == "selu":
        return dict(fn=lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
                    deriv=lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
                    kinks=(0.0,),
                    sympy_builder=lambda x: import_sp().Float(SELU_SCALE, 30) * import_sp().Piecewise(
                        (x, x > 0), (import_sp().Float(SELU_ALPHA, 30) * (import_sp().exp(x) - 1), True)))
    if name == "softplus":
        return dict(fn=lambda x: np.logaddexp(0.0, x), deriv=_sigmoid,
                    sympy_builder=lambda x: import_sp().log(1 + import_sp().exp(x)))
    if name == "silu":
        return dict(fn=lambda x: x * _sigmoid(x), deriv=lambda x: _sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))),
                    sympy_builder=lambda x: x / (1 + import_sp().exp(-x)))
    if name == "exp":
        return dict(fn=np.exp, deriv=np.exp, sympy_builder=lambda x: import_sp().exp(x))
    if name == "sin":
        return dict(fn=np.sin, deriv=np.cos, parity="odd", sympy_builder=lambda x: import_sp().sin(x))
    if name == "cos":
        return dict(fn=np.cos, deriv=lambda x: -np.sin(x), parity="even", sympy_builder=lambda x: import_sp().cos(x))
    raise AssertionError(name)


def _lazy_sympy():
    import sympy

    return sympy


# name -> {parameter: (default, (low, high))}: the value must be finite and strictly inside (low, high).
_PARAMS: dict[str, dict[str, tuple[float, tuple[float, float]]]] = {
    "leaky_relu": {"slope": (0.01, (-math.inf, math.inf))},
    "elu": {"alpha": (1.0, (0.0, math.inf))},
    "celu": {"alpha": (1.0, (0.0, math.inf))},
}
ACTIVATION_NAMES: tuple[str, ...] = tuple(CODES)


def _make_scalar(code: int, p0: float, p1: float):
    @numba.njit(inline="always")
    def scalar(x):
        return device_activation(code, x, p0, p1)

    @numba.njit(inline="always")
    def scalar_d(x):
        return device_derivative(code, x, p0, p1)

    return scalar, scalar_d


def activation(name: str | Activation, **params: float) -> Activation:
    """The built-in activation ``name`` with parameters, e.g. ``activation('leaky_relu', slope=0.2)``.

    Known names: identity, relu, leaky_relu(slope), abs, step, tanh, erf, sigmoid, gelu (erf form),
    gelu_tanh, elu(alpha), celu(alpha), selu, softplus, silu, exp, sin, cos.  An ``Activation`` passed
    in is returned unchanged (and must then come with no parameters).

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
    key = name.strip().lower().replace("-", "_")
    aliases = {"linear": "identity", "lrelu": "leaky_relu", "swish": "silu", "heaviside": "step"}
    key = aliases.get(key, key)
    if key not in CODES:
        raise InputError(f"activation: unknown name {name!r}; known: {', '.join(ACTIVATION_NAMES)}")
    allowed = _PARAMS.get(key, {})
    unknown = set(params) - set(allowed)
    if unknown:
        taken = ", ".join(allowed) if allowed else "no parameters"
        raise InputTypeError(f"activation {key!r} does not take parameter(s) {sorted(unknown)}; it takes {taken}")
    p: dict[str, float] = {}
    for pname, (default, (lo, hi)) in allowed.items():
        v = params.get(pname, default)
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"activation {key!r}: parameter {pname} must be a real number, got {v!r}")
        v = float(v)
        if not math.isfinite(v) or not lo < v < hi:
            raise InputError(f"activation {key!r}: parameter {pname}={v!r} must be finite and in ({lo}, {hi})")
        p[pname] = v
    spec = _spec(key, p)
    code = CODES[key]
    dev = tuple(p.values()) + (0.0,) * (2 - len(p))
    scalar, scalar_d = _make_scalar(code, float(dev[0]), float(dev[1]))
    return Activation(name=key, params=tuple(p.items()), code=code, device_params=(float(dev[0]), float(dev[1])),
                      scalar=scalar, scalar_deriv=scalar_d, **spec)


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
