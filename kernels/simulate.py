"""Public entry point of the Monte-Carlo engine: :func:`simulate`.

It validates every argument before any work starts, estimates the memory the run needs (outputs plus
working buffers) against what the machine has, processes the networks in batches (network ids are offset
per batch, so batching never changes a number), and dispatches to one of three methods:

- ``'gram'``: exact Markov chain on P x P Gram matrices, O(n P^2) per layer (Gaussian weights, forward only;
  docs/derivations.md, section 4; :mod:`sigprop.kernels.gram_cpu`, :mod:`sigprop.kernels.gram_cuda`);
- ``'explicit'``: explicit weights regenerated from the counter-based RNG, O(n^2 P) per layer, any weight
  distribution, backward pass (:mod:`sigprop.kernels.explicit_cpu`, :mod:`sigprop.kernels.explicit_cuda`);
- ``'numpy'``: the dense NumPy reference of ``'explicit'`` (same numbers up to rounding; slow; CPU only).
"""
from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sigprop.theory.arguments import real_number, seed_value
from sigprop.theory.errors import InputError, InputTypeError

from ..theory.activations import Activation
from ..theory.activations import activation as make_activation
from .float_range import check_statistics
from .result import SimulationResult, SimulationSettings
from .rng import WEIGHT_KINDS

__all__ = ["simulate", "estimate_memory", "plan_batches", "check_request", "run_networks", "assemble_result",
           "SimulationRequest", "METHODS", "BACKENDS", "NORMS"]

METHODS = ("gram", "explicit", "numpy")
BACKENDS = ("cpu", "cuda")
NORMS = (None, "rms_pre", "ln_pre", "rms_post", "ln_post")
WEIGHTS = tuple(WEIGHT_KINDS)  # gaussian, uniform, rademacher
_F8 = 8
# A batch's working buffers use at most this many bytes (more networks per batch gains nothing).
_BATCH_WORK_CAP = 1 << 30
# Fraction of the available memory a run may plan to use.
_MEMORY_FRACTION = 0.8


def _positive_int(name: str, v, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise InputTypeError(f"{name} must be a positive int, got {type(v).__name__} {v!r}")
    if v < 1 or (hi is not None and v > hi):
        allowed = f"in [1, {hi}]" if hi is not None else ">= 1"
        raise InputError(f"{name} must be an integer {allowed}, got {v!r}")
    return int(v)


def _check_X(X) -> np.ndarray:
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError):
        raise InputTypeError(f"X must be a real (P, n_0) array, got {type(X).__name__}") from None
    if arr.dtype.kind not in "iuf":  # complex would lose its imaginary part, bool and strings mean a mistake
        raise InputTypeError(f"X must be a real (P, n_0) array of int or float dtype, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim != 2:
        raise InputError(f"X must be 2-D with shape (P, n_0) (one input per row), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"X must have P >= 1 inputs of dimension n_0 >= 1, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError("X must be finite (it contains NaN or inf)")
    return np.array(arr, dtype=np.float64, order="C")


def _check_widths(width, depth: int) -> tuple[int, ...]:
    if isinstance(width, numbers.Integral) and not isinstance(width, bool):
        return (_positive_int("width", width),) * depth
    if isinstance(width, (str, bytes)) or not isinstance(width, (Sequence, np.ndarray)):
        raise InputTypeError(f"width must be a positive int or a sequence of depth={depth} positive ints, "
                             f"got {width!r}")
    ws = list(width)
    if len(ws) != depth:
        raise InputError(f"width must have depth={depth} entries (one per hidden layer), got {len(ws)}")
    return tuple(_positive_int(f"width[{i}]", w) for i, w in enumerate(ws))


def estimate_memory(P: int, n0: int, widths: Sequence[int], S: int, method: str, backward: bool = False,
                    batch: int | None = None) -> dict[str, int]:
    """Bytes a run needs: ``outputs`` (all S networks), ``work_per_network`` and ``work_fixed`` (buffers).

    Working buffers: gram O(threads * n P) (fixed), explicit O(S_batch * max(n) * P) (6 buffers of
    S_batch x n x P, plus L of them with backward), numpy O(max n_l n_{l-1}) per network in turn.
    """
    L = len(widths)
    nmax = max(max(widths), n0)
    per_net_out = L * (2 * P * P + 2 * P) * _F8 + (2 * L * P * P * _F8 if backward else 0)
    if method == "gram":
        per_net_work = 0
        fixed = 64 * (2 * P * nmax + 6 * P * P) * _F8
    elif method == "explicit":
        per_net_work = (6 + (L if backward else 0)) * nmax * P * _F8
        fixed = 0
    else:
        dims = [n0] + list(widths)
        per_net_work = 0
        fixed = (3 * max(dims[i] * dims[i + 1] for i in range(L)) + (L + 4) * nmax * P) * _F8
    return {"outputs": S * per_net_out, "work_per_network": per_net_work, "work_fixed": fixed,
            "total": S * per_net_out + (batch or S) * per_net_work + fixed}


def _gib(b: float) -> str:
    return f"{b / 2**30:.3g} GiB"


def _memory_hint(buffers: float, outputs: float, widths: Sequence[int], n0: int) -> str:
    """What to reduce: the width (or n_0) when the working buffers, which grow with it, outweigh the outputs."""
    if buffers <= outputs:
        return "use fewer networks, layers or inputs"
    if max(widths) >= n0:
        return f"the working buffers grow with the width: use a smaller width (largest width {max(widths)})"
    return f"the working buffers grow with the input dimension: use a smaller n_0 (n_0 = {n0})"


def plan_batches(P: int, n0: int, widths, S: int, method: str, backward: bool, backend: str,
                 who: str = "simulate") -> int:
    """Networks per batch of a run of ``S`` networks on ``P`` inputs of dimension ``n0``; a MemoryError whose message
    starts with ``who`` when one network cannot fit in memory (host, or GPU with ``backend='cuda'``)."""
    from . import backend as be

    est = estimate_memory(P, n0, widths, S, method, backward)
    host = be.host_memory_available()
    budget = _MEMORY_FRACTION * host
    per = est["work_per_network"]
    if backend == "cuda":
        gpu_budget = _MEMORY_FRACTION * be.gpu_memory_available()
        # on the GPU: a batch's outputs and its buffers (gram: 2 n x P scratch per network)
        L = len(widths)
        nmax = max(max(widths), n0)
        per_dev = (L * (2 * P * P + 2 * P) + (2 * L * P * P if backward else 0)) * _F8
        out_dev = per_dev
        per_dev += ((2 * nmax * P + 8 * P * P) * _F8 if method == "gram"
                    else (6 + (L if backward else 0)) * nmax * P * _F8)
        if per_dev > gpu_budget:
            raise MemoryError(f"{who}: one network needs about {_gib(per_dev)} of GPU memory, but only "
                              f"{_gib(gpu_budget / _MEMORY_FRACTION)} is free; "
                              + _memory_hint(per_dev - out_dev, out_dev, widths, n0))
        batch_dev = int(min(gpu_budget, _BATCH_WORK_CAP * 4) // per_dev)
    else:
        batch_dev = S
    need_min = est["outputs"] + est["work_fixed"] + per
    if need_min > budget:
        raise MemoryError(f"{who}: the run needs about {_gib(need_min)} (outputs {_gib(est['outputs'])} for "
                          f"{S} networks + working buffers {_gib(est['work_fixed'] + per)}), more than "
                          f"{int(_MEMORY_FRACTION * 100)}% of the {_gib(host)} of memory available; "
                          + _memory_hint(est["work_fixed"] + per, est["outputs"], widths, n0))
    if per > 0:
        batch_host = int(min(budget - est["outputs"] - est["work_fixed"], _BATCH_WORK_CAP) // per)
    else:
        batch_host = S
    return max(1, min(S, batch_host, batch_dev))


def simulate(X, *, depth: int, width, activation, C_W: float, C_b: float = 0.0, n_networks: int,
             method: str = "gram", backend: str = "cpu", seed: int = 0, weights: str = "gaussian",
             residual: float = 0.0, norm: str | None = None, backward: bool = False) -> SimulationResult:
    """Simulate ``n_networks`` random finite-width networks on the inputs ``X`` (P, n_0); see docs/conventions.md.

    Network: ``z^(l) = W^(l) h^(l-1) + b^(l)``, ``W_ij ~ N(0, C_W / n_{l-1})`` (or uniform/Rademacher of that
    variance), ``b_i ~ N(0, C_b)``, ``h^(l) = sqrt(1-r^2) POST(phi(PRE(z^(l)))) + r S^(l) h^(l-1)/sqrt(n_{l-1})``,
    ``h^(0) = x``.  Returns per network and layer ``preact_gram = z^T z / n``, ``postact_gram = h^T h / n``,
    ``preact_m2``/``preact_m4`` (mean_i z_ia^2 / z_ia^4) and, with ``backward=True`` (explicit/numpy only),
    ``backward_gram``/``tangent_gram``.  ``width``: an int or one int per hidden layer.  ``method``:
    'gram' (exact for Gaussian weights, forward only, fastest), 'explicit', 'numpy'.  ``backend``: 'cpu'/'cuda'.
    The same seed gives the same numbers for any batching or thread count, on either backend (to rounding).

    Parameters
    ----------
    X : array_like
        Inputs, one per row, (P, n_0), finite.
    depth : int
        Number of hidden layers L >= 1.
    width : int or sequence of int
        Hidden widths n_1..n_L (one int for all).
    activation : str or Activation
        A built-in name (:func:`sigprop.theory.activations.activation`) or a custom activation with a scalar.
    C_W, C_b : float
        Weight and bias variances (``C_W > 0``, ``C_b >= 0``).
    n_networks : int
        Number of independent networks S; network ``s`` is a pure function of ``(seed, s)``.
    method, backend, seed, weights, residual, norm, backward
        See above and docs/simulation.md.

    Returns
    -------
    SimulationResult
        Frozen arrays of shape (S, L, P, P) (Gram matrices) and (S, L, P) (moments), and the settings.

    Raises
    ------
    ValueError, TypeError
        A bad argument, named with its allowed range, before any work.
    MemoryError
        When one network would not fit in memory (naming the width when it is the cause).

    Warns
    -----
    SimulationOverflowWarning, SimulationUnderflowWarning
        Statistics that left float64's normal range (NaN from an overflow on, subnormal reported as 0).

    Examples
    --------
    The mean over networks of a Gram entry estimates its expectation, with a standard error from the spread
    over the independent networks; the infinite-width value is the mean-field recursion:

    >>> import numpy as np
    >>> from sigprop.theory.meanfield import kernel_recursion
    >>> X = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    >>> res = simulate(X, depth=3, width=256, activation="relu", C_W=2.0, n_networks=100, seed=1)
    >>> res.preact_gram.shape
    (100, 3, 2, 2)
    >>> g = res.preact_gram[:, -1, 0, 1]
    >>> K = kernel_recursion("relu", X @ X.T / 4, depth=3, C_W=2.0)
    >>> print(f"simulation {g.mean():.3f} +- {g.std(ddof=1) / 10:.3f}, theory {K[-1, 0, 1]:.4f}")
    simulation 0.679 +- 0.016, theory 0.6839
    """
    request = check_request(X, depth=depth, width=width, activation=activation, C_W=C_W, C_b=C_b,
                            n_networks=n_networks, method=method, backend=backend, seed=seed, weights=weights,
                            residual=residual, norm=norm, backward=backward)
    r = request
    batch = plan_batches(r.X.shape[0], r.X.shape[1], r.widths, r.n_networks, r.method, r.backward, r.backend)
    parts = [run_networks(request, first, min(batch, r.n_networks - first))
             for first in range(0, r.n_networks, batch)]
    return assemble_result(request, parts)


@dataclass(frozen=True, kw_only=True)
class SimulationRequest(SimulationSettings):
    """The arguments of :func:`simulate`, checked and normalised (widths a tuple, activation an Activation): the
    settings the :class:`SimulationResult` will carry (:class:`sigprop.kernels.result.SimulationSettings`, keyword
    arguments) and the activation object ``act`` the engines run.

    Examples
    --------
    >>> r = check_request([[1.0, 0.0]], depth=2, width=4, activation="tanh", C_W=1.5, n_networks=3)
    >>> r.widths, r.act.name, r.activation, r.settings["C_W"]
    ((4, 4), 'tanh', 'tanh', 1.5)
    """

    act: Activation

    @property
    def activation(self) -> str:
        """The activation's label, as :attr:`SimulationResult.activation` reads."""
        return self.act.label


def check_request(X, *, depth, width, activation, C_W, C_b=0.0, n_networks, method="gram", backend="cpu", seed=0,
                  weights="gaussian", residual=0.0, norm=None, backward=False) -> SimulationRequest:
    """Every check of :func:`simulate`'s arguments, before any work (InputError/InputTypeError naming the argument)."""
    X = _check_X(X)
    depth = _positive_int("depth", depth, 2**24 - 2)
    widths = _check_widths(width, depth)
    act = _check_activation(activation)
    C_W = real_number("C_W", C_W)
    if C_W <= 0.0:
        raise InputError(f"C_W must be > 0 (the weight variance times fan-in), got {C_W!r}")
    C_b = real_number("C_b", C_b)
    if C_b < 0.0:
        raise InputError(f"C_b must be >= 0 (the bias variance), got {C_b!r}")
    n_networks = _positive_int("n_networks", n_networks, 2**32)
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    seed = seed_value(seed)
    if not isinstance(weights, str) or weights not in WEIGHTS:
        raise InputError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    residual = real_number("residual", residual)
    if not 0.0 <= residual < 1.0:
        raise InputError(f"residual must be in [0, 1) (the skip weight r; 1 would remove the layer), got {residual!r}")
    if norm not in NORMS:
        raise InputError(f"norm must be one of {NORMS}, got {norm!r}")
    if not isinstance(backward, (bool, np.bool_)):
        raise InputTypeError(f"backward must be a bool, got {type(backward).__name__} {backward!r}")
    request = SimulationRequest(X=X, depth=depth, widths=widths, act=act, C_W=C_W, C_b=C_b, n_networks=n_networks,
                                method=method, backend=backend, seed=seed, weights=weights, residual=residual,
                                norm=norm, backward=bool(backward))
    _check_combination(request)
    return request


def _check_activation(activation) -> Activation:
    if isinstance(activation, str):
        return make_activation(activation)
    if isinstance(activation, Activation):
        return activation
    raise InputTypeError(f"activation must be a name (str) or an Activation object, got {type(activation).__name__}")


def _check_combination(r: SimulationRequest) -> None:
    """The checks that involve several arguments (method x weights x backward x norm x backend x activation)."""
    if r.method == "gram" and r.weights != "gaussian":
        raise InputError(f"method='gram' is exact only for Gaussian weights (it samples each layer from its "
                         f"conditional Gaussian law); for weights={r.weights!r} use method='explicit'")
    if r.method == "gram" and r.backward:
        raise InputError("method='gram' cannot compute the backward pass (it reuses the same weights twice, "
                         "which the Gram chain does not represent); use method='explicit' with backward=True")
    if r.backward and (r.residual != 0.0 or r.norm is not None):
        raise InputError(f"backward=True needs residual=0 and norm=None, got residual={r.residual!r}, "
                         f"norm={r.norm!r}")
    if r.norm in ("ln_pre", "ln_post") and min(r.widths) < 2:
        raise InputError(f"norm={r.norm!r} needs every width >= 2 (LayerNorm over one neuron is 0/0), "
                         f"got widths {r.widths}")
    if r.method == "numpy" and r.backend != "cpu":
        raise InputError("method='numpy' runs on the CPU only; use backend='cpu'")
    if r.backend == "cuda":
        from .backend import cuda_available

        if not cuda_available():
            raise InputError("backend='cuda' needs a CUDA GPU (numba.cuda.is_available() is False here) or "
                             "numba's simulator (NUMBA_ENABLE_CUDASIM=1); use backend='cpu'")
    if not r.act.is_builtin and r.act.scalar is None:
        raise InputTypeError(f"activation {r.act.label}: a custom activation needs a numba scalar (act.scalar)")


def run_networks(request: SimulationRequest, first: int, count: int) -> dict[str, np.ndarray]:
    """The engine's raw statistics of networks ``first .. first + count - 1`` of a checked request.

    Each network is a pure function of ``(seed, network index)``, so any split of ``0 .. n_networks - 1`` into
    such calls, in any order and in any process, gives the same numbers as one call; :func:`assemble_result`
    joins them.
    """
    r = request
    return _run_batch(r.X, r.widths, r.act, r.C_W, r.C_b, count, r.seed, r.weights, r.residual, r.norm,
                      r.backward, r.method, r.backend, first)


def assemble_result(request: SimulationRequest, parts: list[dict[str, np.ndarray]]) -> SimulationResult:
    """Join the :func:`run_networks` outputs of consecutive network ranges (in network order), apply the
    overflow/underflow convention once, and return the :class:`SimulationResult`."""
    r = request
    keys = ["preact_gram", "postact_gram", "preact_m2", "preact_m4"] + (["backward_gram", "tangent_gram"]
                                                                        if r.backward else [])
    out = {k: parts[0][k] if len(parts) == 1 else np.concatenate([p[k] for p in parts]) for k in keys}
    if out["preact_gram"].shape[0] != r.n_networks:
        raise InputError(f"parts hold {out['preact_gram'].shape[0]} networks, the request {r.n_networks}")
    # one overflow/underflow convention for every method and backend, at most one warning of each kind per run
    check_statistics(out, r.X, r.C_b, r.method, stacklevel=3)
    return SimulationResult(out["preact_gram"], out["postact_gram"], out["preact_m2"], out["preact_m4"],
                            out.get("backward_gram"), out.get("tangent_gram"), activation=r.activation,
                            **r.shared_settings())


def _run_batch(X, widths, act, C_W, C_b, S, seed, weights, residual, norm, backward, method, backend, first):
    # NumPy's own floating-point warnings (overflow in multiply, ...) are replaced by the one warning of
    # float_range.check_statistics per run, which names the networks and the layer
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        return _run_engine(X, widths, act, C_W, C_b, S, seed, weights, residual, norm, backward, method, backend,
                           first)


# The one dispatch table: (method, backend) -> (module, function).  Every engine takes the same arguments
# (X, widths, act, C_W, C_b, n_networks, seed, **options) and assumes them validated by simulate(); the gram engines
# have no weights/backward options (simulate refuses those combinations before any work).
ENGINES: dict[tuple[str, str], tuple[str, str]] = {
    ("gram", "cpu"): ("sigprop.kernels.gram_cpu", "run_gram_cpu"),
    ("gram", "cuda"): ("sigprop.kernels.gram_cuda", "run_gram_cuda"),
    ("explicit", "cpu"): ("sigprop.kernels.explicit_cpu", "run_explicit"),
    ("explicit", "cuda"): ("sigprop.kernels.explicit_cuda", "run_explicit_cuda"),
    ("numpy", "cpu"): ("sigprop.kernels.reference", "run_reference"),
}


def _run_engine(X, widths, act, C_W, C_b, S, seed, weights, residual, norm, backward, method, backend, first):
    module, name = ENGINES[(method, backend)]
    engine = getattr(importlib.import_module(module), name)  # imported on first use (numba compiles on import)
    options = dict(residual=residual, norm=norm, first_network=first)
    if method != "gram":
        options.update(weights=weights, backward=backward)
    return engine(X, widths, act, C_W, C_b, S, seed, **options)
