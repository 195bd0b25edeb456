"""A small, fast, hookable trainer for MLPs (NumPy BLAS, no deep-learning framework), and the features of a network.

Network (docs/training.md): widths ``n_0 = d, n_1, ..., n_L, n_{L+1} = o``; L >= 1 hidden layers, layer i = 1..L+1
(the last is the linear readout).  With ``h_0 = x``::

    z_i = s_i h_{i-1} W_i^T + t_i b_i,    h_i = phi(z_i) (i <= L),    f = z_{L+1}.

Parametrisations: ``'standard'``: s_i = t_i = 1, W_i ~ N(0, C_W / n_{i-1}), b_i ~ N(0, C_b);
``'ntk'``: W_i, b_i ~ N(0, 1), s_i = sqrt(C_W / n_{i-1}), t_i = sqrt(C_b).  The readout uses C_W = readout_gain^2
(LeCun for gain 1) in both.  Both parametrisations draw the same standard normals in the same order, so a network
and its twin in the other parametrisation compute the same function at initialisation; they train differently
(the gradient of a raw parameter carries its multiplier: Theta_i^NTK = s_i^2 HH^T + t_i^2, Hadamard the backward
kernel).  Biases are off (``b = None``) or on; with C_b = 0 the standard biases start at zero.

Training: mini-batch SGD with momentum (PyTorch convention: g <- clip(g_loss) + weight_decay theta,
v <- mu v + g, theta <- theta - lr v; clipping rescales the loss gradient of all parameters together to norm
``clip_norm`` when larger, as ``torch.nn.utils.clip_grad_norm_``), loss ``'mse'`` (mean over the N x o entries of
(f - y)^2; y one-hot for class labels) or ``'cross_entropy'`` (mean over samples of ``-log softmax(f)_y``).  Weight
decay is the gradient of ``(weight_decay / 2) |theta|^2`` over all weights and biases.

Measurements are callbacks: a measure is a callable ``m(net) -> value`` with a ``name``; :func:`train` calls the
measures before training, after chosen epochs, when the training loss first falls below given thresholds and at the
end, and records each value in :attr:`TrainingResult.records`; :func:`apply_measures` runs them on any network.
Features for such measures come from :func:`network_features` (inputs, pre-activations and the Jacobians of the
outputs, batched).  :class:`TangentAlignment` is the per-layer tangent-kernel/label alignment of the equilibrium
experiment: hidden layer i's kernel ``Theta_i[(k,a),(j,b)] = (s_i^2 H H^T + t_i^2 [bias])_ab (D^k D^j^T)_ab``,
H = h_{i-1} on the samples, ``D^k = df_k / dz_i`` (N x n_i); oN x oN, output-major (row k N + a); its CKA with
``vec(Y) vec(Y)^T`` (sigprop.theory.tangent).  Array index l <-> hidden layer l+1.
"""
from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from sigprop.theory.activations import Activation, as_activation
from sigprop.theory.arguments import (
    integer_in_range,
    nonnegative_real,
    numeric_array,
    one_of,
    positive_real,
    real_in_range,
    seed_value,
)
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.tangent import centered_kernel_alignment_rank_one

from ..cluster import blas_thread_limit
from .datasets import load_digits_data, synthetic_data

__all__ = [
    "DTYPES",
    "LOSSES",
    "PARAMETRISATIONS",
    "RUNNING_AVERAGE_GAMMA",
    "THRESHOLD_RULES",
    "LayerFeatures",
    "MLP",
    "MeasureRecord",
    "TangentAlignment",
    "TrainingDivergenceWarning",
    "TrainingResult",
    "apply_measures",
    "evaluate",
    "forward",
    "init_mlp",
    "init_network",
    "iter_layer_features",
    "layer_alignments",
    "layer_kernels",
    "load_digits_data",
    "loss_and_gradients",
    "measure_name",
    "mlp_from_arrays",
    "network_features",
    "one_hot",
    "synthetic_data",
    "train",
]

LOSSES = ("mse", "cross_entropy")
PARAMETRISATIONS = ("standard", "ntk")
DTYPES = ("float64", "float32")                 # parameters and arithmetic of a network and its training
THRESHOLD_RULES = ("full_loss", "running_average")
RUNNING_AVERAGE_GAMMA = 0.9                     # r <- gamma r + (1 - gamma) (batch loss); r = first batch loss


class TrainingDivergenceWarning(RuntimeWarning):
    """:func:`train` met a non-finite loss: training stopped with non-finite parameters (``diverged=True``)."""


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------
def _check_data(X, name: str, dim: int | None = None) -> np.ndarray:
    X = numeric_array(X, name).astype(float, copy=False)
    if X.ndim != 2 or X.shape[0] < 1 or (dim is not None and X.shape[1] != dim):
        raise InputError(f"{name} must be an (N, {dim if dim is not None else 'd'}) array with N >= 1, "
                         f"got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError(f"{name} has non-finite entries")
    return X


def _check_dtype(dtype, name: str = "dtype") -> np.dtype:
    """One of :data:`DTYPES` (a name, a NumPy scalar type or dtype) as a NumPy dtype."""
    try:
        dt = None if dtype is None or isinstance(dtype, bool) else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise InputError(f"{name} must be one of {DTYPES}, got {dtype!r}")
    return dt


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MLP:
    """An MLP: raw parameters ``W[i]`` (n_{i+1} x n_i) and ``b[i]`` (or ``b = None``), i = 0..L (the last: readout).

    The forward pass uses ``w_scale[i] * W[i]`` and ``b_scale[i] * b[i]`` (all 1 in the standard
    parametrisation).  The fields are fixed; :func:`train` updates the arrays in place (use :meth:`copy` first to
    keep the initial network).
    """

    W: list[np.ndarray]
    b: list[np.ndarray] | None = None
    activation: Activation = field(default_factory=lambda: as_activation("relu"))
    parametrisation: str = "standard"
    w_scale: tuple[float, ...] = ()
    b_scale: tuple[float, ...] = ()

    def __post_init__(self):
        n = len(self.W)
        if not self.w_scale:
            object.__setattr__(self, "w_scale", (1.0,) * n)
        if not self.b_scale:
            object.__setattr__(self, "b_scale", (1.0,) * n)

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.W) - 1

    @property
    def inputs(self) -> int:
        return self.W[0].shape[1]

    @property
    def outputs(self) -> int:
        return self.W[-1].shape[0]

    @property
    def widths(self) -> tuple[int, ...]:
        """(n_0, n_1, ..., n_L, o)."""
        return (self.inputs,) + tuple(w.shape[0] for w in self.W)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (float64, or float32: ``init_network(..., dtype='float32')``)."""
        return self.W[0].dtype

    def astype(self, dtype: str | np.dtype) -> "MLP":
        """A copy with the parameters converted to ``dtype`` (one of :data:`DTYPES`).

        Examples
        --------
        >>> net = init_mlp(3, 2, depth=1, width=4)
        >>> net.dtype, net.astype("float32").dtype
        (dtype('float64'), dtype('float32'))
        """
        dt = _check_dtype(dtype)
        return MLP([w.astype(dt) for w in self.W], None if self.b is None else [v.astype(dt) for v in self.b],
                   self.activation, self.parametrisation, self.w_scale, self.b_scale)

    def weight(self, i: int) -> np.ndarray:
        """The effective weight ``w_scale[i] * W[i]`` of array index i (layer i+1)."""
        s = self.w_scale[i]
        return self.W[i] if s == 1.0 else s * self.W[i]

    def copy(self) -> "MLP":
        """A deep copy of the parameters (activation, parametrisation and multipliers shared)."""
        return MLP([w.copy() for w in self.W], None if self.b is None else [v.copy() for v in self.b],
                   self.activation, self.parametrisation, self.w_scale, self.b_scale)


def _check_widths(widths) -> list[int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise InputTypeError(f"widths must be a sequence of integers (n_0, n_1, ..., n_L, o), got "
                             f"{type(widths).__name__}")
    if len(widths) < 3:
        raise InputError(f"widths must list the input, at least one hidden layer and the output (length >= 3), "
                         f"got {list(widths)!r}")
    return [integer_in_range(f"widths[{i}]", w, 1) for i, w in enumerate(widths)]


def _default_C_W(act: Activation) -> float:
    """Critical C_W = 2 / (a+^2 + a-^2) for positively homogeneous activations (2: Kaiming relu), else 1 (LeCun)."""
    if act.slopes is not None:
        ap, am = act.slopes
        if ap * ap + am * am > 0:
            return 2.0 / (ap * ap + am * am)
    return 1.0


def init_network(widths: Sequence[int], *, activation: str | Activation = "relu", C_W: float | None = None,
                 C_b: float = 0.0, bias: bool = False, parametrisation: str = "standard",
                 readout_gain: float = 1.0, seed: int = 0, dtype: str | np.dtype = "float64") -> MLP:
    """A random MLP with hidden weights of variance ``C_W / fan_in``, biases ``N(0, C_b)``, readout ``gain^2/n_L``.

    Draws from ``default_rng(seed)``: every ``W_i`` as a standard normal (n_i x n_{i-1}) matrix in layer order
    (readout last), then, with biases and ``C_b > 0``, every ``b_i`` in layer order.  Standard: ``W_i = sqrt(C_W /
    n_{i-1}) Z_i``, readout ``readout_gain / sqrt(n_L) Z``, ``b_i = sqrt(C_b) Z_i^b`` (zero when C_b = 0); NTK: the raw
    ``Z`` are stored and the factors become the multipliers ``w_scale``, ``b_scale``.

    Parameters
    ----------
    widths : sequence of int
        ``(n_0, n_1, ..., n_L, o)``: input dimension, the L >= 1 hidden widths, number of outputs; all >= 1.
    activation : str or Activation, optional
        Any ``sigprop.theory`` activation (:func:`~sigprop.theory.activations.as_activation`); default relu.
    C_W : float or None, optional
        Weight variance times fan-in, > 0.  None: ``2 / (a+^2 + a-^2)`` for positively homogeneous activations
        (2, Kaiming, for relu), else 1 (LeCun).
    C_b : float, optional
        Bias variance, >= 0 (default 0).
    bias : bool, optional
        Whether the layers have biases (default False).
    parametrisation : {'standard', 'ntk'}, optional
        Where the scale sits: in the weights (standard) or in fixed multipliers (NTK).  NTK with biases needs
        C_b > 0.
    readout_gain : float, optional
        Readout weights ``N(0, readout_gain^2 / n_L)``, > 0 (default 1).
    seed : int, optional
        Seed of ``default_rng``, in [0, 2^64).
    dtype : {'float64', 'float32'}, optional
        dtype of the parameters (default float64).  The normals are drawn in float64 and rounded, so the float32
        network is the float64 one of the same seed to float32 precision.

    Returns
    -------
    MLP
        The network.

    Raises
    ------
    InputError
        Widths shorter than 3 or not positive, C_W <= 0, C_b < 0, readout_gain <= 0, an unknown parametrisation,
        NTK biases with C_b = 0, an unknown activation, a seed outside [0, 2^64), an unknown dtype.
    InputTypeError
        Arguments of the wrong type.

    Examples
    --------
    >>> net = init_network([4, 8, 6, 2], activation="tanh", bias=True, C_b=0.1, seed=0)
    >>> net.depth, net.widths
    (2, (4, 8, 6, 2))
    >>> twin = init_network([4, 8, 6, 2], activation="tanh", bias=True, C_b=0.1, parametrisation="ntk", seed=0)
    >>> X = np.ones((3, 4))
    >>> bool(np.allclose(forward(net, X)[1], forward(twin, X)[1], rtol=1e-12, atol=1e-14))
    True
    """
    widths = _check_widths(widths)
    act = as_activation(activation, argname="activation")
    C_W = _default_C_W(act) if C_W is None else positive_real("C_W", C_W)
    C_b = nonnegative_real("C_b", C_b)
    readout_gain = positive_real("readout_gain", readout_gain)
    if not isinstance(bias, (bool, np.bool_)):
        raise InputTypeError(f"bias must be a bool, got {type(bias).__name__}")
    seed, dt = seed_value(seed), _check_dtype(dtype)
    if parametrisation not in PARAMETRISATIONS:
        raise InputError(f"parametrisation must be one of {PARAMETRISATIONS}, got {parametrisation!r}")
    ntk = parametrisation == "ntk"
    if ntk and bias and C_b == 0:
        raise InputError("C_b must be > 0 for biases in the NTK parametrisation (their multiplier is sqrt(C_b))")
    rng = np.random.default_rng(seed)
    n = len(widths) - 1
    w_fac = [math.sqrt(C_W / widths[i]) for i in range(n - 1)] + [readout_gain / math.sqrt(widths[-2])]
    Z = [rng.standard_normal((widths[i + 1], widths[i])) for i in range(n)]
    b = None
    if bias:
        b = [rng.standard_normal(widths[i + 1]) for i in range(n)] if C_b > 0 else [np.zeros(w) for w in widths[1:]]
    if ntk:
        net = MLP(Z, b, act, "ntk", tuple(w_fac), (math.sqrt(C_b),) * n)
    else:
        W = [z * f for z, f in zip(Z, w_fac)]
        if b is not None and C_b > 0:
            b = [v * math.sqrt(C_b) for v in b]
        net = MLP(W, b, act, "standard")
    return net if dt == np.float64 else net.astype(dt)


def init_mlp(inputs: int, outputs: int, depth: int, width: int = 256, bias: bool = False, seed: int = 0,
             readout_gain: float = 1.0, **kwargs: Any) -> MLP:
    """:func:`init_network` with ``depth`` hidden layers of one ``width`` (default: Kaiming relu, no biases).

    Parameters
    ----------
    inputs, outputs, depth, width : int
        ``widths = [inputs] + [width] * depth + [outputs]``; all >= 1.
    bias, seed, readout_gain, **kwargs
        Passed to :func:`init_network` (``activation``, ``C_W``, ``C_b``, ``parametrisation``, ``dtype``).

    Returns
    -------
    MLP
        The network.

    Examples
    --------
    >>> init_mlp(64, 10, depth=3, width=32).widths
    (64, 32, 32, 32, 10)
    """
    inputs, outputs = integer_in_range("inputs", inputs, 1), integer_in_range("outputs", outputs, 1)
    depth, width = integer_in_range("depth", depth, 1), integer_in_range("width", width, 1)
    return init_network([inputs] + [width] * depth + [outputs], bias=bias, seed=seed, readout_gain=readout_gain,
                        **kwargs)


def _check_layer_array(a, name: str, ndim: int) -> np.ndarray:
    """A finite float32 or float64 array of ``ndim`` dimensions, as a C-contiguous copy."""
    a = numeric_array(a, name)
    if a.dtype.name not in DTYPES:
        raise InputError(f"{name} must have a dtype of {DTYPES}, got {a.dtype}")
    if a.ndim != ndim or 0 in a.shape:
        raise InputError(f"{name} must be a non-empty {ndim}-d array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} has non-finite entries")
    return np.array(a, order="C", copy=True)


def mlp_from_arrays(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None = None,
                    activation: str | Activation = "relu") -> MLP:
    """An :class:`MLP` (standard parametrisation) from plain weight and bias arrays, e.g. a network trained elsewhere.

    Layer i computes ``z_{i+1} = h_i W_i^T + b_i`` with ``W_i = weights[i]`` of shape (n_{i+1}, n_i) -- the layout
    of ``torch.nn.Linear.weight`` -- and ``h_{i+1} = phi(z_{i+1})`` except after the last layer (the linear
    readout).  A PyTorch ``nn.Sequential`` of Linear layers and one activation gives ``weights = [m.weight.detach()
    .cpu().numpy() for m in linears]`` and ``biases = [m.bias.detach().cpu().numpy() for m in linears]``.  The arrays
    are copied (training the result never changes them).

    Parameters
    ----------
    weights : sequence of numpy.ndarray
        At least two 2-d arrays (one hidden layer and the readout), all float32 or all float64, finite, with
        ``weights[i].shape[1] == weights[i - 1].shape[0]``.
    biases : sequence of numpy.ndarray or None, optional
        None (no biases, default) or one 1-d array per layer, ``biases[i]`` of length ``weights[i].shape[0]``, of the
        weights' dtype, finite.
    activation : str or Activation, optional
        The hidden layers' activation (:func:`~sigprop.theory.activations.as_activation`); default relu.

    Returns
    -------
    MLP
        The network; its dtype is the arrays'.

    Raises
    ------
    InputError
        Fewer than two layers, shapes that do not chain, a dtype other than float32/float64 or mixed dtypes,
        non-finite entries, a bias list of the wrong length, an unknown activation.
    InputTypeError
        ``weights`` or ``biases`` not a sequence of numeric arrays.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> W = [rng.standard_normal((5, 3)), rng.standard_normal((2, 5))]
    >>> b = [rng.standard_normal(5), rng.standard_normal(2)]
    >>> net = mlp_from_arrays(W, b)
    >>> net.widths, net.dtype
    ((3, 5, 2), dtype('float64'))
    >>> X = rng.standard_normal((4, 3))
    >>> bool(np.allclose(forward(net, X)[1], np.maximum(X @ W[0].T + b[0], 0) @ W[1].T + b[1], rtol=1e-14))
    True
    """
    if isinstance(weights, (str, bytes, np.ndarray)) or not isinstance(weights, Sequence):
        raise InputTypeError(f"weights must be a sequence of 2-d arrays, got {type(weights).__name__}")
    if len(weights) < 2:
        raise InputError(f"weights must hold at least two layers (a hidden layer and the readout), got {len(weights)}")
    if biases is not None and (isinstance(biases, (str, bytes, np.ndarray)) or not isinstance(biases, Sequence)):
        raise InputTypeError(f"biases must be None or a sequence of 1-d arrays, got {type(biases).__name__}")
    if biases is not None and len(biases) != len(weights):
        raise InputError(f"biases must hold one array per layer ({len(weights)}), got {len(biases)}")
    act = as_activation(activation, argname="activation")
    W = [_check_layer_array(w, f"weights[{i}]", 2) for i, w in enumerate(weights)]
    for i in range(1, len(W)):
        if W[i].shape[1] != W[i - 1].shape[0]:
            raise InputError(f"weights[{i}] must have {W[i - 1].shape[0]} columns (the rows of weights[{i - 1}]), "
                             f"got shape {W[i].shape}")
    b = None
    if biases is not None:
        b = [_check_layer_array(v, f"biases[{i}]", 1) for i, v in enumerate(biases)]
        for i, (v, w) in enumerate(zip(b, W)):
            if v.shape[0] != w.shape[0]:
                raise InputError(f"biases[{i}] must have length {w.shape[0]} (the rows of weights[{i}]), "
                                 f"got {v.shape[0]}")
    kinds = sorted({a.dtype.name for a in W + (b or [])})
    if len(kinds) != 1:
        raise InputError(f"weights and biases must all have one dtype of {DTYPES}, got {kinds}")
    return MLP(W, b, act, "standard")


# --------------------------------------------------------------------------------------------
# Forward and backward passes
# --------------------------------------------------------------------------------------------
def _preact(net: MLP, i: int, h: np.ndarray) -> np.ndarray:
    """z_{i+1} = s_i h W_i^T + t_i b_i (array index i)."""
    z = h @ net.W[i].T
    s = net.w_scale[i]
    if s != 1.0:
        z *= s
    if net.b is not None:
        t = net.b_scale[i]
        z += net.b[i] if t == 1.0 else t * net.b[i]
    return z


def _forward_pass(net: MLP, X: np.ndarray, keep_preact: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(H, Z): H[i] = h_i (i = 0..L, H[0] = X), Z[i] = z_{i+1} (i = 0..L, Z[L] = outputs f).

    ``keep_preact=False``: Z holds only the outputs, ``Z = [None] * L + [f]`` (less memory traffic in training
    when phi' is read off the outputs, see :func:`_deriv_multiplier`)."""
    H, Z = [X], []
    phi = net.activation.fn
    h = X
    for i in range(net.depth):
        z = _preact(net, i, h)
        h = _as_dtype_of(phi(z), z)
        Z.append(z if keep_preact else None)
        H.append(h)
    Z.append(_preact(net, net.depth, h))
    return H, Z


def _output(net: MLP, X: np.ndarray) -> np.ndarray:
    """f(X) (N x o), keeping no intermediate arrays (evaluation)."""
    phi = net.activation.fn
    h = X
    for i in range(net.depth):
        z = _preact(net, i, h)
        h = _as_dtype_of(phi(z), z)
    return _preact(net, net.depth, h)


def _as_dtype_of(h: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``h`` in the dtype of ``z`` (an activation that computes in float64 keeps float32 training in float32)."""
    return h if h.dtype == z.dtype else h.astype(z.dtype)


def forward(net: MLP, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(H, F): H[l] = h_l (N x n_l) for l = 0..L (H[0] = X), F = outputs (N x o).

    Examples
    --------
    >>> net = init_mlp(3, 2, depth=1, width=4)
    >>> H, F = forward(net, np.zeros((5, 3)))
    >>> len(H), F.shape
    (2, (5, 2))
    """
    H, Z = _forward_pass(net, _check_data(X, "X", net.inputs).astype(net.dtype, copy=False))
    return H, Z[-1]


def _loss_and_dF(F: np.ndarray, T: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    """Mean loss and its gradient with respect to the outputs F (N x o); T one-hot labels or targets (N x o)."""
    n = F.shape[0]
    if loss == "mse":
        R = F - T
        return float(np.mean(R * R)), (2.0 / R.size) * R
    m = F.max(axis=1, keepdims=True)
    E = np.exp(F - m)
    S = E.sum(axis=1, keepdims=True)
    logp = F - m - np.log(S)
    return float(-np.sum(logp * T) / n), (E / S - T) / n


def _relu_deriv_multiply(g: np.ndarray, h: np.ndarray) -> None:
    np.multiply(g, h > 0.0, out=g)


def _deriv_multiplier(act: Activation) -> tuple[Callable[[np.ndarray, np.ndarray], None], bool]:
    """(multiply, from_output): ``multiply(g, a)`` sets g <- g * phi'(z) in place, where ``a`` is the output
    h = phi(z) if ``from_output`` else z.  relu reads its 0/1 derivative off the output (h > 0 iff z > 0: the same
    numbers, and training need not keep z); every other activation uses ``act.deriv(z)``."""
    if act.name == "relu" and act.is_builtin:
        return _relu_deriv_multiply, True
    deriv = act.deriv

    def multiply(g: np.ndarray, z: np.ndarray) -> None:
        g *= deriv(z)

    return multiply, False


def _gradients(net: MLP, H: list[np.ndarray], Z: list[np.ndarray], dF: np.ndarray):
    """Gradients of a loss with gradient dF (N x o) w.r.t. the raw parameters: (gW, gb), gb None without biases."""
    L = net.depth
    scale_by_deriv, from_output = _deriv_multiplier(net.activation)
    gW: list = [None] * (L + 1)
    gb: list | None = None if net.b is None else [None] * (L + 1)
    g = dF
    for i in range(L, -1, -1):
        if i < L:
            scale_by_deriv(g, H[i + 1] if from_output else Z[i])    # dLoss/dz_{i+1}
        s = net.w_scale[i]
        gW[i] = g.T @ H[i] if s == 1.0 else s * (g.T @ H[i])
        if gb is not None:
            t = net.b_scale[i]
            gb[i] = g.sum(axis=0) if t == 1.0 else t * g.sum(axis=0)
        if i > 0:
            g = g @ net.W[i]                       # dLoss/dh_i (times s below)
            if s != 1.0:
                g *= s
    return gW, gb


def _params(net: MLP) -> list[np.ndarray]:
    return list(net.W) + ([] if net.b is None else list(net.b))


def loss_and_gradients(net: MLP, X: np.ndarray, y: np.ndarray, loss: str = "mse",
                       weight_decay: float = 0.0) -> tuple[float, list[np.ndarray], list[np.ndarray] | None]:
    """Objective ``mean loss + (weight_decay / 2) |theta|^2`` and its gradients w.r.t. the raw W and b.

    Parameters
    ----------
    net : MLP
        The network.
    X : numpy.ndarray, shape (N, n_0)
        Finite inputs.
    y : numpy.ndarray
        Integer class labels (N,) (one-hot targets), or for ``'mse'`` float targets (N,) (o = 1) or (N, o).
    loss : {'mse', 'cross_entropy'}, optional
        The loss (module docstring).
    weight_decay : float, optional
        >= 0; the penalty covers all weights and biases.

    Returns
    -------
    objective : float
        The value.
    gW, gb : list of numpy.ndarray, list or None
        Gradients, shaped as ``net.W`` and ``net.b``.

    Examples
    --------
    >>> net = init_mlp(3, 2, depth=2, width=4, seed=1)
    >>> val, gW, gb = loss_and_gradients(net, np.eye(3), np.array([0, 1, 1]), "cross_entropy")
    >>> [g.shape for g in gW], gb is None
    ([(4, 3), (4, 4), (2, 4)], True)
    """
    one_of("loss", loss, LOSSES)
    X = _check_data(X, "X", net.inputs).astype(net.dtype, copy=False)
    T, _ = _targets(net, y, loss, X.shape[0])
    T = T.astype(net.dtype, copy=False)
    weight_decay = nonnegative_real("weight_decay", weight_decay)
    H, Z = _forward_pass(net, X)
    val, dF = _loss_and_dF(Z[-1], T, loss)
    gW, gb = _gradients(net, H, Z, dF)
    if weight_decay > 0:
        val += 0.5 * weight_decay * sum(float(np.vdot(p, p)) for p in _params(net))
        gW = [g + weight_decay * w for g, w in zip(gW, net.W)]
        gb = None if gb is None else [g + weight_decay * v for g, v in zip(gb, net.b)]
    return val, gW, gb


# --------------------------------------------------------------------------------------------
# Targets and evaluation
# --------------------------------------------------------------------------------------------
def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    """(N, classes) matrix with a 1 at (a, y_a).

    Examples
    --------
    >>> one_hot(np.array([1, 0]), 3).tolist()
    [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    out = np.zeros((y.size, classes))
    out[np.arange(y.size), y] = 1.0
    return out


def _targets(net: MLP, y, loss: str, N: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, labels): T (N x o) one-hot labels or float targets; labels the class indices (None for regression)."""
    y = numeric_array(y, "y")
    o = net.outputs
    if np.issubdtype(y.dtype, np.integer):
        if y.shape != (N,):
            raise InputError(f"y: labels must be integer class indices of shape ({N},), got {y.shape}")
        if y.min() < 0 or y.max() >= o:
            raise InputError(f"y: labels must lie in [0, {o}) (the number of outputs), got [{y.min()}, {y.max()}]")
        return one_hot(y, o), y
    if loss == "cross_entropy":
        raise InputError(f"y: cross_entropy needs integer class labels of shape ({N},), got dtype {y.dtype}")
    if not (y.shape == (N, o) or (o == 1 and y.shape == (N,))):
        raise InputError(f"y: mse targets must be integer labels ({N},) or floats of shape ({N}, {o})"
                         f"{f' or ({N},)' if o == 1 else ''}, got {y.dtype} {y.shape}")
    if not np.all(np.isfinite(y)):
        raise InputError("targets y have non-finite entries")
    return y.astype(float).reshape(N, o), None


def evaluate(net: MLP, X: np.ndarray, T: np.ndarray, loss: str, chunk: int = 2048,
             labels: np.ndarray | None = None) -> tuple[float, float]:
    """(mean loss, accuracy) over a data set, in chunks; T (N x o) one-hot or targets.

    The accuracy compares argmax f with ``labels`` (default: argmax of T); NaN for regression targets (o = 1).

    Examples
    --------
    >>> net = init_mlp(3, 2, depth=1, width=4)
    >>> loss, acc = evaluate(net, np.eye(3), one_hot(np.array([0, 1, 1]), 2), "cross_entropy")
    >>> loss > 0 and 0 <= acc <= 1
    True
    """
    one_of("loss", loss, LOSSES)
    X = _check_data(X, "X", net.inputs).astype(net.dtype, copy=False)
    T = _check_data(T, "T", net.outputs)
    if T.shape[0] != X.shape[0]:
        raise InputError(f"T must have one row per sample of X ({X.shape[0]}), got {T.shape[0]}")
    if labels is not None:
        labels = numeric_array(labels, "labels")
        if labels.shape != (X.shape[0],) or labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
            raise InputError(f"labels must be None or non-negative integer class indices of shape ({X.shape[0]},), "
                             f"got {labels.dtype} {labels.shape}")
    return _evaluate(net, X, T.astype(net.dtype, copy=False), loss, integer_in_range("chunk", chunk, 1), labels)


def _evaluate(net: MLP, X: np.ndarray, T: np.ndarray, loss: str, chunk: int = 2048,
              labels: np.ndarray | None = None) -> tuple[float, float]:
    """:func:`evaluate` on checked arguments (X and T in the network's dtype)."""
    tot, correct = 0.0, 0
    for s in range(0, X.shape[0], chunk):
        F = _output(net, X[s:s + chunk])
        val, _ = _loss_and_dF(F, T[s:s + chunk], loss)
        tot += val * F.shape[0]
        ref = T[s:s + chunk].argmax(axis=1) if labels is None else labels[s:s + chunk]
        correct += int(np.sum(F.argmax(axis=1) == ref))
    acc = correct / X.shape[0] if (labels is not None or T.shape[1] > 1) else math.nan
    return tot / X.shape[0], acc


# --------------------------------------------------------------------------------------------
# Features: layer inputs, pre-activations, Jacobians
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerFeatures:
    """Features of layer ``layer`` (1-based; L+1 = readout) on N samples, o outputs.

    ``inputs`` h_{i-1} (N x n_{i-1}); ``preact`` z_i (N x n_i); ``jac_input`` df/dh_{i-1} (N x o x n_{i-1});
    ``jac_preact`` df/dz_i (N x o x n_i).  ``jac_input = jac_preact @ weight``, ``weight`` = s_i W_i (n_i x n_{i-1}).
    """

    layer: int
    inputs: np.ndarray
    preact: np.ndarray
    jac_input: np.ndarray
    jac_preact: np.ndarray
    weight: np.ndarray


def iter_layer_features(net: MLP, X: np.ndarray) -> Iterator[LayerFeatures]:
    """:class:`LayerFeatures` of layers L+1, L, ..., 1 (top down; memory of one layer's Jacobians at a time).

    Backward recursion, batched over samples and outputs (one BLAS product per layer): ``df/dz_{L+1} = I_o``,
    ``df/dh_{i-1} = df/dz_i (s_i W_i)``, ``df/dz_{i-1} = df/dh_{i-1} * phi'(z_{i-1})``.
    """
    X = _check_data(X, "X", net.inputs)
    H, Z = _forward_pass(net, X)
    N, o = X.shape[0], net.outputs
    deriv = net.activation.deriv
    Jp = np.broadcast_to(np.eye(o), (N, o, o))
    for i in range(net.depth, -1, -1):
        Wi = net.weight(i)
        n_out, n_in = Wi.shape
        Ji = (Jp.reshape(N * o, n_out) @ Wi).reshape(N, o, n_in)
        yield LayerFeatures(i + 1, H[i], Z[i], Ji, Jp, Wi)
        if i > 0:
            Jp = Ji * deriv(Z[i - 1])[:, None, :]


def network_features(net: MLP, X: np.ndarray) -> list[LayerFeatures]:
    """Inputs, pre-activations and output Jacobians of every layer 1..L+1 (list index i-1 <-> layer i).

    Parameters
    ----------
    net : MLP
        The network.
    X : numpy.ndarray, shape (N, n_0)
        Finite inputs.

    Returns
    -------
    list of LayerFeatures
        Layer i: h_{i-1} (N x n_{i-1}), z_i (N x n_i), df/dh_{i-1} (N x o x n_{i-1}), df/dz_i (N x o x n_i), with
        ``df/dh_{i-1} = df/dz_i @ (s_i W_i)`` exactly.  Memory O(N o sum_i n_i); stream layers with
        :func:`iter_layer_features` for deep networks.

    Raises
    ------
    InputError
        X not (N, n_0) or non-finite.

    Examples
    --------
    >>> net = init_network([3, 5, 4, 2], activation="tanh", seed=0)
    >>> feats = network_features(net, np.ones((6, 3)))
    >>> [(f.layer, f.jac_input.shape, f.jac_preact.shape) for f in feats]
    [(1, (6, 2, 3), (6, 2, 5)), (2, (6, 2, 5), (6, 2, 4)), (3, (6, 2, 4), (6, 2, 2))]
    """
    return list(iter_layer_features(net, X))[::-1]


# --------------------------------------------------------------------------------------------
# Per-layer tangent kernels and their label alignment
# --------------------------------------------------------------------------------------------
def _outputs(net: MLP, outputs) -> list[int]:
    outs = list(range(net.outputs)) if outputs is None else [int(i) for i in outputs]
    if not outs or min(outs) < 0 or max(outs) >= net.outputs:
        raise InputError(f"outputs must be indices in [0, {net.outputs}), got {outputs!r}")
    return outs


def _layer_factors(net: MLP, X: np.ndarray, outs: list[int], readout: bool = False):
    """Yield (l, F_l, D_l) for hidden layers l+1 = L..1 (after the readout l = L when ``readout``): F_l = s^2 H H^T
    (+ t^2 with biases), N x N, on the layer's inputs; D_l = df_k/dz_{l+1} for the selected outputs, (o N) x n_{l+1},
    output-major (the readout's D_L stacks identity rows: df_k/dz_{L+1} = e_k)."""
    for feat in iter_layer_features(net, X):
        l = feat.layer - 1
        if l == net.depth and not readout:
            continue
        h = feat.inputs
        F = h @ h.T
        s = net.w_scale[l]
        if s != 1.0:
            F *= s * s
        if net.b is not None:
            F += net.b_scale[l] ** 2
        Jp = feat.jac_preact[:, outs, :]
        yield l, F, np.ascontiguousarray(Jp.transpose(1, 0, 2)).reshape(len(outs) * h.shape[0], -1)


def layer_kernels(net: MLP, X: np.ndarray, outputs: list[int] | None = None):
    """(forward, backward, tangent) per hidden layer: forward (L, N, N), backward and tangent (L, m, m), m = o N.

    forward[l] = s^2 H_l H_l^T (+ t^2 with biases) on the inputs of layer l+1; backward[l] = D_{l+1} D_{l+1}^T over
    the selected outputs (output-major); tangent = forward (tiled o x o) o backward, the Gram of the gradients of
    f_k(x_a) w.r.t. layer l+1's raw parameters.  ``outputs=None``: all outputs.  Standard parametrisation:
    tangent[l] * C_W / n_l is the NTK-parametrised kernel of docs/conventions.md.  Memory O(L m^2): for large L use
    :func:`layer_alignments`, which streams over layers.

    Examples
    --------
    >>> fwd, bwd, T = layer_kernels(init_mlp(3, 2, depth=2, width=4), np.eye(3))
    >>> fwd.shape, T.shape
    ((2, 3, 3), (2, 6, 6))
    """
    outs = _outputs(net, outputs)
    X = _check_data(X, "X", net.inputs)
    N, o, L = X.shape[0], len(outs), net.depth
    fwd = np.empty((L, N, N))
    bwd = np.empty((L, o * N, o * N))
    for l, F, D in _layer_factors(net, X, outs):
        fwd[l] = F
        bwd[l] = D @ D.T
    return fwd, bwd, np.tile(fwd, (1, o, o)) * bwd


ALIGNMENT_DEFINITIONS = ("sigprop", "reference")


def _block_centred_alignment(F: np.ndarray, D: np.ndarray, Yc: np.ndarray, layer: int) -> float:
    """``yc^T K yc / (|K|_F |yc|^2)``, K = (I_o x C_N) T (I_o x C_N), T = tile(F) o D D^T; one N x N block at a time.

    ``Yc`` (N, o) has centred columns, so ``(I_o x C_N) vec(Yc) = vec(Yc)`` and the numerator is ``yc^T T yc``;
    K's blocks are symmetric in pairs (K_jk = K_kj^T), so the pairs j > k are counted twice.  Memory O(N^2).
    """
    N, o = Yc.shape
    D3 = D.reshape(o, N, -1).astype(float, copy=False)
    F = F.astype(float, copy=False)
    num = norm2 = raw2 = 0.0
    for k in range(o):
        for j in range(k, o):
            B = D3[k] @ D3[j].T
            B *= F
            w = 1.0 if j == k else 2.0
            raw2 += w * float(np.vdot(B, B))
            B -= B.mean(axis=0, keepdims=True)
            B -= B.mean(axis=1, keepdims=True)
            norm2 += w * float(np.vdot(B, B))
            num += w * float(Yc[:, k] @ B @ Yc[:, j])
    if not math.isfinite(raw2):
        raise InputError(f"layer {layer}: the tangent kernel has non-finite entries (or entries too large to square)")
    if not norm2 > 1e-24 * raw2:
        raise InputError(f"layer {layer}: the centred tangent kernel is zero: its alignment is undefined")
    return num / (math.sqrt(norm2) * float(np.vdot(Yc, Yc)))


def layer_alignments(net: MLP, X: np.ndarray, Y1h: np.ndarray, *, definition: str = "sigprop") -> np.ndarray:
    """Alignment of each layer's tangent kernel with the labels Y (N, o), e.g. one-hot; streams over layers.

    Both definitions start from the same raw kernel of layer i's raw parameters (weight, and bias when the network
    has biases), on N samples and all o outputs, oN x oN, output-major (row ``k N + a``)::

        T_i[(k,a),(j,b)] = (s_i^2 h_{i-1}(x_a) . h_{i-1}(x_b) + t_i^2 [bias]) (D_i^k D_i^j^T)_ab,   D_i^k = df_k/dz_i,

    the Gram of the per-example Jacobians ``J_i[(k,a), :] = d f_k(x_a) / d(W_i, b_i)``.  With ``y = vec(Y)``
    (output-major) they differ in which layers, which centring and which label vector::

        'sigprop' (default)                         'reference' (nngeometry Jacobian(..., centering=True))
        hidden layers i = 1..L (readout left out)   every Linear layer i = 1..L+1 (readout included)
        C = I_{oN} - 1 1^T / (oN): one global       C = I_o (x) C_N, C_N = I_N - 1 1^T / N: each output's
            centring over all oN entries                block centred over the samples, J_i^c = C J_i
        y_c = C y (y minus the mean of all oN)      y_c = vec(Y - 1 mean_a Y) (each column centred)
        A = y_c^T T y_c / (|C T C|_F |y_c|^2)       A = y_c^T K y_c / (|K|_F |y_c|^2),  K = C T C = J^c J^c^T

    'sigprop' is the centred kernel alignment ``<C T C, C y y^T C> / (|C T C| |C y y^T C|)``
    (:func:`sigprop.theory.tangent.centered_kernel_alignment_rank_one`).  'reference' is the per-layer formula of
    the reference equilibrium code (``layer_alignment`` in ``bugbuglou/NTK_alignment``: ``A = yTKy / (frobK *
    |y|^2)`` with ``targets = one_hot(targets); targets -= targets.mean(dim=0)``, K from ``FMatDense`` of a
    per-layer ``Jacobian(..., centering=True)``), in float64.  Both numerators are ``y_c^T T y_c`` (the centring
    leaves y_c unchanged); for one-hot labels of balanced classes the two y_c coincide.  What differs is the norm:
    the global C keeps, and the block C removes, each output's mean over the samples (of the Jacobian rows), which
    carries no label information; and the readout layer.

    Parameters
    ----------
    net : MLP
        The network.
    X : numpy.ndarray, shape (N, n_0)
        Finite inputs.
    Y1h : numpy.ndarray, shape (N, o)
        Targets (one-hot labels), not all equal ('sigprop') or with some column not constant ('reference').
    definition : {'sigprop', 'reference'}, optional
        Which alignment (above); default 'sigprop'.

    Returns
    -------
    numpy.ndarray
        'sigprop': shape (L,), index l <-> hidden layer l+1; 'reference': shape (L+1,), index i <-> layer i+1,
        the last the readout (the reference's order: input layer first).  Index l < L names the same layer in both.

    Raises
    ------
    InputError
        An unknown definition, X or Y1h of the wrong shape, labels with zero centred norm, a layer whose centred
        kernel is zero or non-finite.

    Examples
    --------
    >>> X, y = synthetic_data(8, dim=3, classes=2, seed=2)
    >>> net, Y = init_mlp(3, 2, depth=2, width=16), one_hot(y, 2)
    >>> layer_alignments(net, X, Y).shape, layer_alignments(net, X, Y, definition="reference").shape
    ((2,), (3,))
    """
    definition = one_of("definition", definition, ALIGNMENT_DEFINITIONS)
    X = _check_data(X, "X", net.inputs)
    Y1h = np.asarray(Y1h, dtype=float)
    if Y1h.shape != (X.shape[0], net.outputs):
        raise InputError(f"label matrix must be (N, o) = ({X.shape[0]}, {net.outputs}), got {Y1h.shape}")
    if definition == "reference":
        return _reference_layer_alignments(net, X, Y1h)
    y = Y1h.T.reshape(-1)
    if not np.ptp(y) > 0:
        raise InputError("label matrix has zero centred norm (all entries equal)")
    o = net.outputs
    out = np.empty(net.depth)
    for l, F, D in _layer_factors(net, X, list(range(o))):
        T = D @ D.T
        T *= np.tile(F, (o, o))
        out[l] = centered_kernel_alignment_rank_one(T, y)
    return out


def _reference_layer_alignments(net: MLP, X: np.ndarray, Y1h: np.ndarray) -> np.ndarray:
    """The 'reference' definition of :func:`layer_alignments`: shape (L+1,), readout last."""
    if not np.all(np.isfinite(Y1h)):
        raise InputError("label matrix has non-finite entries")
    Yc = Y1h - Y1h.mean(axis=0, keepdims=True)
    if not np.vdot(Yc, Yc) > 0:
        raise InputError("label matrix has zero centred norm (every column constant over the samples)")
    out = np.empty(net.depth + 1)
    for l, F, D in _layer_factors(net, X, list(range(net.outputs)), readout=True):
        out[l] = _block_centred_alignment(F, D, Yc, l + 1)
    return out


# --------------------------------------------------------------------------------------------
# Measures (callbacks)
# --------------------------------------------------------------------------------------------
def measure_name(measure: Callable[[MLP], Any]) -> str:
    """The name a measure is recorded under: its ``name`` attribute, else its ``__name__``.

    Examples
    --------
    >>> def weight_norm(net):
    ...     return float(np.linalg.norm(net.W[0]))
    >>> measure_name(weight_norm)
    'weight_norm'
    """
    if not callable(measure):
        raise InputTypeError(f"a measure must be a callable taking the network, got {type(measure).__name__}")
    name = getattr(measure, "name", None) or getattr(measure, "__name__", None)
    if not isinstance(name, str) or not name:
        raise InputError(f"measure {measure!r} has no name: give it a str attribute 'name'")
    return name


def _check_measures(measures) -> list[tuple[str, Callable[[MLP], Any]]]:
    if callable(measures):
        measures = [measures]
    if isinstance(measures, (str, bytes)) or not isinstance(measures, Sequence):
        raise InputTypeError(f"measures must be a list of callables, got {type(measures).__name__}")
    named = [(measure_name(m), m) for m in measures]
    names = [n for n, _ in named]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"measures must have distinct names, got {dup} more than once")
    return named


def apply_measures(net: MLP, measures: Sequence[Callable[[MLP], Any]]) -> dict[str, Any]:
    """Run measures on a network (trained or not): ``{name: measure(net)}`` in the given order.

    Parameters
    ----------
    net : MLP
        The network.
    measures : sequence of callables
        Each ``m(net) -> value``, with distinct names (:func:`measure_name`).

    Returns
    -------
    dict
        Name -> value.

    Examples
    --------
    >>> def readout_norm(net):
    ...     return float(np.linalg.norm(net.W[-1]))
    >>> list(apply_measures(init_mlp(3, 2, depth=1, width=4), [readout_norm]))
    ['readout_norm']
    """
    return {name: m(net) for name, m in _check_measures(measures)}


@dataclass(frozen=True, eq=False)
class TangentAlignment:
    """Measure: per-layer alignment of the tangent kernel with the labels (:func:`layer_alignments`).

    Parameters
    ----------
    X : numpy.ndarray, shape (N, n_0)
        Samples on which the kernels are taken.
    labels : numpy.ndarray of int, shape (N,)
        Their class indices (one-hot over the network's outputs).
    name : str, optional
        Record name (default ``'tangent_alignment'``).
    definition : {'sigprop', 'reference'}, optional
        ``'sigprop'`` (default): CKA with global centring, hidden layers only, shape (L,); ``'reference'``: the
        reference code's per-output-centred alignment, readout included, shape (L+1,) (:func:`layer_alignments`).

    Examples
    --------
    >>> X, y = synthetic_data(8, dim=3, classes=2, seed=2)
    >>> m = TangentAlignment(X, y)
    >>> r = TangentAlignment(X, y, name="reference_alignment", definition="reference")
    >>> values = apply_measures(init_mlp(3, 2, depth=2, width=16), [m, r])
    >>> values["tangent_alignment"].shape, values["reference_alignment"].shape
    ((2,), (3,))
    """

    X: np.ndarray
    labels: np.ndarray
    name: str = "tangent_alignment"
    definition: str = "sigprop"

    def __post_init__(self):
        one_of("definition", self.definition, ALIGNMENT_DEFINITIONS)
        X = _check_data(self.X, "X")
        labels = np.asarray(self.labels)
        if labels.shape != (X.shape[0],) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
            raise InputError(f"labels must be non-negative integer class indices of shape ({X.shape[0]},), "
                             f"got {labels.dtype} {labels.shape}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "labels", labels)

    def __call__(self, net: MLP) -> np.ndarray:
        if self.labels.max() >= net.outputs:
            raise InputError(f"labels must lie in [0, {net.outputs}) (the network's outputs)")
        return layer_alignments(net, self.X, one_hot(self.labels, net.outputs), definition=self.definition)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasureRecord:
    """One value of a measure: ``trigger`` 'init' (epoch 0), 'epoch', 'threshold' (with its ``threshold``) or
    'final'; ``epoch`` = epochs completed (or begun, after a step budget ended one early); ``loss`` = training loss
    then; ``step`` = SGD steps taken then."""

    name: str
    trigger: str
    epoch: int
    loss: float
    value: Any
    threshold: float | None = None
    step: int | None = None


@dataclass
class TrainingResult:
    """Loss and accuracy per epoch (index 0: before training), the measures' records, threshold epochs and steps.

    Entry e of ``loss_history``, ``accuracy_history``, ``step_history`` and ``running_loss_history`` is read after
    epoch e (the last one after fewer steps when ``max_steps`` ended an epoch early): the full training-set loss,
    its accuracy, the SGD steps taken so far, and the running average of the mini-batch losses (NaN at e = 0).
    ``diverged_epoch`` / ``diverged_step``: where a non-finite loss was first seen (the parameters after that many
    steps gave it), None without a divergence.
    """

    net: MLP
    loss_history: list[float]
    accuracy_history: list[float]
    thresholds: tuple[float, ...]
    records: list[MeasureRecord] = field(default_factory=list)
    epoch_at: dict[float, int] = field(default_factory=dict)   # threshold -> epoch (1-based) it was first crossed
    diverged: bool = False
    seconds: float = 0.0
    measure_seconds: float = 0.0
    clipped_steps: int = 0                                    # steps whose gradient was clipped
    steps: int = 0                                            # SGD steps taken
    step_at: dict[float, int] = field(default_factory=dict)   # threshold -> SGD steps taken when first crossed
    step_history: list[int] = field(default_factory=list)
    running_loss_history: list[float] = field(default_factory=list)
    threshold_rule: str = "full_loss"
    diverged_epoch: int | None = None
    diverged_step: int | None = None

    @property
    def mlp(self) -> MLP:
        return self.net

    def _find(self, name: str, trigger: str, key=None):
        for r in self.records:
            if r.name == name and r.trigger == trigger and (key is None or key(r)):
                return r.value
        return None

    def initial(self, name: str):
        """The value before training (None if not measured)."""
        return self._find(name, "init")

    def final(self, name: str):
        """The value at the end of training (None if not measured, or diverged)."""
        return self._find(name, "final")

    def at_threshold(self, name: str, threshold: float):
        """The value when the loss first fell below ``threshold`` (None if never)."""
        return self._find(name, "threshold", lambda r: r.threshold == float(threshold))

    def at_epoch(self, name: str, epoch: int):
        """The value after epoch ``epoch`` (a ``measure_epochs`` entry; None if not measured)."""
        return self._find(name, "epoch", lambda r: r.epoch == int(epoch))

    def last(self, name: str) -> tuple[str, Any]:
        """The value at the lowest threshold reached ('loss<thr'), else at the end of training ('final')."""
        reached = sorted(t for t in self.epoch_at if self.at_threshold(name, t) is not None)
        if reached:
            return f"loss<{reached[0]:g}", self.at_threshold(name, reached[0])
        return "final", self.final(name)


@dataclass(frozen=True)
class _Plan:
    loss: str
    lr: float
    momentum: float
    batch_size: int
    epochs: int
    weight_decay: float
    clip_norm: float | None
    thresholds: tuple[float, ...]
    measure_epochs: frozenset[int]
    measure_init: bool
    measure_final: bool
    stop_at_last_threshold: bool
    seed: int
    max_steps: int | None = None
    threshold_rule: str = "full_loss"
    dtype: np.dtype | None = None       # None: the network's


def _check_plan(loss, lr, momentum, batch_size, epochs, weight_decay, clip_norm, thresholds, measure_epochs,
                measure_init, measure_final, stop_at_last_threshold, seed, max_steps=None, threshold_rule="full_loss",
                dtype=None) -> _Plan:
    one_of("loss", loss, LOSSES)
    seed = seed_value(seed)
    if max_steps is not None:
        max_steps = integer_in_range("max_steps", max_steps, 1)
    one_of("threshold_rule", threshold_rule, THRESHOLD_RULES)
    dtype = None if dtype is None else _check_dtype(dtype)
    lr = positive_real("lr", lr)
    momentum = real_in_range("momentum", momentum, 0.0, 1.0, hi_open=True)
    weight_decay = nonnegative_real("weight_decay", weight_decay)
    if clip_norm is not None:
        if isinstance(clip_norm, bool) or not isinstance(clip_norm, numbers.Real):
            raise InputTypeError(f"clip_norm must be None or a real number > 0, got {type(clip_norm).__name__}")
        if not (math.isfinite(clip_norm) and clip_norm > 0):
            raise InputError(f"clip_norm must be None or finite and > 0, got {clip_norm!r}")
        clip_norm = float(clip_norm)
    batch_size, epochs = integer_in_range("batch_size", batch_size, 1), integer_in_range("epochs", epochs, 0)
    ts = tuple(sorted((positive_real("thresholds", t) for t in thresholds), reverse=True))
    eps = frozenset(integer_in_range("measure_epochs", e, 1) for e in measure_epochs)
    return _Plan(loss, lr, momentum, batch_size, epochs, weight_decay, clip_norm, ts, eps, bool(measure_init),
                 bool(measure_final), bool(stop_at_last_threshold), seed, max_steps, threshold_rule, dtype)


def _check_net(net) -> None:
    """``net`` an :class:`MLP` whose parameters all share one dtype of :data:`DTYPES`."""
    if not isinstance(net, MLP):
        raise InputTypeError(f"net must be an MLP, got {type(net).__name__}")
    kinds = {np.asarray(p).dtype.name for p in _params(net)}
    if len(kinds) != 1 or not kinds <= set(DTYPES):
        raise InputError(f"net's parameters must all have one dtype of {DTYPES}, got {sorted(kinds)}")


def train(net: MLP, X: np.ndarray, y: np.ndarray, *, loss: str = "cross_entropy", lr: float = 0.01,
          momentum: float = 0.9, batch_size: int = 32, epochs: int = 50, weight_decay: float = 0.0,
          clip_norm: float | None = None, measures: Sequence[Callable[[MLP], Any]] = (),
          thresholds: Sequence[float] = (), measure_epochs: Sequence[int] = (), measure_init: bool = True,
          measure_final: bool = True, stop_at_last_threshold: bool = False, seed: int = 0,
          max_steps: int | None = None, threshold_rule: str = "full_loss", dtype: str | np.dtype | None = None,
          blas_threads: int | None = 1) -> TrainingResult:
    """Train ``net`` in place by mini-batch SGD with momentum, calling the measures at the chosen moments.

    After every epoch the loss is evaluated on the whole training set (``loss_history``).  Measures run: before
    training (``measure_init``), after each epoch in ``measure_epochs``, after the epoch in which a threshold was
    first reached (``threshold_rule``; all thresholds reached in one epoch share one evaluation), and at the end
    (``measure_final``; not after a divergence).  A measure runs at most once per epoch; every trigger gets its
    own :class:`MeasureRecord`.  Training stops after ``epochs`` epochs or ``max_steps`` SGD steps, whichever
    comes first; early on a non-finite loss (``diverged``, with a :class:`TrainingDivergenceWarning` naming the
    epoch and step); and, with ``stop_at_last_threshold``, once every threshold has been reached.

    Threshold rules: ``'full_loss'`` (default): threshold t is reached after the first epoch whose full
    training-set loss is < t.  ``'running_average'`` (the rule of the reference code of the equilibrium
    experiment): the mini-batch losses feed a running average ``r <- 0.9 r + 0.1 loss`` (:data:`RUNNING_AVERAGE_GAMMA`;
    r starts at the first batch's loss and runs across epochs; ``running_loss_history``); t is reached after
    epoch e >= 2 when r < t at the end of epochs e - 1 and e.  (That code starts its previous-epoch value at 1,
    so for t > 1 it could fire after one epoch; here two epoch ends are always needed.)  An epoch that
    ``max_steps`` cuts short counts as an epoch end for the thresholds, not for ``measure_epochs``.
    ``epoch_at[t]`` and ``step_at[t]`` record where each threshold was reached.

    float32 training (``dtype='float32'``, or a network from ``init_network(..., dtype='float32')``) runs the
    forward and backward passes, the loss gradient and the SGD update in float32 (X and the targets rounded to
    float32); the losses are summed in float64.  Its accuracy against float64 is measured in docs/training.md.

    Parameters
    ----------
    net : MLP
        Updated in place.
    X : numpy.ndarray, shape (N, n_0)
        Finite training inputs.
    y : numpy.ndarray
        Integer class labels (N,) in [0, o), or for ``'mse'`` float targets (N, o) (or (N,) when o = 1).
    loss : {'mse', 'cross_entropy'}, optional
        Default cross-entropy.
    lr : float, optional
        Learning rate, > 0.
    momentum : float, optional
        In [0, 1).
    batch_size : int, optional
        >= 1; the last batch of an epoch may be smaller.  Batches follow ``default_rng(seed).permutation(N)``.
    epochs : int, optional
        >= 0.
    weight_decay : float, optional
        >= 0: adds ``weight_decay * theta`` to every gradient (after clipping).
    clip_norm : float or None, optional
        If set (> 0), the mini-batch loss gradient g (all parameters) becomes ``g min(1, clip_norm / |g|_2)``.
    measures : sequence of callables, optional
        ``m(net) -> value`` with distinct names (:func:`measure_name`).
    thresholds : sequence of float, optional
        Loss thresholds (> 0); ``epoch_at[t]`` records the first epoch with loss < t.
    measure_epochs : sequence of int, optional
        Epochs (>= 1) after which the measures run.
    measure_init, measure_final : bool, optional
        Measure before / after training (default True).
    stop_at_last_threshold : bool, optional
        Stop once every threshold is crossed.
    seed : int, optional
        Seed of the mini-batch order, in [0, 2^64).
    max_steps : int or None, optional
        Budget in SGD steps (>= 1; None: no budget); the last epoch may end early.  ``steps`` says how many were
        taken.
    threshold_rule : {'full_loss', 'running_average'}, optional
        How thresholds are read (above).
    dtype : {None, 'float64', 'float32'}, optional
        Parameters and arithmetic; None (default): the network's dtype (float64 unless made otherwise).  A
        different dtype converts the network's parameters first (``net.W[i]`` and ``net.b[i]`` are replaced).
    blas_threads : int or None, optional
        Caps BLAS threads during training and measuring (default 1: batch-sized products gain little from threads,
        and multithreaded BLAS slows down many-fold on a busy machine); None leaves BLAS alone.

    Returns
    -------
    TrainingResult
        Histories, records, threshold epochs and steps, steps taken, timing, clipped steps.

    Raises
    ------
    InputError
        Any argument out of range, checked before training (non-finite or complex X, labels out of range,
        lr <= 0, a seed outside [0, 2^64), ...).

    Warns
    -----
    TrainingDivergenceWarning
        The loss became non-finite (the epoch and step are in the message and in ``diverged_epoch``,
        ``diverged_step``).

    Examples
    --------
    >>> X, y = synthetic_data(40, dim=4, classes=2, seed=0)
    >>> net = init_network([4, 16, 2], seed=1)
    >>> def first_layer_norm(net):
    ...     return float(np.linalg.norm(net.W[0]))
    >>> r = train(net, X, y, lr=0.05, epochs=3, measures=[first_layer_norm], measure_epochs=[2])
    >>> [(rec.trigger, rec.epoch) for rec in r.records]
    [('init', 0), ('epoch', 2), ('final', 3)]
    """
    plan = _check_plan(loss, lr, momentum, batch_size, epochs, weight_decay, clip_norm, thresholds, measure_epochs,
                       measure_init, measure_final, stop_at_last_threshold, seed, max_steps, threshold_rule, dtype)
    named = _check_measures(measures)
    _check_net(net)
    X = _check_data(X, "X", net.inputs)
    T, labels = _targets(net, y, plan.loss, X.shape[0])
    threads = None if blas_threads is None else integer_in_range("blas_threads", blas_threads, 1)
    dt = net.dtype if plan.dtype is None else plan.dtype
    _convert_in_place(net, dt)
    X, T = X.astype(dt, copy=False), T.astype(dt, copy=False)
    with blas_thread_limit(threads):
        return _train(net, X, T, labels, plan, named)


def _convert_in_place(net: MLP, dtype: np.dtype) -> None:
    """Replace the network's parameter arrays by ``dtype`` copies (nothing when they have that dtype)."""
    if net.dtype == dtype:
        return
    for arrays in (net.W, net.b or []):
        arrays[:] = [a.astype(dtype) for a in arrays]


def _clip_scale(gW: list[np.ndarray], gb: list[np.ndarray] | None, clip_norm: float) -> float:
    """min(1, clip_norm / |g|_2), |g|_2 the global norm over all weight (and bias) gradients."""
    sq = sum(float(np.vdot(g, g)) for g in gW) + (0.0 if gb is None else sum(float(np.dot(g, g)) for g in gb))
    norm = math.sqrt(sq)
    return clip_norm / norm if norm > clip_norm else 1.0


def _sgd_step(net: MLP, gW, gb, vW, vb, plan: _Plan) -> None:
    """v <- mu v + (g + wd theta), theta <- theta - lr v, for all weights and biases, in place."""
    wd, mu, lr = plan.weight_decay, plan.momentum, plan.lr
    for i in range(len(net.W)):
        vW[i] *= mu
        vW[i] += gW[i]
        if wd:
            vW[i] += wd * net.W[i]
        net.W[i] -= lr * vW[i]
        if vb is not None:
            vb[i] *= mu
            vb[i] += gb[i]
            if wd:
                vb[i] += wd * net.b[i]
            net.b[i] -= lr * vb[i]


def _epoch(net: MLP, X, T, perm, vW, vb, plan: _Plan, max_batches: int | None = None) -> tuple[int, list[float]]:
    """One pass over the mini-batches of ``perm`` (at most ``max_batches`` of them); returns the number of clipped
    steps and the mini-batch losses (each before its step)."""
    clipped, losses = 0, []
    keep_preact = not _deriv_multiplier(net.activation)[1]
    for s in range(0, X.shape[0], plan.batch_size):
        if len(losses) == max_batches:
            break
        idx = perm[s:s + plan.batch_size]
        H, Z = _forward_pass(net, X[idx], keep_preact)
        val, dF = _loss_and_dF(Z[-1], T[idx], plan.loss)
        losses.append(val)
        gW, gb = _gradients(net, H, Z, dF)
        scale = 1.0 if plan.clip_norm is None else _clip_scale(gW, gb, plan.clip_norm)
        if scale != 1.0:
            clipped += 1
            gW = [g * scale for g in gW]
            gb = None if gb is None else [g * scale for g in gb]
        _sgd_step(net, gW, gb, vW, vb, plan)
    return clipped, losses


def _running_average(r: float | None, losses: list[float]) -> float | None:
    """The running average after ``losses``: r <- gamma r + (1 - gamma) loss, starting at the first loss."""
    g = RUNNING_AVERAGE_GAMMA
    for v in losses:
        r = v if r is None else g * r + (1.0 - g) * v
    return r


class _Recorder:
    """Runs the measures at most once per epoch and files a record per trigger."""

    def __init__(self, result: TrainingResult, named):
        self.result, self.named = result, named
        self._epoch, self._values = -1, {}

    def record(self, net: MLP, trigger: str, epoch: int, threshold: float | None = None) -> None:
        if not self.named:
            return
        if epoch != self._epoch:
            t0 = time.perf_counter()
            self._epoch, self._values = epoch, {name: m(net) for name, m in self.named}
            self.result.measure_seconds += time.perf_counter() - t0
        loss, step = self.result.loss_history[epoch], self.result.step_history[epoch]
        for name, _ in self.named:
            self.result.records.append(MeasureRecord(name, trigger, epoch, loss, self._values[name], threshold, step))


def _train(net: MLP, X, T, labels, plan: _Plan, named) -> TrainingResult:
    t0 = time.perf_counter()
    rng = np.random.default_rng(plan.seed)
    vW = [np.zeros_like(w) for w in net.W]
    vb = None if net.b is None else [np.zeros_like(v) for v in net.b]
    result = TrainingResult(net, [], [], plan.thresholds, threshold_rule=plan.threshold_rule)
    rec = _Recorder(result, named)
    _log(result, *_evaluate(net, X, T, plan.loss, labels=labels), None)
    if plan.measure_init:
        rec.record(net, "init", 0)
    n_batches = -(-X.shape[0] // plan.batch_size)
    running = None
    for epoch in range(1, plan.epochs + 1):
        budget = None if plan.max_steps is None else plan.max_steps - result.steps
        if budget == 0:
            break
        clipped, losses = _epoch(net, X, T, rng.permutation(X.shape[0]), vW, vb, plan, budget)
        result.clipped_steps += clipped
        running = _running_average(running, losses)
        result.steps += len(losses)
        cur, acc = _evaluate(net, X, T, plan.loss, labels=labels)
        _log(result, cur, acc, running)
        if not math.isfinite(cur):
            _diverged(result, epoch, losses)
            break
        if epoch in plan.measure_epochs and len(losses) == n_batches:
            rec.record(net, "epoch", epoch)
        for t in _reached(result, plan):
            result.epoch_at[t], result.step_at[t] = epoch, result.steps
            rec.record(net, "threshold", epoch, t)
        if plan.stop_at_last_threshold and plan.thresholds and len(result.epoch_at) == len(plan.thresholds):
            break
    if plan.measure_final and not result.diverged:
        rec.record(net, "final", len(result.loss_history) - 1)
    result.seconds = time.perf_counter() - t0
    return result


def _log(result: TrainingResult, loss: float, accuracy: float, running: float | None) -> None:
    """Append one epoch end to the histories."""
    result.loss_history.append(loss)
    result.accuracy_history.append(accuracy)
    result.step_history.append(result.steps)
    result.running_loss_history.append(math.nan if running is None else running)


def _reached(result: TrainingResult, plan: _Plan) -> list[float]:
    """The thresholds not reached before and reached at the latest epoch end, by ``plan.threshold_rule``."""
    if plan.threshold_rule == "full_loss":
        cur = result.loss_history[-1]
        return [t for t in plan.thresholds if t not in result.epoch_at and cur < t]
    r = result.running_loss_history
    if len(r) < 3:                     # entry 0 is before training: two epoch ends need entries 1 and 2
        return []
    return [t for t in plan.thresholds if t not in result.epoch_at and r[-2] < t and r[-1] < t]


def _diverged(result: TrainingResult, epoch: int, losses: list[float]) -> None:
    """Mark the divergence found after ``epoch`` and warn: the first non-finite mini-batch loss of the epoch (the
    parameters after that many steps gave it), else the end of the epoch."""
    bad = next((k for k, v in enumerate(losses) if not math.isfinite(v)), len(losses))
    result.diverged = True
    result.diverged_epoch, result.diverged_step = epoch, result.steps - len(losses) + bad
    warnings.warn(f"train: the training loss became non-finite in epoch {epoch}, after {result.diverged_step} SGD "
                  f"steps (training-set loss {result.loss_history[-1]} after the epoch); training stopped with "
                  f"non-finite parameters (diverged=True): lower lr, or set clip_norm", TrainingDivergenceWarning,
                  stacklevel=4)
