"""A small, fast trainer for ReLU MLPs (NumPy BLAS, no deep-learning framework) and per-layer tangent kernels.

Network (standard parametrisation, as trained in the published protocol): depth L = number of hidden layers,
``z_l = h_{l-1} W_l^T (+ b_l)``, ``h_l = phi(z_l)`` for l = 1..L, ``h_0 = x``, output ``f = h_L W_out^T (+ b_out)``.
Init: Kaiming-normal hidden weights ``W_l ~ N(0, 2 / fan_in)`` (PyTorch ``kaiming_normal_``, fan_in, ReLU gain),
LeCun-normal readout ``W_out ~ N(0, 1 / n_L)``, zero biases.  Training: mini-batch SGD with momentum
(PyTorch convention ``v <- mu v + g``, ``theta <- theta - lr v``; optionally the mini-batch gradient g is first
rescaled to global L2 norm ``clip_norm`` when larger, as ``torch.nn.utils.clip_grad_norm_``), loss ``'mse'``
(mean over the N x o entries of ``(f - y)^2``, y one-hot) or ``'cross_entropy'`` (mean over samples of
``-log softmax(f)_y``).

Per-layer tangent kernel of hidden layer l on N samples, for o outputs (gradients w.r.t. the trained W_l, b_l):
``Theta_l[(i,a),(j,b)] = (H_{l-1} H_{l-1}^T + [bias])_ab * (D_l^i D_l^j^T)_ab``, with H_{l-1} the layer inputs and
``D_l^i = df_i / dz_l`` (N x n_l); oN x oN, output-major order (row i N + a).  Its alignment with the labels is the
CKA with ``vec(Y) vec(Y)^T`` (sigprop.theory.tangent.vectorised_label_kernel); array index l <-> layer l+1.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from sigprop.theory.errors import InputError

__all__ = [
    "MLP",
    "TrainingResult",
    "init_mlp",
    "forward",
    "layer_kernels",
    "layer_alignments",
    "load_digits_data",
    "one_hot",
    "evaluate",
    "synthetic_data",
    "train",
    "run_benchmarks",
]

LOSSES = ("mse", "cross_entropy")


@dataclass
class MLP:
    """Weights ``W[l]`` (n_{l+1} x n_l), l = 0..L (the last is the readout), biases ``b[l]`` or None (bias-free)."""

    W: list[np.ndarray]
    b: list[np.ndarray] | None

    @property
    def depth(self) -> int:
        return len(self.W) - 1

    @property
    def outputs(self) -> int:
        return self.W[-1].shape[0]

    def copy(self) -> "MLP":
        return MLP([w.copy() for w in self.W], None if self.b is None else [v.copy() for v in self.b])


def _check_int(x, name: str, lo: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < lo:
        raise InputError(f"{name} must be an integer >= {lo}, got {x!r}")
    return int(x)


def init_mlp(inputs: int, outputs: int, depth: int, width: int = 256, bias: bool = False, seed: int = 0,
             readout_gain: float = 1.0) -> MLP:
    """Kaiming-normal ReLU MLP with ``depth`` hidden layers of ``width`` units; readout N(0, readout_gain^2 / width)."""
    inputs, outputs = _check_int(inputs, "inputs", 1), _check_int(outputs, "outputs", 1)
    depth, width = _check_int(depth, "depth", 1), _check_int(width, "width", 1)
    if not (math.isfinite(readout_gain) and readout_gain > 0):
        raise InputError(f"readout_gain must be finite and > 0, got {readout_gain!r}")
    rng = np.random.default_rng(seed)
    sizes = [inputs] + [width] * depth
    W = [rng.standard_normal((sizes[l + 1], sizes[l])) * math.sqrt(2.0 / sizes[l]) for l in range(depth)]
    W.append(rng.standard_normal((outputs, width)) * (readout_gain / math.sqrt(width)))
    b = [np.zeros(w.shape[0]) for w in W] if bias else None
    return MLP(W, b)


def forward(mlp: MLP, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(H, F): H[l] = h_l (N x n_l) for l = 0..L (H[0] = X), F = outputs (N x o)."""
    H = [X]
    h = X
    for l in range(mlp.depth):
        z = h @ mlp.W[l].T
        if mlp.b is not None:
            z += mlp.b[l]
        h = np.maximum(z, 0.0)
        H.append(h)
    F = h @ mlp.W[-1].T
    if mlp.b is not None:
        F += mlp.b[-1]
    return H, F


def _loss_and_dF(F: np.ndarray, Y1h: np.ndarray, loss: str) -> tuple[float, np.ndarray]:
    n = F.shape[0]
    if loss == "mse":
        R = F - Y1h
        return float(np.mean(R * R)), (2.0 / R.size) * R
    m = F.max(axis=1, keepdims=True)
    E = np.exp(F - m)
    S = E.sum(axis=1, keepdims=True)
    logp = F - m - np.log(S)
    return float(-np.sum(logp * Y1h) / n), (E / S - Y1h) / n


def _gradients(mlp: MLP, H: list[np.ndarray], dF: np.ndarray):
    L = mlp.depth
    gW = [None] * (L + 1)
    gb = None if mlp.b is None else [None] * (L + 1)
    gW[L] = dF.T @ H[L]
    if gb is not None:
        gb[L] = dF.sum(axis=0)
    g = dF @ mlp.W[L]
    for l in range(L - 1, -1, -1):
        g *= H[l + 1] > 0.0
        gW[l] = g.T @ H[l]
        if gb is not None:
            gb[l] = g.sum(axis=0)
        if l > 0:
            g = g @ mlp.W[l]
    return gW, gb


def evaluate(mlp: MLP, X: np.ndarray, Y1h: np.ndarray, loss: str, chunk: int = 2048) -> tuple[float, float]:
    """(mean loss, accuracy) over a data set, in chunks."""
    tot, correct = 0.0, 0
    for s in range(0, X.shape[0], chunk):
        _, F = forward(mlp, X[s:s + chunk])
        val, _ = _loss_and_dF(F, Y1h[s:s + chunk], loss)
        tot += val * F.shape[0]
        correct += int(np.sum(F.argmax(axis=1) == Y1h[s:s + chunk].argmax(axis=1)))
    return tot / X.shape[0], correct / X.shape[0]


# --------------------------------------------------------------------------------------------
# Per-layer kernels
# --------------------------------------------------------------------------------------------
def _layer_factors(mlp: MLP, X: np.ndarray, outs: list[int]):
    """Yield (l, F_l, D_l) from the top hidden layer down: F_l = H_l H_l^T (+1 with biases), N x N, the forward
    kernel on the inputs of layer l+1; D_l = df_i/dz_{l+1} for the selected outputs, (o N) x n_{l+1}, output-major."""
    N = X.shape[0]
    o = len(outs)
    H, _ = forward(mlp, X)
    L = mlp.depth
    D = np.repeat(mlp.W[L][outs][:, None, :], N, axis=1).reshape(o * N, -1)  # df_i/dh_L
    for l in range(L - 1, -1, -1):
        D *= np.tile(H[l + 1] > 0.0, (o, 1))  # df_i/dz_{l+1}
        F = H[l] @ H[l].T
        if mlp.b is not None:
            F += 1.0
        yield l, F, D
        if l > 0:
            D = D @ mlp.W[l]


def _outputs(mlp: MLP, outputs) -> list[int]:
    outs = list(range(mlp.outputs)) if outputs is None else [int(i) for i in outputs]
    if not outs or min(outs) < 0 or max(outs) >= mlp.outputs:
        raise InputError(f"outputs must be indices in [0, {mlp.outputs}), got {outputs!r}")
    return outs


def layer_kernels(mlp: MLP, X: np.ndarray, outputs: list[int] | None = None):
    """(forward, backward, tangent) per hidden layer: forward (L, N, N), backward and tangent (L, m, m), m = o N.

    forward[l] = H_l H_l^T (+1 with biases) on the inputs of layer l+1; backward[l] = D_{l+1} D_{l+1}^T over the
    selected outputs (output-major); tangent = forward (tiled o x o) o backward.  ``outputs=None``: all outputs.
    Standard parametrisation: tangent[l] * C_W / n_l is the NTK-parametrised kernel of docs/conventions.md.
    Memory O(L m^2): for large L use :func:`layer_alignments`, which streams over layers.
    """
    outs = _outputs(mlp, outputs)
    N, o, L = X.shape[0], len(outs), mlp.depth
    fwd = np.empty((L, N, N))
    bwd = np.empty((L, o * N, o * N))
    for l, F, D in _layer_factors(mlp, X, outs):
        fwd[l] = F
        bwd[l] = D @ D.T
    return fwd, bwd, np.tile(fwd, (1, o, o)) * bwd


def _cka_with_rank_one(T: np.ndarray, yc: np.ndarray) -> float:
    """CKA(T, y y^T) for symmetric T using C y y^T C = yc yc^T: <T_c, yc yc^T> = yc^T T yc,
    |T_c|_F^2 = |T|_F^2 - 2 |T 1|^2 / m + (1^T T 1)^2 / m^2."""
    m = T.shape[0]
    r = T.sum(axis=1)
    tot = r.sum()
    norm2 = np.vdot(T, T) - 2.0 * np.dot(r, r) / m + tot * tot / (m * m)
    if not norm2 > 1e-24 * max(np.vdot(T, T), 1e-300):
        raise InputError("tangent kernel has zero centred norm: its alignment is undefined")
    return float(yc @ T @ yc / (math.sqrt(norm2) * np.dot(yc, yc)))


def layer_alignments(mlp: MLP, X: np.ndarray, Y1h: np.ndarray) -> np.ndarray:
    """CKA of each hidden layer's oN x oN tangent kernel with vec(Y) vec(Y)^T (Y one-hot, N x o); streams layers."""
    if Y1h.shape != (X.shape[0], mlp.outputs):
        raise InputError(f"label matrix must be (N, o) = ({X.shape[0]}, {mlp.outputs}), got {Y1h.shape}")
    y = Y1h.T.reshape(-1).astype(float)
    yc = y - y.mean()
    if not np.dot(yc, yc) > 0:
        raise InputError("label matrix has zero centred norm (all entries equal)")
    o = mlp.outputs
    out = np.empty(mlp.depth)
    for l, F, D in _layer_factors(mlp, X, list(range(o))):
        T = D @ D.T
        T *= np.tile(F, (o, o))
        out[l] = _cka_with_rank_one(T, yc)
    return out


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def _normalise_rows(X: np.ndarray) -> np.ndarray:
    X = X - X.mean(axis=0, keepdims=True)
    return X / np.sqrt(np.mean(X * X, axis=1, keepdims=True))


def load_digits_data(n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits (1797 x 64, 10 classes): features centred, each sample scaled to |x|^2 / d = 1.

    Returns (X, labels) with ``n`` samples drawn without replacement (all, shuffled, if None).
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    X = _normalise_rows(np.asarray(data.data, dtype=float))
    y = np.asarray(data.target, dtype=np.int64)
    if n is not None and not (1 <= n <= X.shape[0]):
        raise InputError(f"n must be in [1, {X.shape[0]}], got {n}")
    idx = np.random.default_rng(seed).permutation(X.shape[0])[: n or X.shape[0]]
    return X[idx], y[idx]


def synthetic_data(n: int, dim: int = 32, classes: int = 4, separation: float = 2.0, seed: int = 0):
    """Gaussian mixture: class means m_c ~ N(0, separation^2 I / dim)·sqrt(dim), x = m_c + N(0, I); rows normalised."""
    n, dim, classes = _check_int(n, "n", 2), _check_int(dim, "dim", 1), _check_int(classes, "classes", 2)
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * separation
    y = rng.integers(0, classes, n)
    X = means[y] + rng.standard_normal((n, dim))
    return _normalise_rows(X), y.astype(np.int64)


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((y.size, classes))
    out[np.arange(y.size), y] = 1.0
    return out


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
@dataclass
class TrainingResult:
    """Loss per epoch, and per-layer alignments at initialisation and when the loss first fell below each threshold."""

    mlp: MLP
    loss_history: list[float]
    accuracy_history: list[float]
    thresholds: tuple[float, ...]
    alignment_init: np.ndarray
    alignment_at: dict[float, np.ndarray] = field(default_factory=dict)   # threshold -> (L,) alignments
    epoch_at: dict[float, int] = field(default_factory=dict)              # threshold -> epoch (1-based)
    alignment_final: np.ndarray | None = None
    diverged: bool = False
    seconds: float = 0.0
    clipped_steps: int = 0                                                # steps whose gradient was clipped

    def last_alignment(self) -> tuple[str, np.ndarray]:
        """The alignment at the lowest threshold reached ('loss<thr'), else at the end of training ('final')."""
        reached = sorted(self.alignment_at)
        if reached:
            return f"loss<{reached[0]:g}", self.alignment_at[reached[0]]
        return "final", self.alignment_final


def train(mlp: MLP, X: np.ndarray, labels: np.ndarray, *, loss: str = "cross_entropy", lr: float = 0.01,
          momentum: float = 0.9, batch_size: int = 32, epochs: int = 50, thresholds=(1.0, 0.1, 0.01),
          align_X: np.ndarray | None = None, align_labels: np.ndarray | None = None, seed: int = 0,
          final_alignment: bool = True, stop_at_last_threshold: bool = False,
          blas_threads: int | None = 1, clip_norm: float | None = None) -> TrainingResult:
    """Train ``mlp`` in place by SGD with momentum; record per-layer label alignment on (align_X, align_labels).

    The training loss is evaluated on the whole training set after every epoch; the first time it is below a
    threshold, the alignments of all hidden layers are recorded for that threshold (all thresholds crossed in one
    epoch share one record).  Alignment samples default to the first 100 training samples.
    ``blas_threads`` caps BLAS threads during training (default 1: batch-sized products gain little from threads,
    and multithreaded BLAS slows down many-fold on a busy machine); None leaves BLAS alone.
    ``clip_norm``: if set, each mini-batch gradient g (all weights and biases together) is replaced by
    ``g * min(1, clip_norm / |g|_2)`` before the momentum update (gradient-norm clipping); None: no clipping.
    """
    if blas_threads is None:
        return _train(mlp, X, labels, loss, lr, momentum, batch_size, epochs, thresholds, align_X, align_labels,
                      seed, final_alignment, stop_at_last_threshold, clip_norm)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(int(blas_threads), user_api="blas"):
        return _train(mlp, X, labels, loss, lr, momentum, batch_size, epochs, thresholds, align_X, align_labels,
                      seed, final_alignment, stop_at_last_threshold, clip_norm)


def _clip_scale(gW: list[np.ndarray], gb: list[np.ndarray] | None, clip_norm: float) -> float:
    """min(1, clip_norm / |g|_2), |g|_2 the global norm over all weight (and bias) gradients."""
    sq = sum(float(np.vdot(g, g)) for g in gW) + (0.0 if gb is None else sum(float(np.dot(g, g)) for g in gb))
    norm = math.sqrt(sq)
    return clip_norm / norm if norm > clip_norm else 1.0


def _train(mlp, X, labels, loss, lr, momentum, batch_size, epochs, thresholds, align_X, align_labels, seed,
           final_alignment, stop_at_last_threshold, clip_norm=None) -> TrainingResult:
    if loss not in LOSSES:
        raise InputError(f"loss must be one of {LOSSES}, got {loss!r}")
    X = np.asarray(X, dtype=float)
    labels = np.asarray(labels)
    if X.ndim != 2 or X.shape[1] != mlp.W[0].shape[1]:
        raise InputError(f"X must be (N, {mlp.W[0].shape[1]}), got {X.shape}")
    if labels.shape != (X.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"labels must be integer class indices of shape ({X.shape[0]},), got {labels.shape}")
    if labels.min() < 0 or labels.max() >= mlp.outputs:
        raise InputError(f"labels must lie in [0, {mlp.outputs})")
    for name, v, lo in (("lr", lr, 0.0), ("momentum", momentum, -1e-300)):
        if not (math.isfinite(v) and v > lo):
            raise InputError(f"{name} must be finite and > {max(lo, 0)}, got {v!r}")
    if momentum >= 1:
        raise InputError(f"momentum must be in [0, 1), got {momentum}")
    if clip_norm is not None and not (isinstance(clip_norm, (int, float)) and math.isfinite(clip_norm)
                                      and clip_norm > 0):
        raise InputError(f"clip_norm must be None or finite and > 0, got {clip_norm!r}")
    batch_size, epochs = _check_int(batch_size, "batch_size", 1), _check_int(epochs, "epochs", 0)
    thresholds = tuple(sorted((float(t) for t in thresholds), reverse=True))
    if any(not (t > 0) for t in thresholds):
        raise InputError("thresholds must be > 0")
    if align_X is None:
        align_X, align_labels = X[:100], labels[:100]
    align_Y = one_hot(np.asarray(align_labels), mlp.outputs)
    Y1h = one_hot(labels, mlp.outputs)

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    vW = [np.zeros_like(w) for w in mlp.W]
    vb = None if mlp.b is None else [np.zeros_like(v) for v in mlp.b]
    result = TrainingResult(mlp, [], [], thresholds, layer_alignments(mlp, align_X, align_Y))
    l0, a0 = evaluate(mlp, X, Y1h, loss)
    result.loss_history.append(l0)
    result.accuracy_history.append(a0)
    N = X.shape[0]
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(N)
        for s in range(0, N, batch_size):
            idx = perm[s:s + batch_size]
            H, F = forward(mlp, X[idx])
            _, dF = _loss_and_dF(F, Y1h[idx], loss)
            gW, gb = _gradients(mlp, H, dF)
            scale = 1.0 if clip_norm is None else _clip_scale(gW, gb, clip_norm)
            if scale != 1.0:
                result.clipped_steps += 1
                gW = [g * scale for g in gW]
                gb = None if gb is None else [g * scale for g in gb]
            for l in range(len(mlp.W)):
                vW[l] *= momentum
                vW[l] += gW[l]
                mlp.W[l] -= lr * vW[l]
                if vb is not None:
                    vb[l] *= momentum
                    vb[l] += gb[l]
                    mlp.b[l] -= lr * vb[l]
        cur, acc = evaluate(mlp, X, Y1h, loss)
        result.loss_history.append(cur)
        result.accuracy_history.append(acc)
        if not math.isfinite(cur):
            result.diverged = True
            break
        crossed = [t for t in thresholds if t not in result.alignment_at and cur < t]
        if crossed:
            al = layer_alignments(mlp, align_X, align_Y)
            for t in crossed:
                result.alignment_at[t] = al
                result.epoch_at[t] = epoch
            if stop_at_last_threshold and len(result.alignment_at) == len(thresholds):
                break
    if final_alignment and not result.diverged:
        result.alignment_final = layer_alignments(mlp, align_X, align_Y)
    result.seconds = time.perf_counter() - t0
    return result


def run_benchmarks(profile: str = "quick") -> list[dict]:
    """Training throughput: depth 100, width 256, 1000 digits, batch 32 (quick: 2 epochs, extrapolated to 50)."""
    X, y = load_digits_data(1000, seed=0)
    epochs = 2 if profile == "quick" else 50
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    train(mlp, X, y, epochs=epochs, lr=0.0006, align_X=X[:20], align_labels=y[:20], final_alignment=False,
          thresholds=())
    dt = time.perf_counter() - t0
    rows = [{"benchmark": "train MLP depth 100 width 256, 1000 digits", "metric": "seconds per epoch",
             "value": dt / epochs, "unit": "s",
             "note": f"{epochs} epochs measured, batch 32, float64, 1 BLAS thread, full-set loss every epoch"},
            {"benchmark": "train MLP depth 100 width 256, 1000 digits",
             "metric": "50 epochs (extrapolated)" if epochs != 50 else "50 epochs",
             "value": dt / epochs * 50, "unit": "s", "note": "target < 300 s on 2 cores"}]
    mlp = init_mlp(64, 10, depth=100, width=256, seed=0)
    t0 = time.perf_counter()
    layer_alignments(mlp, X[:100], one_hot(y[:100], 10))
    rows.append({"benchmark": "per-layer tangent-kernel alignment, depth 100, N=100, o=10", "metric": "wall time",
                 "value": time.perf_counter() - t0, "unit": "s", "note": "100 kernels of 1000 x 1000"})
    return rows
