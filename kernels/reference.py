"""Plain NumPy reference of the explicit-weight network (small and obviously correct; slow).

It draws each layer's full weight matrix (and the bias, skip and readout vectors) with the same
counter-based numbers as the compiled kernels, but from the plain NumPy twin of the generator
(:func:`sigprop.kernels.rng_numpy.draws_numpy`, written here ``draws``/``normals``) instead of the compiled
:func:`sigprop.kernels.rng.draws`: the reference is NumPy only, and ``run_explicit == run_reference`` up to
rounding checks the compiled generator as well as the compiled engines (uniform and Rademacher weights are
bit-identical, Gaussian numbers equal to rounding).  Definitions (docs/conventions.md), for network id
``net`` and layer ``l = 1..L`` (``n_0`` = input dimension):

    W^(l)  = sqrt(C_W / n_{l-1}) * draws(weights, seed, STREAM_WEIGHTS, net, l, n_l, n_{l-1})
    b^(l)  = sqrt(C_b) * normals(seed, STREAM_BIAS, net, l, 1, n_l)[0]
    S^(l)  = normals(seed, STREAM_SKIP, net, l, n_l, n_{l-1})
    z^(l)  = W^(l) h^(l-1) + b^(l),   h^(0) = x
    h^(l)  = sqrt(1 - r^2) POST(phi(PRE(z^(l)))) + r S^(l) h^(l-1) / sqrt(n_{l-1})
    v      = normals(seed, STREAM_READOUT, net, L + 1, 1, n_L)[0],   f = v . phi(z^(L)) / sqrt(n_L)
    delta^(L) = v * phi'(z^(L)) / sqrt(n_L),   delta^(l) = phi'(z^(l)) * (W^(l+1)^T delta^(l+1))

Statistics (float64; S networks, L layers, P inputs; array index l <-> layer l + 1):
    preact_gram[s, l] = z^T z / n,  postact_gram[s, l] = h^T h / n,  preact_m2/m4[s, l, a] = mean_i z_ia^2 / z_ia^4,
    backward_gram[s, l] = delta^T delta,  tangent_gram[s, l] = (C_b + C_W H^(l)) o backward_gram[s, l],
    H^(0) = X X^T / n_0, H^(l) = postact_gram[s, l - 1].
"""
from __future__ import annotations

import math

import numpy as np

from sigprop.theory.activations import Activation

from . import rng
from .layer_ops import NORM_CODES
from .rng_numpy import draws_numpy, normals_numpy

__all__ = ["run_reference", "check_explicit_args", "STAT_KEYS", "BACKWARD_KEYS"]

STAT_KEYS = ("preact_gram", "postact_gram", "preact_m2", "preact_m4")
BACKWARD_KEYS = ("backward_gram", "tangent_gram")


def check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                        first_network=0, act=None) -> tuple[np.ndarray, tuple[int, ...]]:
    """Validate the arguments shared by the explicit-weight engines; return (X as float64 array, widths)."""
    if act is not None and not isinstance(act, Activation):
        raise TypeError(f"act must be an Activation (sigprop.theory.activations.activation(...)), got {act!r}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be a (P, n_0) array with P, n_0 >= 1, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite")
    try:
        widths = tuple(int(w) for w in widths)
    except TypeError:
        raise TypeError(f"widths must be a sequence of positive ints, got {widths!r}") from None
    if len(widths) < 1 or any(w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty sequence of ints >= 1, got {widths!r}")
    if len(widths) + 1 >= 2**24:
        raise ValueError(f"depth len(widths) must be < 2^24 - 1, got {len(widths)}")
    for name, v in (("C_W", C_W), ("C_b", C_b)):
        if not (isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if isinstance(n_networks, bool) or not isinstance(n_networks, (int, np.integer)) or n_networks < 1:
        raise ValueError(f"n_networks must be an int >= 1, got {n_networks!r}")
    if isinstance(first_network, bool) or not isinstance(first_network, (int, np.integer)) or first_network < 0 \
            or first_network + n_networks > 2**32:
        raise ValueError(f"first_network must be an int >= 0 with first_network + n_networks <= 2^32, "
                         f"got {first_network!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be an int in [0, 2^64), got {seed!r}")
    if weights not in rng.WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {sorted(rng.WEIGHT_KINDS)}, got {weights!r}")
    if not (isinstance(residual, (int, float, np.integer, np.floating)) and 0.0 <= residual <= 1.0):
        raise ValueError(f"residual must be a number in [0, 1], got {residual!r}")
    if norm not in NORM_CODES:
        raise ValueError(f"norm must be one of None, 'rms_pre', 'ln_pre', 'rms_post', 'ln_post', got {norm!r}")
    if norm in ("ln_pre", "ln_post") and min(widths) < 2:
        raise ValueError(f"norm={norm!r} (LayerNorm) needs every width >= 2, got widths={widths!r}")
    if backward and (residual != 0.0 or norm is not None):
        raise ValueError(f"backward=True needs residual=0 and norm=None, got residual={residual!r}, norm={norm!r}")
    return X, widths


def _normalize(a: np.ndarray, centre: bool) -> np.ndarray:
    """Normalise each column (input) across the neurons (rows): (a - mu) / sqrt(mean (a - mu)^2)."""
    mu = a.mean(axis=0, keepdims=True) if centre else 0.0
    d = a - mu
    return d / np.sqrt((d * d).mean(axis=0, keepdims=True))


def run_reference(X, widths, act, C_W, C_b, n_networks, seed, weights="gaussian", residual=0.0, norm=None,
                  backward=False, first_network=0) -> dict[str, np.ndarray]:
    """Explicit-weight statistics by dense NumPy matrix products (see the module docstring)."""
    X, widths = check_explicit_args(X, widths, C_W, C_b, n_networks, seed, weights, residual, norm, backward,
                                    first_network, act)
    P, n0 = X.shape
    L = len(widths)
    S = int(n_networks)
    out = {"preact_gram": np.zeros((S, L, P, P)), "postact_gram": np.zeros((S, L, P, P)),
           "preact_m2": np.zeros((S, L, P)), "preact_m4": np.zeros((S, L, P))}
    if backward:
        out["backward_gram"] = np.zeros((S, L, P, P))
    where, centre = NORM_CODES[norm]
    r = float(residual)
    for s in range(S):
        net = int(first_network) + s
        h = X.T.copy()  # (n_prev, P)
        zs = []
        for l in range(1, L + 1):
            n_prev, n = h.shape[0], widths[l - 1]
            W = math.sqrt(C_W / n_prev) * draws_numpy(weights, seed, rng.STREAM_WEIGHTS, net, l, n, n_prev)
            b = math.sqrt(C_b) * normals_numpy(seed, rng.STREAM_BIAS, net, l, 1, n)[0]
            z = W @ h + b[:, None]
            zs.append(z)
            out["preact_gram"][s, l - 1] = z.T @ z / n
            out["preact_m2"][s, l - 1] = (z**2).mean(axis=0)
            out["preact_m4"][s, l - 1] = (z**4).mean(axis=0)
            u = _normalize(z, centre) if where == 1 else z
            a = act.fn(u)
            p = _normalize(a, centre) if where == 2 else a
            h_new = math.sqrt(1.0 - r * r) * p
            if r != 0.0:
                Sk = normals_numpy(seed, rng.STREAM_SKIP, net, l, n, n_prev)
                h_new = h_new + r * (Sk @ h) / math.sqrt(n_prev)
            h = h_new
            out["postact_gram"][s, l - 1] = h.T @ h / n
        if backward:
            nL = widths[-1]
            v = normals_numpy(seed, rng.STREAM_READOUT, net, L + 1, 1, nL)[0]
            delta = v[:, None] * act.deriv(zs[-1]) / math.sqrt(nL)
            out["backward_gram"][s, L - 1] = delta.T @ delta
            for l in range(L - 1, 0, -1):  # delta^(l) from delta^(l+1), W^(l+1) regenerated
                n_l, n_next = widths[l - 1], widths[l]
                W = math.sqrt(C_W / n_l) * draws_numpy(weights, seed, rng.STREAM_WEIGHTS, net, l + 1, n_next, n_l)
                delta = act.deriv(zs[l - 1]) * (W.T @ delta)
                out["backward_gram"][s, l - 1] = delta.T @ delta
    if backward:
        out["tangent_gram"] = tangent_from_backward(out["backward_gram"], out["postact_gram"], X, C_W, C_b)
    return out


def tangent_from_backward(backward_gram: np.ndarray, postact_gram: np.ndarray, X: np.ndarray, C_W: float,
                          C_b: float) -> np.ndarray:
    """tangent_gram[s, l] = (C_b + C_W H^(l)) o backward_gram[s, l], H^(0) = X X^T / n_0, H^(l) = postact_gram[s, l-1]."""
    G0 = X @ X.T / X.shape[1]
    H = np.concatenate([np.broadcast_to(G0, (postact_gram.shape[0], 1) + G0.shape), postact_gram[:, :-1]], axis=1)
    return (C_b + C_W * H) * backward_gram
