"""An activation's closed-form Gaussian pair expectations, read from its registry entry.

For ``(u_a, u_b) ~ N(0, K)`` with ``K = [[Kaa, Kab], [Kab, Kbb]]``:

* ``pair_form(act)(Kaa, Kab, Kbb)`` = <phi(u_a) phi(u_b)>_K and ``pair_deriv_form(act)`` = <phi'(u_a) phi'(u_b)>_K
  (general variances; used by :mod:`sigprop.theory.meanfield`);
* ``unit_form(act)(rho, order)`` = d^order/drho^order E[phi(X) phi(Y)] for unit-variance X, Y with correlation rho,
  unnormalised, orders 0, 1, 2 (used by :class:`sigprop.theory.KernelMap`).

The formulas are in :mod:`sigprop.theory.pair_formulas`; a built-in's registry entry
(:mod:`sigprop.theory.activation_registry`) names its own.  Every function returns None when the activation has
no closed form (custom activations never do).
"""
from __future__ import annotations

from typing import Callable

from .activations import Activation
from .pair_formulas import ClosedForm

__all__ = ["closed_form_of", "piecewise_linear_slopes", "pair_form", "pair_deriv_form", "unit_form"]


def closed_form_of(act: Activation) -> ClosedForm | None:
    """The :class:`~sigprop.theory.pair_formulas.ClosedForm` of a built-in's registry entry at its parameters,
    or None.

    Examples
    --------
    >>> from sigprop.theory.activations import activation
    >>> closed_form_of(activation("leaky_relu", slope=0.2)).slopes, closed_form_of(activation("tanh"))
    ((1.0, 0.2), None)
    """
    if act.entry is None:
        return None
    return act.entry.closed_form_at(act.param_dict)


def piecewise_linear_slopes(act: Activation) -> tuple[float, float] | None:
    """(b, a) = (slope for x > 0, slope for x < 0) when phi = b max(x,0) + a min(x,0), else None."""
    form = closed_form_of(act)
    return None if form is None else form.slopes


def unit_form(act: Activation) -> Callable | None:
    """``f(rho, order)`` = d^order/drho^order E[phi(X) phi(Y)] (unit variances, unnormalised), or None."""
    form = closed_form_of(act)
    return None if form is None else form.unit


def pair_form(act: Activation) -> Callable | None:
    """``f(Kaa, Kab, Kbb)`` = <phi(u_a) phi(u_b)>_K (vectorised), or None when no closed form is known."""
    form = closed_form_of(act)
    return None if form is None else form.pair


def pair_deriv_form(act: Activation) -> Callable | None:
    """``f(Kaa, Kab, Kbb)`` = <phi'(u_a) phi'(u_b)>_K (vectorised), or None.  phi'(0) is the left slope
    (the convention of ``Activation.derivative``), which matters only when a variance is exactly 0."""
    form = closed_form_of(act)
    return None if form is None else form.pair_deriv
