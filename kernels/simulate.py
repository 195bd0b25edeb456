"""Public entry point of the Monte-Carlo engine: :func:`simulate`.

It validates every argument before any work starts, estimates the memory the run needs (outputs plus
working buffers) against what the machine has, processes the networks in batches (network ids are offset
per batch, so batching never changes a number), and dispatches to one of three methods:

- ``'gram'``: exact Markov chain on P x P Gram matrices, O(n P^2) per layer (Gaussian weights, forward only;
  docs/derivations.md, section 4; :mod:`sigprop.kernels.gram_cpu`, :mod:`sigprop.kernels.gram_cuda`);
- ``'explicit'``: explicit weights regenerated from the counter-based RNG, O(n^2 P) per layer, any weight
  distribution, backward pass (:mod:`sigprop.kernels.explicit_cpu`, :mod:`sigprop.kernels.explicit_cuda`);
- ``'numpy'``: the dense NumPy reference of ``'explicit'`` (same numbers up to rounding; slow; CPU only).

The weights are i.i.d. ``N(0, C_W / n)`` by default; ``covariance=RainbowCovariance(...)``
(:mod:`sigprop.kernels.covariance`) gives them the rainbow covariance model instead, run by the engines of
:data:`RAINBOW_ENGINES` (:mod:`sigprop.kernels.rainbow_engines`) through the same checks, memory planner,
overflow/underflow convention and :class:`SimulationResult`.
"""
from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sigprop.theory.arguments import integer_in_range, one_of, real_number, seed_value
from sigprop.theory.errors import InputError, InputTypeError

from ..theory.activations import Activation
from ..theory.activations import activation as make_activation
from .covariance import RainbowCovariance, check_covariance_argument
from .float_range import RangeReport, check_statistics
from .result import SimulationResult, SimulationSettings
from .rng import WEIGHT_KINDS

__all__ = ["simulate", "estimate_memory", "plan_batches", "plan_request", "check_request", "run_networks",
           "assemble_result", "range_convention", "SimulationRequest", "METHODS", "BACKENDS", "NORMS", "ENGINES",
           "RAINBOW_ENGINES"]

METHODS = ("gram", "explicit", "numpy")
BACKENDS = ("cpu", "cuda")
NORMS = (None, "rms_pre", "ln_pre", "rms_post", "ln_post")
WEIGHTS = tuple(WEIGHT_KINDS)  # gaussian, uniform, rademacher
_F8 = 8
# A batch's working buffers use at most this many bytes (more networks per batch gains nothing).
_BATCH_WORK_CAP = 1 << 30
# Fraction of the available memory a run may plan to use.
_MEMORY_FRACTION = 0.8
# The random generator's coordinates (sigprop.kernels.rng): rows (the neurons of a layer) and networks below 2^32.
_MAX_ROWS = 2**32


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
        return (integer_in_range("width", width, 1, _MAX_ROWS),) * depth
    if isinstance(width, (str, bytes)) or not isinstance(width, (Sequence, np.ndarray)):
        raise InputTypeError(f"width must be a positive int or a sequence of depth={depth} positive ints, "
                             f"got {width!r}")
    ws = list(width)
    if len(ws) != depth:
        raise InputError(f"width must have depth={depth} entries (one per hidden layer), got {len(ws)}")
    return tuple(integer_in_range(f"width[{i}]", w, 1, _MAX_ROWS) for i, w in enumerate(ws))


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


def simulate(X, *, depth: int, width, activation, C_W: float | None = None, C_b: float = 0.0, n_networks: int,
             method: str = "gram", backend: str = "cpu", seed: int = 0, weights: str = "gaussian",
             residual: float = 0.0, norm: str | None = None, backward: bool = False,
             covariance: RainbowCovariance | None = None, first_network: int = 0,
             keep_activations: bool = False) -> SimulationResult:
    """Simulate ``n_networks`` random finite-width networks on the inputs ``X`` (P, n_0); see docs/conventions.md.

    Network: ``z^(l) = W^(l) h^(l-1) + b^(l)``, ``W_ij ~ N(0, C_W / n_{l-1})`` (or uniform/Rademacher of that
    variance), ``b_i ~ N(0, C_b)``, ``h^(l) = sqrt(1-r^2) POST(phi(PRE(z^(l)))) + r S^(l) h^(l-1)/sqrt(n_{l-1})``,
    ``h^(0) = x``.  Returns per network and layer ``preact_gram = z^T z / n``, ``postact_gram = h^T h / n``,
    ``preact_m2``/``preact_m4`` (mean_i z_ia^2 / z_ia^4) and, with ``backward=True`` (explicit/numpy only),
    ``backward_gram``/``tangent_gram``.  ``width``: an int or one int per hidden layer.  ``method``:
    'gram' (exact for Gaussian weights, forward only, fastest), 'explicit', 'numpy'.  ``backend``: 'cpu'/'cuda'.
    The same seed gives the same numbers for any batching or thread count, on either backend (to rounding).

    With ``covariance=RainbowCovariance(C1, a, b, anchors)`` (:mod:`sigprop.kernels.covariance`, docs/rainbow.md)
    the rows of the weights have the rainbow covariance model instead of ``C_W / n`` (``C_W`` is then not given;
    ``C_b`` is the bias variance as always), the ``m`` anchors are propagated with the inputs, and the Gram
    matrices are (S, L, P + m, P + m), inputs first; the moments are None (the rainbow engines compute Gram
    matrices only).  Its three engines: 'numpy' (the vectorised NumPy reference), 'explicit' (compiled, the same
    random numbers), 'gram' (the exact Gram chain: the same distribution, other numbers); Gaussian weights, no
    residual, normalisation or backward pass.

    Parameters
    ----------
    X : array_like
        Inputs, one per row, (P, n_0), finite.
    depth : int
        Number of hidden layers L >= 1 (with a covariance model, ``len(covariance.a) + 1``).
    width : int or sequence of int
        Hidden widths n_1..n_L (one int for all), each in [1, 2^32] (the random generator's rows).
    activation : str or Activation
        A built-in name (:func:`sigprop.theory.activations.activation`) or a custom activation with a scalar.
    C_W, C_b : float
        Weight and bias variances (``C_W > 0``, required without ``covariance`` and refused with it; ``C_b >= 0``).
    n_networks : int
        Number of independent networks S; network ``s`` is a pure function of ``(seed, first_network + s)``.
    method, backend, seed, weights, residual, norm, backward
        See above and docs/simulation.md.
    covariance : RainbowCovariance, optional
        The weight-covariance model; None (default) is i.i.d. weights of variance ``C_W / n``.
    first_network : int
        Generator index of the first network (``first_network + n_networks <= 2^32``); default 0.
    keep_activations : bool
        With a covariance model and method 'numpy' or 'explicit': also return the post-activations of every layer
        (``result.activations``, memory ``S (P + m) sum n_l`` floats).

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

    A rainbow covariance with one anchor: the Gram matrices hold the inputs then the anchor, near the rainbow
    kernel at this width:

    >>> from sigprop.kernels.covariance import RainbowCovariance
    >>> from sigprop.theory.rainbow import rainbow_kernels
    >>> cov = RainbowCovariance(C1=2.0, a=[2.0, 2.0], b=[[1.0], [0.5]], anchors=X[:1])
    >>> res = simulate(X, depth=3, width=256, activation="relu", covariance=cov, n_networks=20, seed=1)
    >>> res.preact_gram.shape, res.n_inputs, res.n_anchors, res.preact_m2 is None
    ((20, 3, 3, 3), 2, 1, True)
    >>> K = rainbow_kernels("relu", X, 2.0, [2.0, 2.0], [[1.0], [0.5]], X[:1]).preact
    >>> bool(np.abs(res.preact_gram[:, -1].mean(axis=0) - K[-1]).max() < 0.1 * K[-1].max())
    True
    """
    request = check_request(X, depth=depth, width=width, activation=activation, C_W=C_W, C_b=C_b,
                            n_networks=n_networks, method=method, backend=backend, seed=seed, weights=weights,
                            residual=residual, norm=norm, backward=backward, covariance=covariance,
                            first_network=first_network, keep_activations=keep_activations)
    r = request
    batch = plan_request(request)
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

    @property
    def n_rows(self) -> int:
        """``N = P + m``: the inputs and the anchors of a covariance model, the side of the Gram matrices."""
        return self.n_inputs + self.n_anchors


def check_request(X, *, depth, width, activation, C_W=None, C_b=0.0, n_networks, method="gram", backend="cpu", seed=0,
                  weights="gaussian", residual=0.0, norm=None, backward=False, covariance=None, first_network=0,
                  keep_activations=False) -> SimulationRequest:
    """Every check of :func:`simulate`'s arguments, before any work (InputError/InputTypeError naming the argument)."""
    X = _check_X(X)
    depth = integer_in_range("depth", depth, 1, 2**24 - 2)
    widths = _check_widths(width, depth)
    act = _check_activation(activation)
    covariance = check_covariance_argument(covariance)
    C_W = _check_C_W(C_W, covariance)
    C_b = real_number("C_b", C_b)
    if C_b < 0.0:
        raise InputError(f"C_b must be >= 0 (the bias variance), got {C_b!r}")
    n_networks = integer_in_range("n_networks", n_networks, 1, _MAX_ROWS)
    method = one_of("method", method, METHODS)
    backend = one_of("backend", backend, BACKENDS)
    seed = seed_value(seed)
    first_network = _check_first_network(first_network, n_networks)
    weights = one_of("weights", weights, WEIGHTS)
    residual = real_number("residual", residual)
    if not 0.0 <= residual < 1.0:
        raise InputError(f"residual must be in [0, 1) (the skip weight r; 1 would remove the layer), got {residual!r}")
    norm = one_of("norm", norm, NORMS)
    for name, flag in (("backward", backward), ("keep_activations", keep_activations)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputTypeError(f"{name} must be a bool, got {type(flag).__name__} {flag!r}")
    request = SimulationRequest(X=X, depth=depth, widths=widths, act=act, C_W=C_W, C_b=C_b, n_networks=n_networks,
                                method=method, backend=backend, seed=seed, weights=weights, residual=residual,
                                norm=norm, backward=bool(backward), covariance=covariance,
                                first_network=first_network, keep_activations=bool(keep_activations))
    _check_covariance_model(request)
    _check_combination(request)
    return request


def _check_C_W(C_W, covariance: RainbowCovariance | None) -> float | None:
    """``C_W``: a variance > 0 for the i.i.d. model; not given (None) with a covariance model, which sets it."""
    if covariance is not None:
        if C_W is not None:
            raise InputError(f"C_W must not be given with covariance={covariance!r} (the covariance model sets the "
                             f"weight variances: C1, a, b), got C_W={C_W!r}")
        return None
    if C_W is None:
        raise InputError("C_W is required (the weight variance times fan-in, > 0) unless a covariance model is given")
    C_W = real_number("C_W", C_W)
    if C_W <= 0.0:
        raise InputError(f"C_W must be > 0 (the weight variance times fan-in), got {C_W!r}")
    return C_W


def _check_first_network(first_network, n_networks: int) -> int:
    if isinstance(first_network, bool) or not isinstance(first_network, numbers.Integral):
        raise InputTypeError(f"first_network must be an int >= 0, got {type(first_network).__name__} "
                             f"{first_network!r}")
    if first_network < 0 or first_network + n_networks > _MAX_ROWS:
        raise InputError(f"first_network must be >= 0 with first_network + n_networks <= 2^32 (the random "
                         f"generator's networks), got {first_network!r} + {n_networks}")
    return int(first_network)


def _check_activation(activation) -> Activation:
    if isinstance(activation, str):
        return make_activation(activation)
    if isinstance(activation, Activation):
        return activation
    raise InputTypeError(f"activation must be a name (str) or an Activation object, got {type(activation).__name__}")


def _check_covariance_model(r: SimulationRequest) -> None:
    """What a covariance model allows: its depth and dimension, and none of the i.i.d. model's options it does not
    have (refused, never ignored); ``keep_activations`` only with the engines that have activations to keep."""
    cov = r.covariance
    if cov is None:
        if r.keep_activations:
            raise InputError("keep_activations=True needs a covariance model (covariance=RainbowCovariance(...)): "
                             "the i.i.d. engines keep statistics only")
        return
    if r.depth != cov.depth:
        raise InputError(f"depth must be len(covariance.a) + 1 = {cov.depth} (the layers of the covariance model), "
                         f"got {r.depth}")
    cov.check_inputs(r.X.shape[1])
    refused = [(name, value) for name, value, default in (("weights", r.weights, "gaussian"),
                                                          ("residual", r.residual, 0.0), ("norm", r.norm, None),
                                                          ("backward", r.backward, False)) if value != default]
    if refused:
        name, value = refused[0]
        raise InputError(f"{name}={value!r} is not available with a covariance model (its engines simulate Gaussian "
                         f"weights without residual, normalisation or backward pass); leave {name} at its default")
    if r.keep_activations and r.method == "gram":
        raise InputError("keep_activations=True needs method 'numpy' or 'explicit' (the Gram chain keeps Gram "
                         "matrices only)")


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
    # the NumPy reference of the covariance model runs any activation; the compiled engines need a numba scalar
    numpy_reference = r.covariance is not None and r.method == "numpy"
    if not r.act.is_builtin and r.act.scalar is None and not numpy_reference:
        raise InputTypeError(f"activation {r.act.label}: a custom activation needs a numba scalar (act.scalar)")


def plan_request(request: SimulationRequest, who: str = "simulate") -> int:
    """Networks per batch of a checked request (:func:`plan_batches` on its ``N = P + m`` rows; kept activations
    are counted as the backward pass's buffers); a MemoryError starting with ``who`` when one network does not fit."""
    r = request
    N, n0 = r.n_rows, r.X.shape[1]
    if r.covariance is not None:
        who = f"{who} (widths={list(r.widths)}, n_networks={r.n_networks}, {N} inputs and anchors of dimension {n0})"
    return plan_batches(N, n0, r.widths, r.n_networks, r.method, r.backward or r.keep_activations, r.backend, who)


def run_networks(request: SimulationRequest, first: int, count: int) -> dict[str, np.ndarray]:
    """The engine's raw statistics of networks ``first .. first + count - 1`` of a checked request (generator
    indices ``request.first_network + first ..``).

    Each network is a pure function of ``(seed, network index)``, so any split of ``0 .. n_networks - 1`` into
    such calls, in any order and in any process, gives the same numbers as one call; :func:`assemble_result`
    joins them.
    """
    return _run_batch(request, request.first_network + first, count)


def _run_batch(r: SimulationRequest, first: int, count: int) -> dict[str, np.ndarray]:
    # NumPy's own floating-point warnings (overflow in multiply, ...) are replaced by the one warning of
    # float_range.check_statistics per run, which names the networks and the layer
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        if r.covariance is not None:
            module, name = RAINBOW_ENGINES[(r.method, r.backend)]
            engine = getattr(importlib.import_module(module), name)  # imported on first use (numba compiles)
            return engine(r.X, r.widths, r.act, r.covariance, r.C_b, count, r.seed, first_network=first,
                          keep_activations=r.keep_activations)
        return _run_engine(r.X, r.widths, r.act, r.C_W, r.C_b, count, r.seed, r.weights, r.residual, r.norm,
                           r.backward, r.method, r.backend, first)


def _join(parts: list[dict[str, np.ndarray]], key: str):
    if key == "activations":  # a tuple of per-layer arrays
        return parts[0][key] if len(parts) == 1 else tuple(np.concatenate(layer)
                                                           for layer in zip(*(p[key] for p in parts)))
    return parts[0][key] if len(parts) == 1 else np.concatenate([p[key] for p in parts])


def assemble_result(request: SimulationRequest, parts: list[dict[str, np.ndarray]]) -> SimulationResult:
    """Join the :func:`run_networks` outputs of consecutive network ranges (in network order), apply the
    overflow/underflow convention once, and return the :class:`SimulationResult`."""
    r = request
    if r.covariance is not None:
        keys = ["preact_gram", "postact_gram"] + (["activations"] if r.keep_activations else [])
    else:
        keys = ["preact_gram", "postact_gram", "preact_m2", "preact_m4"] + (["backward_gram", "tangent_gram"]
                                                                            if r.backward else [])
    out = {k: _join(parts, k) for k in keys}
    if out["preact_gram"].shape[0] != r.n_networks:
        raise InputError(f"parts hold {out['preact_gram'].shape[0]} networks, the request {r.n_networks}")
    # one overflow/underflow convention for every method and backend, at most one warning of each kind per run
    range_convention(r, out, stacklevel=3)
    return SimulationResult(out["preact_gram"], out["postact_gram"], out.get("preact_m2"), out.get("preact_m4"),
                            out.get("backward_gram"), out.get("tangent_gram"), activation=r.activation,
                            activations=out.get("activations"), **r.shared_settings())


def range_convention(request: SimulationRequest, out: dict[str, np.ndarray], warn: bool = True,
                     stacklevel: int = 2) -> RangeReport:
    """The overflow/underflow convention (:func:`sigprop.kernels.float_range.check_statistics`) on the raw
    statistics ``out`` of some of a request's networks, in place; ``stacklevel`` of the warnings counted from the
    caller of this function (2: the caller's caller).  With a covariance model: the rainbow engines' version
    (:func:`sigprop.kernels.rainbow_engines.rainbow_range_convention`); kept activations are left as the engine gave
    them."""
    r = request
    if r.covariance is not None:
        from .rainbow_engines import rainbow_range_convention

        return rainbow_range_convention(out, r.X, r.covariance, r.C_b, r.method, warn=warn, stacklevel=stacklevel + 1)
    return check_statistics(out, r.X, r.C_b, r.method, warn=warn, stacklevel=stacklevel + 1)


# The one dispatch table of the i.i.d. model: (method, backend) -> (module, function).  Every engine takes the same
# arguments (X, widths, act, C_W, C_b, n_networks, seed, **options) and assumes them validated by simulate(); the gram
# engines have no weights/backward options (simulate refuses those combinations before any work).
ENGINES: dict[tuple[str, str], tuple[str, str]] = {
    ("gram", "cpu"): ("sigprop.kernels.gram_cpu", "run_gram_cpu"),
    ("gram", "cuda"): ("sigprop.kernels.gram_cuda", "run_gram_cuda"),
    ("explicit", "cpu"): ("sigprop.kernels.explicit_cpu", "run_explicit"),
    ("explicit", "cuda"): ("sigprop.kernels.explicit_cuda", "run_explicit_cuda"),
    ("numpy", "cpu"): ("sigprop.kernels.reference", "run_reference"),
}

# The dispatch table of the rainbow covariance model (covariance=RainbowCovariance): every engine takes
# (X, widths, act, covariance, C_b, n_networks, seed, *, first_network, keep_activations), validated by simulate().
RAINBOW_ENGINES: dict[tuple[str, str], tuple[str, str]] = {
    ("gram", "cpu"): ("sigprop.kernels.rainbow_engines", "rainbow_gram_cpu"),
    ("gram", "cuda"): ("sigprop.kernels.rainbow_engines", "rainbow_gram_cuda"),
    ("explicit", "cpu"): ("sigprop.kernels.rainbow_engines", "rainbow_explicit_cpu"),
    ("explicit", "cuda"): ("sigprop.kernels.rainbow_engines", "rainbow_explicit_cuda"),
    ("numpy", "cpu"): ("sigprop.kernels.rainbow_engines", "rainbow_numpy"),
}


def _run_engine(X, widths, act, C_W, C_b, S, seed, weights, residual, norm, backward, method, backend, first):
    module, name = ENGINES[(method, backend)]
    engine = getattr(importlib.import_module(module), name)  # imported on first use (numba compiles on import)
    options = dict(residual=residual, norm=norm, first_network=first)
    if method != "gram":
        options.update(weights=weights, backward=backward)
    return engine(X, widths, act, C_W, C_b, S, seed, **options)
