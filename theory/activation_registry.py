"""The built-in activations: one :class:`ActivationEntry` each, holding every fact the package knows about it.

An entry gives the NumPy function and derivative, the SymPy expression, the kinks and jumps, the parity, the
parameters with their ranges, the device scalar formulas and, where they exist, the closed-form kernel map
(:mod:`sigprop.theory.pair_formulas`), the exact Hermite coefficients (:mod:`sigprop.theory.hermite_integrals`) and the
exponential-linear pieces (:mod:`sigprop.theory.semi_analytic`).  :func:`sigprop.theory.activation` makes an
:class:`~sigprop.theory.activations.Activation` from an entry; the theory modules read the optional facts from it,
and the compiled engines build their device switch over every entry's ``code`` and scalar formulas
(``sigprop.kernels.device_activations``).  Adding an activation is adding one entry to :data:`REGISTRY` (plus a
new closed form or exact coefficients where those are truly new); docs/theory.md shows how.

Conventions.  Facts that depend on the parameters are functions of them, called with the parameters as keyword
arguments (``fn(x, slope=0.2)``, ``closed_form(slope=0.2)``); with no parameters a plain one-argument function
such as ``np.tanh`` serves.  The scalar formulas take ``(x, p0, p1)``, the parameters in declaration order padded
with 0.0, and use only ``math`` and arithmetic on floats: numba compiles each one on its own (so a formula calls no
helper function of this module; the sigmoid is written out where it is needed).  Kinks take the left one-sided
slope in both derivatives, so the NumPy and device derivatives agree exactly there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
from scipy import special

from sigprop.theory.errors import InputError

from .hermite_integrals import (
    erf_hermite,
    exact_float,
    exact_number,
    exp_linear_hermite,
    gelu_hermite,
    piecewise_hermite,
    trig_hermite,
)
from .pair_formulas import COS, ERF, EXP, GELU, SIN, STEP, ClosedForm, piecewise_linear

__all__ = ["Param", "ActivationEntry", "REGISTRY", "entry_named", "check_registry", "SELU_ALPHA", "SELU_SCALE"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715
_INF = math.inf


@dataclass(frozen=True)
class Param:
    """A parameter of a built-in activation: its default and the open interval ``(low, high)`` it must lie in
    (it must also be finite)."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class ActivationEntry:
    """Everything known about one built-in activation.

    Attributes
    ----------
    name : str
        The name :func:`sigprop.theory.activation` takes.
    code : int
        The device code, compiled into the engines' switch; the entries' codes are 0, 1, 2, ... in
        :data:`REGISTRY` order and never change.
    fn, deriv : callable
        ``fn(x, **params)`` = phi and ``deriv(x, **params)`` = phi' on float64 arrays (phi' at a kink: the left
        one-sided slope; 0 at a jump).
    sympy : callable
        ``sympy(x, **params)``: the SymPy expression of phi in the SymPy symbol ``x``.
    scalar, scalar_deriv : callable
        ``scalar(x, p0, p1)`` = phi and ``scalar_deriv(x, p0, p1)`` = phi' on one float, numba-compilable and
        self-contained; the same floating-point operations as the device code of the engines.
    params : tuple of Param
        At most two (they travel to the device as ``p0``, ``p1``).
    kinks, jumps : tuple of float
        Points where phi is not smooth, and the subset where it is discontinuous.
    parity : {'odd', 'even', None} or callable
        Or ``parity(**params)`` when it depends on them.
    slopes : (float, float) or None or callable
        ``(a_plus, a_minus)`` for a positively homogeneous phi, or ``slopes(**params)``.
    closed_form : ClosedForm or None or callable
        The closed-form Gaussian expectations, or ``closed_form(**params)``.
    hermite : callable or None
        ``hermite(kmax, **params)``: the exact Hermite coefficients c_0..c_kmax as SymPy expressions.
    exp_linear : callable or None
        ``exp_linear(**params)`` = ``(s, a, b)`` when phi = s x for x > 0 and s a (e^(b x) - 1) for x < 0.
    aliases : tuple of str
        Other names accepted for this activation.

    Examples
    --------
    >>> e = entry_named("leaky_relu")
    >>> e.code, [p.name for p in e.params], e.slopes_at({"slope": 0.2}), e.scalar(-2.0, 0.2, 0.0)
    (2, ['slope'], (1.0, 0.2), -0.4)
    """

    name: str
    code: int
    fn: Callable[..., np.ndarray]
    deriv: Callable[..., np.ndarray]
    sympy: Callable[..., Any]
    scalar: Callable[[float, float, float], float]
    scalar_deriv: Callable[[float, float, float], float]
    params: tuple[Param, ...] = ()
    kinks: tuple[float, ...] = ()
    jumps: tuple[float, ...] = ()
    parity: str | None | Callable[..., str | None] = None
    slopes: tuple[float, float] | None | Callable[..., tuple[float, float]] = None
    closed_form: ClosedForm | None | Callable[..., ClosedForm] = None
    hermite: Callable[..., list] | None = None
    exp_linear: Callable[..., tuple[float, float, float]] | None = None
    aliases: tuple[str, ...] = ()

    def parity_at(self, params: Mapping[str, float]) -> str | None:
        """The parity for the parameter values ``params``."""
        return _at(self.parity, params)

    def slopes_at(self, params: Mapping[str, float]) -> tuple[float, float] | None:
        """The slopes ``(a_plus, a_minus)`` for the parameter values ``params`` (None if not homogeneous)."""
        return _at(self.slopes, params)

    def closed_form_at(self, params: Mapping[str, float]) -> ClosedForm | None:
        """The :class:`~sigprop.theory.pair_formulas.ClosedForm` for the parameter values ``params``, or None."""
        return _at(self.closed_form, params)


def _at(value, params: Mapping[str, float]):
    return value(**params) if callable(value) else value


def _sp():
    import sympy

    return sympy


# --------------------------------------------------------------------------------------------
# identity, relu, leaky_relu, abs
# --------------------------------------------------------------------------------------------
IDENTITY = ActivationEntry(
    name="identity", code=0, aliases=("linear",),
    fn=lambda x: x + 0.0, deriv=lambda x: np.ones_like(x), sympy=lambda x: x,
    scalar=lambda x, p0, p1: x, scalar_deriv=lambda x, p0, p1: 1.0,
    parity="odd", slopes=(1.0, 1.0), closed_form=piecewise_linear(1.0, 1.0),
    hermite=lambda kmax: piecewise_hermite([(1, 1, 0, -_INF, _INF)], kmax),
)

RELU = ActivationEntry(
    name="relu", code=1,
    fn=lambda x: np.maximum(x, 0.0), deriv=lambda x: (x > 0).astype(float), sympy=lambda x: _sp().Max(x, 0),
    scalar=lambda x, p0, p1: 0.0 if x <= 0.0 else x,  # NaN propagates, as in np.maximum(x, 0)
    scalar_deriv=lambda x, p0, p1: 1.0 if x > 0.0 else 0.0,
    kinks=(0.0,), slopes=(1.0, 0.0), closed_form=piecewise_linear(1.0, 0.0),
    hermite=lambda kmax: piecewise_hermite([(1, 1, 0, 0, _INF)], kmax),
)


def _leaky_sympy(x, slope):
    sp = _sp()
    return sp.Piecewise((x, x > 0), (sp.nsimplify(slope) * x, True))


LEAKY_RELU = ActivationEntry(
    name="leaky_relu", code=2, aliases=("lrelu",), params=(Param("slope", 0.01),),
    fn=lambda x, slope: np.where(x > 0, x, slope * x), deriv=lambda x, slope: np.where(x > 0, 1.0, slope),
    sympy=_leaky_sympy,
    scalar=lambda x, p0, p1: x if x > 0.0 else p0 * x, scalar_deriv=lambda x, p0, p1: 1.0 if x > 0.0 else p0,
    kinks=(0.0,), parity=lambda slope: {1.0: "odd", -1.0: "even"}.get(slope), slopes=lambda slope: (1.0, slope),
    closed_form=lambda slope: piecewise_linear(1.0, slope),
    hermite=lambda kmax, slope: piecewise_hermite([(1, 1, 0, 0, _INF), (exact_number(slope), 1, 0, -_INF, 0)],
                                                  kmax),
)

ABS = ActivationEntry(
    name="abs", code=3,
    fn=np.abs, deriv=lambda x: np.where(x > 0, 1.0, -1.0), sympy=lambda x: _sp().Abs(x),
    scalar=lambda x, p0, p1: abs(x), scalar_deriv=lambda x, p0, p1: 1.0 if x > 0.0 else -1.0,
    kinks=(0.0,), parity="even", slopes=(1.0, -1.0), closed_form=piecewise_linear(1.0, -1.0),
    hermite=lambda kmax: piecewise_hermite([(1, 1, 0, 0, _INF), (-1, 1, 0, -_INF, 0)], kmax),
)


# --------------------------------------------------------------------------------------------
# tanh, erf, sigmoid
# --------------------------------------------------------------------------------------------
def _tanh_ds(x, p0, p1):
    t = math.tanh(x)
    return 1.0 - t * t


TANH = ActivationEntry(
    name="tanh", code=4,
    fn=np.tanh, deriv=lambda x: 1.0 - np.tanh(x) ** 2, sympy=lambda x: _sp().tanh(x),
    scalar=lambda x, p0, p1: math.tanh(x), scalar_deriv=_tanh_ds,
    parity="odd",
)

ERF_ENTRY = ActivationEntry(
    name="erf", code=5,
    fn=special.erf, deriv=lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x), sympy=lambda x: _sp().erf(x),
    scalar=lambda x, p0, p1: math.erf(x), scalar_deriv=lambda x, p0, p1: 1.1283791670955126 * math.exp(-x * x),
    parity="odd", closed_form=ERF, hermite=lambda kmax: erf_hermite(kmax),
)


def _sigmoid_s(x, p0, p1):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sigmoid_ds(x, p0, p1):
    if x >= 0.0:
        s = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1.0 + e)
    return s * (1.0 - s)


SIGMOID = ActivationEntry(
    name="sigmoid", code=6,
    fn=special.expit, deriv=lambda x: special.expit(x) * (1.0 - special.expit(x)),
    sympy=lambda x: 1 / (1 + _sp().exp(-x)),
    scalar=_sigmoid_s, scalar_deriv=_sigmoid_ds,
)


# --------------------------------------------------------------------------------------------
# gelu, gelu_tanh
# --------------------------------------------------------------------------------------------
def _gelu(x):
    return 0.5 * x * (1.0 + special.erf(x / _SQRT2))


def _gelu_d(x):
    return 0.5 * (1.0 + special.erf(x / _SQRT2)) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _gelu_sympy(x):
    sp = _sp()
    return x * (1 + sp.erf(x / sp.sqrt(2))) / 2


GELU_ENTRY = ActivationEntry(
    name="gelu", code=7,
    fn=_gelu, deriv=_gelu_d, sympy=_gelu_sympy,
    scalar=lambda x, p0, p1: 0.5 * x * (1.0 + math.erf(x / 1.4142135623730951)),
    scalar_deriv=lambda x, p0, p1: (0.5 * (1.0 + math.erf(x / 1.4142135623730951))
                                    + x * 0.3989422804014327 * math.exp(-0.5 * x * x)),
    closed_form=GELU, hermite=lambda kmax: gelu_hermite(kmax),
)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3)))


def _gelu_tanh_d(x):
    t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x**3))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3 * _GELU_TANH_C * x * x)


def _gelu_tanh_sympy(x):
    sp = _sp()
    return x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 1000000) * x**3))) / 2


def _gelu_tanh_ds(x, p0, p1):
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    t = math.tanh(u)
    du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du


GELU_TANH = ActivationEntry(
    name="gelu_tanh", code=8,
    fn=_gelu_tanh, deriv=_gelu_tanh_d, sympy=_gelu_tanh_sympy,
    scalar=lambda x, p0, p1: 0.5 * x * (1.0 + math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
    scalar_deriv=_gelu_tanh_ds,
)


# --------------------------------------------------------------------------------------------
# elu, celu, selu: exponential-linear, s x for x > 0 and s a (e^(b x) - 1) for x < 0
# --------------------------------------------------------------------------------------------
def _elu_sympy(x, alpha):
    sp = _sp()
    return sp.Piecewise((x, x > 0), (sp.nsimplify(alpha) * (sp.exp(x) - 1), True))


ELU = ActivationEntry(
    name="elu", code=9, params=(Param("alpha", 1.0, 0.0),),
    fn=lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0))),
    deriv=lambda x, alpha: np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0))),
    sympy=_elu_sympy,
    scalar=lambda x, p0, p1: x if x > 0.0 else p0 * math.expm1(x),
    scalar_deriv=lambda x, p0, p1: 1.0 if x > 0.0 else p0 * math.exp(x),
    kinks=(0.0,), exp_linear=lambda alpha: (1.0, alpha, 1.0),
    hermite=lambda kmax, alpha: exp_linear_hermite(1, exact_number(alpha), 1, kmax),
)


def _celu_sympy(x, alpha):
    sp = _sp()
    return sp.Piecewise((x, x > 0), (sp.nsimplify(alpha) * (sp.exp(x / sp.nsimplify(alpha)) - 1), True))


def _celu_hermite(kmax, alpha):
    a = exact_number(alpha)
    return exp_linear_hermite(1, a, 1 / a, kmax)


CELU = ActivationEntry(
    name="celu", code=10, params=(Param("alpha", 1.0, 0.0),),
    fn=lambda x, alpha: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0) / alpha)),
    deriv=lambda x, alpha: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0.0) / alpha)),
    sympy=_celu_sympy,
    scalar=lambda x, p0, p1: x if x > 0.0 else p0 * math.expm1(x / p0),
    scalar_deriv=lambda x, p0, p1: 1.0 if x > 0.0 else math.exp(x / p0),
    kinks=(0.0,), exp_linear=lambda alpha: (1.0, alpha, 1.0 / alpha), hermite=_celu_hermite,
)


def _selu_sympy(x):
    sp = _sp()
    return sp.Float(SELU_SCALE, 30) * sp.Piecewise((x, x > 0), (sp.Float(SELU_ALPHA, 30) * (sp.exp(x) - 1), True))


SELU = ActivationEntry(
    name="selu", code=11,
    fn=lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0.0))),
    deriv=lambda x: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0.0))),
    sympy=_selu_sympy,
    scalar=lambda x, p0, p1: 1.0507009873554805 * (x if x > 0.0 else 1.6732632423543772 * math.expm1(x)),
    scalar_deriv=lambda x, p0, p1: 1.0507009873554805 * (1.0 if x > 0.0 else 1.6732632423543772 * math.exp(x)),
    kinks=(0.0,), exp_linear=lambda: (SELU_SCALE, SELU_ALPHA, 1.0),
    hermite=lambda kmax: exp_linear_hermite(exact_float(SELU_SCALE), exact_float(SELU_ALPHA), 1, kmax),
)


# --------------------------------------------------------------------------------------------
# softplus, silu
# --------------------------------------------------------------------------------------------
SOFTPLUS = ActivationEntry(
    name="softplus", code=12,
    fn=lambda x: np.logaddexp(0.0, x), deriv=special.expit, sympy=lambda x: _sp().log(1 + _sp().exp(x)),
    scalar=lambda x, p0, p1: max(x, 0.0) + math.log1p(math.exp(-abs(x))), scalar_deriv=_sigmoid_s,
)


def _silu_s(x, p0, p1):
    if x >= 0.0:
        s = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1.0 + e)
    return x * s


def _silu_ds(x, p0, p1):
    if x >= 0.0:
        s = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1.0 + e)
    return s * (1.0 + x * (1.0 - s))


SILU = ActivationEntry(
    name="silu", code=13, aliases=("swish",),
    fn=lambda x: x * special.expit(x), deriv=lambda x: special.expit(x) * (1.0 + x * (1.0 - special.expit(x))),
    sympy=lambda x: x / (1 + _sp().exp(-x)),
    scalar=_silu_s, scalar_deriv=_silu_ds,
)


# --------------------------------------------------------------------------------------------
# exp, sin, cos, step
# --------------------------------------------------------------------------------------------
EXP_ENTRY = ActivationEntry(
    name="exp", code=14,
    fn=np.exp, deriv=np.exp, sympy=lambda x: _sp().exp(x),
    scalar=lambda x, p0, p1: math.exp(x), scalar_deriv=lambda x, p0, p1: math.exp(x),
    closed_form=EXP, hermite=lambda kmax: piecewise_hermite([(1, 0, 1, -_INF, _INF)], kmax),
)

SIN_ENTRY = ActivationEntry(
    name="sin", code=15,
    fn=np.sin, deriv=np.cos, sympy=lambda x: _sp().sin(x),
    scalar=lambda x, p0, p1: math.sin(x), scalar_deriv=lambda x, p0, p1: math.cos(x),
    parity="odd", closed_form=SIN, hermite=lambda kmax: trig_hermite("sin", kmax),
)

COS_ENTRY = ActivationEntry(
    name="cos", code=16,
    fn=np.cos, deriv=lambda x: -np.sin(x), sympy=lambda x: _sp().cos(x),
    scalar=lambda x, p0, p1: math.cos(x), scalar_deriv=lambda x, p0, p1: -math.sin(x),
    parity="even", closed_form=COS, hermite=lambda kmax: trig_hermite("cos", kmax),
)

STEP_ENTRY = ActivationEntry(
    name="step", code=17, aliases=("heaviside",),
    fn=lambda x: (x > 0).astype(float), deriv=lambda x: np.zeros_like(x), sympy=lambda x: _sp().Heaviside(x, 0),
    scalar=lambda x, p0, p1: 1.0 if x > 0.0 else 0.0, scalar_deriv=lambda x, p0, p1: 0.0,
    kinks=(0.0,), jumps=(0.0,), closed_form=STEP, hermite=lambda kmax: piecewise_hermite([(1, 0, 0, 0, _INF)], kmax),
)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------
REGISTRY: tuple[ActivationEntry, ...] = (
    IDENTITY, RELU, LEAKY_RELU, ABS, TANH, ERF_ENTRY, SIGMOID, GELU_ENTRY, GELU_TANH, ELU, CELU, SELU, SOFTPLUS,
    SILU, EXP_ENTRY, SIN_ENTRY, COS_ENTRY, STEP_ENTRY,
)


def check_registry(entries: tuple[ActivationEntry, ...]) -> None:
    """ValueError unless the entries' codes are 0, 1, 2, ... in order, names and aliases are unique, every entry
    has at most two parameters with a default inside its range, and kinks include the jumps.

    Examples
    --------
    >>> check_registry(REGISTRY)
    >>> check_registry((RELU,))
    Traceback (most recent call last):
        ...
    sigprop.theory.errors.InputError: activation registry: entry 'relu' has code 1, expected 0 ...
    """
    seen: set[str] = set()
    for i, e in enumerate(entries):
        if e.code != i:
            raise InputError(f"activation registry: entry {e.name!r} has code {e.code}, expected {i} "
                             "(codes are 0, 1, 2, ... in order)")
        for n in (e.name, *e.aliases):
            if n in seen:
                raise InputError(f"activation registry: name {n!r} is used twice")
            seen.add(n)
        if len(e.params) > 2:
            raise InputError(f"activation registry: entry {e.name!r} has {len(e.params)} parameters; the device "
                             "code carries at most two")
        for p in e.params:
            if not (math.isfinite(p.default) and p.low < p.default < p.high):
                raise InputError(f"activation registry: {e.name!r} parameter {p.name} default {p.default} is not "
                                 f"inside ({p.low}, {p.high})")
        if not set(e.jumps) <= set(e.kinks):
            raise InputError(f"activation registry: entry {e.name!r} has jumps {e.jumps} not among its kinks")


check_registry(REGISTRY)

_BY_NAME: dict[str, ActivationEntry] = {n: e for e in REGISTRY for n in (e.name, *e.aliases)}


def entry_named(name: str) -> ActivationEntry | None:
    """The entry whose name or alias is ``name`` (exact match; callers normalise case), or None.

    Examples
    --------
    >>> entry_named("swish").name, entry_named("nope")
    ('silu', None)
    """
    return _BY_NAME.get(name)
