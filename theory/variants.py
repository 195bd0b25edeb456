"""Residual and normalisation variants of a kernel map, each a kernel map in its own right.

* residual branch ``h = sqrt(1-r^2) phi(...) + r S h_prev / sqrt(n)``:
  ``kappa_res(rho) = (1-r^2) kappa(rho) + r^2 rho``;
* normalisation (docs/conventions.md strings): ``'rms_pre'`` (phi o RMSNorm), ``'ln_pre'`` (phi o LayerNorm) and
  ``'rms_post'`` (RMSNorm o phi) leave kappa unchanged in the mean-field limit; ``'ln_post'`` (LayerNorm o phi)
  gives the centred map ``(kappa(rho) - kappa(0)) / (1 - kappa(0))``.
``kernel_map(act, residual, norm)`` composes them as the network does: normalisation inside the residual branch.
"""
from __future__ import annotations

import math

import numpy as np

from sigprop.theory.errors import InputError

from .activations import Activation
from .kernel_map import KernelMap, KernelMapBase

__all__ = ["NORMS", "ResidualKernelMap", "LayerNormPostKernelMap", "kernel_map"]

NORMS = (None, "rms_pre", "ln_pre", "rms_post", "ln_post")


class ResidualKernelMap(KernelMapBase):
    """kappa_res(rho) = (1 - r^2) kappa(rho) + r^2 rho for a base kernel map and residual weight 0 <= r < 1."""

    def __init__(self, base: KernelMapBase, residual: float):
        r = float(residual)
        if not (math.isfinite(r) and 0.0 <= r < 1.0):
            raise InputError(f"residual must be in [0, 1), got {residual!r} (r = 1 is the identity map)")
        self.base = base
        self.residual = r
        w = 1.0 - r * r
        self._w = w
        self.kappa0 = w * base.kappa0
        self.kappa_prime0 = w * base.kappa_prime0 + r * r
        self.kappa_prime1 = w * base.kappa_prime1 + r * r
        self.activation = getattr(base, "activation", None)

    def _eval(self, rho: np.ndarray, order: int) -> np.ndarray:
        b = self.base._eval(rho, order)
        r2 = self.residual ** 2
        if order == 0:
            return np.where(rho == 1.0, 1.0, self._w * b + r2 * rho)
        if order == 1:
            return self._w * b + r2
        return self._w * b

    def __repr__(self) -> str:
        return f"ResidualKernelMap({self.base!r}, r={self.residual:g})"


class LayerNormPostKernelMap(KernelMapBase):
    """LayerNorm o phi in the mean-field limit: (kappa(rho) - kappa(0)) / (1 - kappa(0)) (needs kappa(0) < 1)."""

    def __init__(self, base: KernelMapBase):
        k0 = float(base.kappa0)
        if not k0 < 1.0 - 1e-12:
            raise InputError("ln_post: kappa(0) = 1 (phi is constant), LayerNorm of a constant is undefined")
        self.base = base
        self._s = 1.0 - k0
        self._k0 = k0
        self.kappa0 = 0.0
        self.kappa_prime0 = base.kappa_prime0 / self._s
        self.kappa_prime1 = base.kappa_prime1 / self._s
        self.activation = getattr(base, "activation", None)

    def _eval(self, rho: np.ndarray, order: int) -> np.ndarray:
        b = self.base._eval(rho, order)
        if order == 0:
            return np.where(rho == 1.0, 1.0, (b - self._k0) / self._s)
        return b / self._s

    def __repr__(self) -> str:
        return f"LayerNormPostKernelMap({self.base!r})"


def kernel_map(act: str | Activation | KernelMapBase, residual: float = 0.0, norm: str | None = None) -> KernelMapBase:
    """The kernel map of a layer with activation ``act``, residual weight ``residual`` and normalisation ``norm``
    (None, 'rms_pre', 'ln_pre', 'rms_post', 'ln_post').  Returns a plain :class:`KernelMap` when residual = 0
    and norm is None (or only changes nothing in the mean-field limit)."""
    if norm not in NORMS:
        raise InputError(f"kernel_map: norm must be one of {NORMS}, got {norm!r}")
    r = float(residual) if not isinstance(residual, bool) else math.nan
    if not (math.isfinite(r) and 0.0 <= r < 1.0):
        raise InputError(f"kernel_map: residual must be in [0, 1), got {residual!r}")
    km = act if isinstance(act, KernelMapBase) else KernelMap(act)
    if norm == "ln_post":
        km = LayerNormPostKernelMap(km)
    if r > 0.0:
        km = ResidualKernelMap(km, r)
    return km
