"""The paper's measurements on trained networks: alignments, weight covariances, resampling.

Guth, Menard, Rochette & Mallat ("A Rainbow in Deep Network Black Boxes") train several networks of one
architecture from different seeds and find that (i) their activations agree up to an orthogonal map of the neurons,
(ii) the weight covariance ``C_hat_j = W_j^T W_j / d_j``, once expressed in a common basis, is low-rank, and (iii)
networks *resampled* with Gaussian rows ``w ~ N(0, C_hat_j)``, layer by layer, classify almost as well as the trained
ones after refitting only the readout.  This module does the same with sigprop's trainer (:mod:`sigprop.kernels.
training`, ReLU MLPs without biases on sklearn's digits); the measures are the pure functions of
:mod:`sigprop.validation.measures`; docs/rainbow.md states the protocol and the results.

Conventions.  A hidden layer computes ``h_j = phi(h_{j-1} W_j^T)`` (``W_j``: ``n_j x n_{j-1}``, effective weights),
``h_0 = x``; features are ``(N samples, n neurons)``.  Network ``s`` is *aligned onto* the reference (network 0) at
layer ``j`` by the Procrustes rotation ``A_j^s`` fitted on the training inputs, ``h_j^s A_j^s ~ h_j^ref``; its
layer-``j`` weights in the reference's basis are ``W_j^s A_{j-1}^s`` (``A_0 = I``: the inputs are shared), so

    C_hat_j = (1/S) sum_s (A_{j-1}^s)^T (W_j^s)^T W_j^s A_{j-1}^s / n_j          (n_{j-1} x n_{j-1})

(:func:`mean_covariances`).  Resampling (:func:`resample_network`), as in the paper: layer 1 draws
``W_1 = G_1 C_hat_1^(1/2)`` (rows ``C^(1/2) g``, covariance ``C_hat_1``) and computes ``h_1 = phi(x W_1^T)``; every
new layer's activations are aligned onto the reference's (Procrustes on the training inputs, ``h_j <- h_j A_j``)
before the next layer ``h_{j+1} = phi(h_j W_{j+1}^T)``, ``W_{j+1} = G_{j+1} C_hat_{j+1}^(1/2)``, is drawn in the
reference's basis.  Only the readout is fitted: ridge regression on one-hot labels (:func:`ridge_accuracy`).  White
random features use the same ``G`` with ``C = (C_W / n_{j-1}) I`` (Kaiming, ``C_W = 2``), the layer at
initialisation.

Random numbers: the ``G_j`` are ``sigprop.kernels.rng.normals(seed, STREAM_RAINBOW_RESAMPLE, network, j, n_j,
n_{j-1})``, stream 24, used by nothing else (kernels/rng.py: 0-4, kernels/rainbow.py: 16-18).  Rainbow and white
networks of the same ``(seed, network)`` share their ``G`` (common random numbers: their difference is the
covariance alone).  The trainer draws its initial weights and batches from ``numpy.random.default_rng`` (its own
convention, kernels/learning/training.py).

Examples
--------
>>> split = digits_split(60, 40, seed=0)
>>> fam = train_family(split, width=16, depth=2, init_seeds=[1, 2], sgd_seeds=[3, 4], epochs=2, lr=0.05)
>>> fit = [hidden_features(net, split.X_train) for net in fam.trained]
>>> covs = mean_covariances(fam.trained, alignments_to_reference(fit))
>>> [c.shape for c in covs]
[(64, 64), (16, 16)]
>>> new = resample_network(covs, fit[0], split.X_train, split.X_test, seed=5, network=0)
>>> new.fit.shape, new.eval.shape, len(new.aligned_errors)
((60, 16), (40, 16), 2)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sigprop.theory.activations import Activation, as_activation
from sigprop.theory.arguments import integer_in_range, positive_real, real_array
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.theory.rainbow import psd_sqrt

from ..measures import aligned_error, feature_cka, procrustes, weight_covariance

__all__ = [
    "STREAM_RAINBOW_RESAMPLE",
    "DigitsSplit",
    "PairMeasures",
    "ResampledFeatures",
    "TrainedFamily",
    "alignments_to_reference",
    "digits_split",
    "hidden_features",
    "mean_covariances",
    "measure_width",
    "pair_measures",
    "resample_network",
    "resampled_weights",
    "ridge_accuracy",
    "train_family",
    "white_covariances",
]

STREAM_RAINBOW_RESAMPLE = 24
KAIMING_C_W = 2.0


# --- data and training ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsSplit:
    """Training and held-out digits (``|x|^2 / 64 = 1``, :func:`sigprop.kernels.learning.datasets.load_digits_data`)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def digits_split(n_train: int, n_test: int, seed: int = 0) -> DigitsSplit:
    """The first ``n_train`` of ``n_train + n_test`` shuffled digits for training, the rest held out.

    Parameters
    ----------
    n_train, n_test : int
        >= 1 each, ``n_train + n_test <= 1797``.
    seed : int, optional
        Seed of the shuffle.

    Returns
    -------
    DigitsSplit

    Raises
    ------
    InputError
        Sizes out of range.

    Examples
    --------
    >>> sp = digits_split(10, 5)
    >>> sp.X_train.shape, sp.y_test.shape
    ((10, 64), (5,))
    """
    from sigprop.kernels.learning.datasets import load_digits_data

    n_train = integer_in_range("n_train", n_train, 1, who="digits_split")
    n_test = integer_in_range("n_test", n_test, 1, who="digits_split")
    if n_train + n_test > 1797:
        raise InputError(f"digits_split: n_train + n_test must be <= 1797 (the digits), got {n_train + n_test}")
    X, y = load_digits_data(n_train + n_test, seed=seed)
    return DigitsSplit(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


@dataclass(frozen=True)
class TrainedFamily:
    """Networks of one architecture trained from different seeds, with their initial states.

    ``test_accuracy`` and ``train_loss`` are per network (own readout, after training).
    """

    width: int
    depth: int
    initial: tuple
    trained: tuple
    train_loss: np.ndarray
    test_accuracy: np.ndarray
    seconds: float


def train_family(split: DigitsSplit, width: int, depth: int, init_seeds: Sequence[int], sgd_seeds: Sequence[int],
                 *, epochs: int, lr: float, weight_decay: float = 0.0, batch_size: int = 32, momentum: float = 0.9,
                 activation: str = "relu") -> TrainedFamily:
    """Train one MLP per seed pair: ``widths = [64] + [width] * depth + [10]``, Kaiming init, no biases.

    Cross-entropy, mini-batch SGD with momentum (:func:`sigprop.kernels.learning.training.train`, one BLAS thread);
    network ``s`` starts from ``init_network(..., seed=init_seeds[s])`` and visits batches in the order of
    ``sgd_seeds[s]``.

    Parameters
    ----------
    split : DigitsSplit
        The data.
    width, depth : int
        Hidden width and number of hidden layers, >= 1.
    init_seeds, sgd_seeds : sequence of int
        One pair per network, same length >= 1.
    epochs : int
        >= 0.
    lr, weight_decay, batch_size, momentum, activation
        Passed to the trainer.

    Returns
    -------
    TrainedFamily

    Raises
    ------
    InputError
        Bad sizes or seeds (the trainer checks the rest before training).
    """
    import time

    from sigprop.kernels.learning.training import evaluate, init_mlp, one_hot, train

    who = "train_family"
    width, depth = integer_in_range("width", width, 1, who=who), integer_in_range("depth", depth, 1, who=who)
    if len(init_seeds) != len(sgd_seeds) or len(init_seeds) < 1:
        raise InputError(f"{who}: init_seeds and sgd_seeds must have the same length >= 1, got "
                         f"{len(init_seeds)} and {len(sgd_seeds)}")
    t0 = time.perf_counter()
    initial, trained, loss, acc = [], [], [], []
    T_test = one_hot(split.y_test, 10)
    for si, so in zip(init_seeds, sgd_seeds):
        net = init_mlp(split.X_train.shape[1], 10, depth=depth, width=width, seed=int(si), activation=activation)
        initial.append(net.copy())
        r = train(net, split.X_train, split.y_train, loss="cross_entropy", lr=lr, momentum=momentum,
                  batch_size=batch_size, epochs=epochs, weight_decay=weight_decay, measure_init=False,
                  measure_final=False, seed=int(so))
        if r.diverged:
            raise InputError(f"{who}: training diverged (width {width}, seeds {si}/{so}); lower lr={lr}")
        trained.append(net)
        loss.append(r.loss_history[-1])
        acc.append(evaluate(net, split.X_test, T_test, "cross_entropy", labels=split.y_test)[1])
    return TrainedFamily(width, depth, tuple(initial), tuple(trained), np.array(loss), np.array(acc),
                         time.perf_counter() - t0)


def hidden_features(net, X) -> list[np.ndarray]:
    """Hidden activations ``[h_1, ..., h_L]`` (each ``N x n_j``) of an MLP on inputs ``X``.

    Examples
    --------
    >>> from sigprop.kernels.learning.training import init_mlp
    >>> [h.shape for h in hidden_features(init_mlp(3, 2, depth=2, width=5), np.ones((4, 3)))]
    [(4, 5), (4, 5)]
    """
    from sigprop.kernels.learning.training import forward

    return forward(net, X)[0][1:]


# --- measures over a family ----------------------------------------------------------------------------------


def _check_features(feats, name: str, who: str) -> list[list[np.ndarray]]:
    if not isinstance(feats, Sequence) or len(feats) < 1:
        raise InputTypeError(f"{who}: {name} must be a non-empty list (networks) of lists (layers) of arrays")
    out = [[real_array(h, f"{name}[{s}][{j}]", who, 2, allow_empty=False) for j, h in enumerate(f)]
           for s, f in enumerate(feats)]
    shapes = [tuple(h.shape for h in f) for f in out]
    if any(sh != shapes[0] for sh in shapes) or not shapes[0]:
        raise InputError(f"{who}: every network of {name} must have the same non-empty list of layer shapes, "
                         f"got {shapes}")
    return out


@dataclass(frozen=True)
class PairMeasures:
    """Per pair of networks (rows, ``pairs`` order) and layer (columns): the statement of the rainbow model.

    ``cka``: :func:`feature_cka` on the held-out inputs; ``aligned``: the Procrustes rotation fitted on the
    training inputs, its relative error on the held-out ones (:func:`aligned_error`); ``raw``: the held-out
    relative error without alignment.
    """

    pairs: tuple
    cka: np.ndarray
    aligned: np.ndarray
    raw: np.ndarray


def pair_measures(feats_fit, feats_eval) -> PairMeasures:
    """:class:`PairMeasures` over all pairs ``a < b`` of networks (``a`` aligned onto ``b``).

    Parameters
    ----------
    feats_fit, feats_eval : list of list of array_like
        Per network, per layer, the ``(N, n_j)`` activations on the fitting (training) and evaluation (held-out)
        inputs; at least two networks, all with the same shapes.

    Returns
    -------
    PairMeasures

    Raises
    ------
    InputError
        Fewer than two networks, shapes that differ, non-finite data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> F = [rng.standard_normal((30, 4))]
    >>> Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    >>> pm = pair_measures([[F[0][:20]], [F[0][:20] @ Q]], [[F[0][20:]], [F[0][20:] @ Q]])
    >>> pm.pairs, np.round(pm.cka, 12), np.round(pm.aligned, 10)
    (((0, 1),), array([[1.]]), array([[0.]]))
    """
    fit = _check_features(feats_fit, "feats_fit", "pair_measures")
    ev = _check_features(feats_eval, "feats_eval", "pair_measures")
    if len(fit) != len(ev) or len(fit) < 2:
        raise InputError(f"pair_measures: need the same number (>= 2) of networks in feats_fit and feats_eval, got "
                         f"{len(fit)} and {len(ev)}")
    pairs = tuple((a, b) for a in range(len(fit)) for b in range(a + 1, len(fit)))
    L = len(fit[0])
    cka, al, raw = (np.empty((len(pairs), L)) for _ in range(3))
    for p, (a, b) in enumerate(pairs):
        for j in range(L):
            A = procrustes(fit[a][j], fit[b][j]).rotation
            cka[p, j] = feature_cka(ev[a][j], ev[b][j])
            al[p, j] = aligned_error(ev[a][j], ev[b][j], A)
            raw[p, j] = float(np.linalg.norm(ev[a][j] - ev[b][j]) / np.linalg.norm(ev[b][j]))
    return PairMeasures(pairs, cka, al, raw)


def alignments_to_reference(feats_fit, reference: int = 0) -> list[list[np.ndarray]]:
    """Per network and layer, the Procrustes rotation ``A`` with ``h A ~ h_ref`` (fitted on the given inputs).

    The reference's own rotations are the identity.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> h = rng.standard_normal((10, 3))
    >>> A = alignments_to_reference([[h], [h[:, ::-1]]])
    >>> np.round(A[1][0], 12) + 0.0
    array([[0., 0., 1.],
           [0., 1., 0.],
           [1., 0., 0.]])
    """
    fit = _check_features(feats_fit, "feats_fit", "alignments_to_reference")
    reference = integer_in_range("reference", reference, 0, len(fit) - 1, who="alignments_to_reference")
    return [[np.eye(h.shape[1]) if s == reference else procrustes(h, fit[reference][j]).rotation
             for j, h in enumerate(f)] for s, f in enumerate(fit)]


def mean_covariances(nets, alignments) -> list[np.ndarray]:
    """``C_hat_j``, ``j = 1..L``: the weight covariances of the hidden layers, in the reference's basis, averaged.

    ``C_hat_1 = mean_s W_1^T W_1 / n_1`` (the input basis is shared); ``C_hat_j = mean_s weight_covariance(W_j^s,
    A_{j-1}^s)`` with ``A`` from :func:`alignments_to_reference`.  The readout is not included.

    Parameters
    ----------
    nets : sequence of MLP
        Same widths.
    alignments : list of list of numpy.ndarray
        ``alignments[s][j-1]``: the rotation of network ``s`` at hidden layer ``j``.

    Returns
    -------
    list of numpy.ndarray
        ``L`` symmetric PSD matrices, ``n_{j-1} x n_{j-1}``.

    Raises
    ------
    InputError
        Networks of different widths, alignments of the wrong count or shape.
    """
    nets = list(nets)
    if not nets or any(n.widths != nets[0].widths for n in nets):
        raise InputError("mean_covariances: need >= 1 networks, all of the same widths")
    L = nets[0].depth
    if len(alignments) != len(nets) or any(len(a) < L - 1 for a in alignments):
        raise InputError(f"mean_covariances: need one list of >= {L - 1} rotations per network ({len(nets)})")
    covs = []
    for j in range(L):
        C = sum(weight_covariance(net.weight(j), None if j == 0 else alignments[s][j - 1])
                for s, net in enumerate(nets))
        covs.append(C / len(nets))
    return covs


def white_covariances(widths: Sequence[int], C_W: float = KAIMING_C_W) -> list[float]:
    """The white covariances ``C_W / n_{j-1}`` (scalars, meaning times the identity) of hidden layers ``j = 1..L``.

    ``widths = (n_0, n_1, ..., n_L)``.

    Examples
    --------
    >>> white_covariances([64, 128, 128])
    [0.03125, 0.015625]
    """
    C_W = positive_real("C_W", C_W, "white_covariances")
    w = [integer_in_range(f"widths[{i}]", n, 1, who="white_covariances") for i, n in enumerate(widths)]
    return [C_W / n for n in w[:-1]]


@dataclass(frozen=True)
class ResampledFeatures:
    """Last hidden layer of a resampled network on the fitting and evaluation inputs (aligned onto the reference),
    and per layer the held-out relative error to the reference after alignment."""

    fit: np.ndarray
    eval: np.ndarray
    aligned_errors: tuple


def resampled_weights(C, *, seed: int, network: int, layer: int, rows: int, cols: int | None = None) -> np.ndarray:
    """``W = G C^(1/2)``: ``rows`` Gaussian weight rows ``w = C^(1/2) g ~ N(0, C)`` from stream 24.

    ``G = normals(seed, STREAM_RAINBOW_RESAMPLE, network, layer, rows, cols)``; ``C^(1/2)`` the symmetric PSD root
    (:func:`sigprop.theory.rainbow.psd_sqrt`); a scalar ``C = c > 0`` means ``c I`` (``W = sqrt(c) G``, ``cols``
    required).

    Parameters
    ----------
    C : float or array_like
        ``c > 0`` or a ``(p, p)`` symmetric PSD matrix.
    seed, network, layer : int
        Generator keys (``0 <= seed < 2^64``, ``0 <= network < 2^32``, ``0 <= layer < 2^24``).
    rows : int
        Number of rows, >= 1.
    cols : int, optional
        ``p``; required for a scalar ``C``, else must equal ``C.shape[0]`` when given.

    Returns
    -------
    numpy.ndarray
        ``(rows, p)``.

    Raises
    ------
    InputError
        ``C`` not symmetric PSD (most negative eigenvalue reported) or not > 0, sizes or keys out of range.

    Examples
    --------
    >>> W = resampled_weights(np.diag([4.0, 0.0]), seed=0, network=0, layer=1, rows=3)
    >>> W.shape, bool(np.all(W[:, 1] == 0.0))
    ((3, 2), True)
    """
    who = "resampled_weights"
    rows = integer_in_range("rows", rows, 1, who=who)
    if np.ndim(C) == 0 and cols is None:
        raise InputError(f"{who}: cols is required for a scalar covariance")
    root = _root(C, "C", who, None if cols is None else integer_in_range("cols", cols, 1, who=who))
    seed = integer_in_range("seed", seed, 0, 2 ** 64 - 1, who=who)
    network = integer_in_range("network", network, 0, 2 ** 32 - 1, who=who)
    return _draw(root, seed, network, integer_in_range("layer", layer, 0, 2 ** 24 - 1, who=who), rows, cols)


def _root(C, name: str, who: str, p: int | None):
    """``sqrt(c)`` for a scalar ``c > 0``, else the PSD root of a ``(p, p)`` matrix (checked)."""
    if np.ndim(C) == 0:
        return math.sqrt(positive_real(name, C, who))
    root = psd_sqrt(C)
    if p is not None and root.shape[0] != p:
        raise InputError(f"{who}: {name} must be ({p}, {p}), got {root.shape}")
    return root


def _draw(root, seed: int, network: int, layer: int, rows: int, cols: int | None) -> np.ndarray:
    from sigprop.kernels.rng import normals

    p = cols if np.ndim(root) == 0 else root.shape[0]
    G = normals(seed, STREAM_RAINBOW_RESAMPLE, network, layer, rows, p)
    return root * G if np.ndim(root) == 0 else G @ root


def resample_network(covariances, ref_fit, X_fit, X_eval, *, seed: int, network: int,
                     widths: Sequence[int] | None = None, ref_eval=None,
                     activation: str | Activation = "relu") -> ResampledFeatures:
    """Draw a network layer by layer with rows ``w ~ N(0, C_j)``, aligning each layer onto the reference.

    Layer ``j``: ``W_j = G_j C_j^(1/2)`` with ``G_j = normals(seed, 24, network, j, n_j, n_{j-1})`` (a scalar
    ``C_j = c`` means ``c I``: ``W_j = sqrt(c) G_j``), ``h_j = phi(h_{j-1} W_j^T)``, then ``A_j = procrustes(h_j,
    ref_fit[j])`` on the fitting inputs and ``h_j <- h_j A_j`` on both input sets.

    Parameters
    ----------
    covariances : list
        ``C_1..C_L``: ``(n_{j-1}, n_{j-1})`` symmetric PSD matrices (:func:`mean_covariances`) or scalars > 0.
    ref_fit : list of array_like
        The reference's ``(N_fit, n_j)`` activations on ``X_fit``, one per layer; they fix the widths ``n_j``.
    X_fit, X_eval : array_like
        ``(N_fit, n_0)`` and ``(N_eval, n_0)`` inputs.
    seed, network : int
        Keys of the counter-based generator (``0 <= seed < 2^64``, ``0 <= network < 2^32``).
    widths : sequence of int, optional
        ``(n_0, n_1, ..., n_L)``; when given, checked against the inputs and the reference.
    ref_eval : list of array_like, optional
        The reference's activations on ``X_eval``: then ``aligned_errors[j]`` is the relative error
        ``|h_j A_j - h_j^ref| / |h_j^ref|`` there (else NaN).
    activation : str or Activation, optional
        Default relu.

    Returns
    -------
    ResampledFeatures

    Raises
    ------
    InputError
        Shapes that do not chain, a covariance that is not symmetric PSD (most negative eigenvalue reported), bad
        keys.
    """
    who = "resample_network"
    act = as_activation(activation, argname="activation")
    X_fit = real_array(X_fit, "X_fit", who, 2, allow_empty=False)
    X_eval = real_array(X_eval, "X_eval", who, 2, allow_empty=False)
    ref = [real_array(h, f"ref_fit[{j}]", who, 2, allow_empty=False) for j, h in enumerate(ref_fit)]
    if not ref or len(covariances) != len(ref):
        raise InputError(f"{who}: need one covariance per reference layer, got {len(covariances)} and {len(ref)}")
    dims = [X_fit.shape[1]] + [h.shape[1] for h in ref]
    if widths is not None and list(widths) != dims:
        raise InputError(f"{who}: widths {list(widths)} differ from the reference's {dims}")
    if X_eval.shape[1] != dims[0] or any(h.shape[0] != X_fit.shape[0] for h in ref):
        raise InputError(f"{who}: X_eval must have {dims[0]} columns and every ref_fit[j] {X_fit.shape[0]} rows")
    rev = None
    if ref_eval is not None:
        rev = [real_array(h, f"ref_eval[{j}]", who, 2, allow_empty=False) for j, h in enumerate(ref_eval)]
        if [h.shape for h in rev] != [(X_eval.shape[0], n) for n in dims[1:]]:
            raise InputError(f"{who}: ref_eval must hold (N_eval, n_j) arrays, got {[h.shape for h in rev]}")
    roots = [_root(C, f"covariances[{j}]", who, dims[j]) for j, C in enumerate(covariances)]
    seed = integer_in_range("seed", seed, 0, 2 ** 64 - 1, who=who)
    network = integer_in_range("network", network, 0, 2 ** 32 - 1, who=who)
    hf, he, errs = X_fit, X_eval, []
    for j, root in enumerate(roots):
        W = _draw(root, seed, network, j + 1, dims[j + 1], dims[j])
        hf, he = act.fn(hf @ W.T), act.fn(he @ W.T)
        A = procrustes(hf, ref[j]).rotation
        hf, he = hf @ A, he @ A
        errs.append(math.nan if rev is None else float(np.linalg.norm(he - rev[j]) / np.linalg.norm(rev[j])))
    return ResampledFeatures(hf, he, tuple(errs))


def ridge_accuracy(F_fit, y_fit, F_eval, y_eval, ridge: float, classes: int = 10) -> float:
    """Test accuracy of a ridge-regression readout on fixed features (one-hot targets, intercept unpenalised).

    With column-centred ``F`` (``N x n``, means of the fitting set), centred one-hot ``Y`` and ``K = F F^T``:
    ``beta = F^T (K + lambda (tr K / N) I)^{-1} Y``, i.e. ``min |F beta - Y|^2 + lambda (tr K / N) |beta|^2``; the
    penalty is relative to the mean squared feature norm ``tr K / N``, so the fit does not depend on the scale of
    the features (networks trained, resampled or white compare at the same ``lambda``).  Prediction:
    ``argmax_k ((F_eval - mean) beta + mean(Y))_k``.

    Parameters
    ----------
    F_fit, F_eval : array_like
        ``(N_fit, n)`` and ``(N_eval, n)`` features.
    y_fit, y_eval : array_like of int
        Labels in ``[0, classes)``.
    ridge : float
        ``lambda > 0``.
    classes : int, optional
        Number of classes (default 10).

    Returns
    -------
    float
        The fraction of ``y_eval`` predicted correctly.

    Raises
    ------
    InputError
        Shapes that differ, labels out of range, ``ridge <= 0``, features identically constant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 60)
    >>> F = np.eye(3)[y] + 0.1 * rng.standard_normal((60, 3))
    >>> ridge_accuracy(F[:40], y[:40], F[40:], y[40:], 1e-3, classes=3)
    1.0
    """
    who = "ridge_accuracy"
    F_fit = real_array(F_fit, "F_fit", who, 2, allow_empty=False)
    F_eval = real_array(F_eval, "F_eval", who, 2, allow_empty=False)
    ridge = positive_real("ridge", ridge, who)
    classes = integer_in_range("classes", classes, 2, who=who)
    labels = []
    for name, y, F in (("y_fit", y_fit, F_fit), ("y_eval", y_eval, F_eval)):
        y = np.asarray(y)
        if y.shape != (F.shape[0],) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
            raise InputError(f"{who}: {name} must be {F.shape[0]} integer labels in [0, {classes}), got shape "
                             f"{y.shape}, dtype {y.dtype}")
        labels.append(y)
    if F_eval.shape[1] != F_fit.shape[1]:
        raise InputError(f"{who}: F_fit and F_eval must have the same columns, got {F_fit.shape[1]} and "
                         f"{F_eval.shape[1]}")
    mu = F_fit.mean(axis=0)
    Fc = F_fit - mu
    Y = np.eye(classes)[labels[0]]
    ym = Y.mean(axis=0)
    K = Fc @ Fc.T
    scale = float(np.trace(K)) / K.shape[0]
    if not scale > 0:
        raise InputError(f"{who}: F_fit is constant over the samples (zero centred features)")
    alpha = np.linalg.solve(K + ridge * scale * np.eye(K.shape[0]), Y - ym)
    pred = ((F_eval - mu) @ (Fc.T @ alpha) + ym).argmax(axis=1)
    return float(np.mean(pred == labels[1]))


# --- the whole protocol at one width -------------------------------------------------------------------------


def _spectrum_stats(lam: np.ndarray, ratio: float, top_k: int) -> dict[str, float]:
    from ..measures import entropy_rank, marchenko_pastur_ks, participation_ratio, top_share

    scale = float(lam.mean())  # the MP law of the same trace: sigma^2 = tr C / p
    return {"pr": participation_ratio(lam), "entropy_rank": entropy_rank(lam), "top": top_share(lam, top_k),
            "ks": marchenko_pastur_ks(lam, ratio, scale)}


def measure_width(split: DigitsSplit, width: int, *, depth: int, init_seeds: Sequence[int],
                  sgd_seeds: Sequence[int], epochs: int, lr: float, weight_decay: float, ridge: float,
                  resamples: int, resample_seed: int, top_k: int) -> dict:
    """Train a family at one width and measure everything of part 3 (docs/rainbow.md, "Trained networks").

    Steps: :func:`train_family`; hidden activations of the trained and the initial networks on the training
    (fitting) and held-out inputs; :func:`pair_measures` of both; alignments to network 0 and the averaged
    :func:`mean_covariances`; per hidden layer the spectra of the averaged ``C_hat_j``, of network 0's own
    ``C_hat_j`` (trained and initial) and their statistics (participation ratio, entropy rank, top-``k`` trace
    share, KS distance to the Marchenko-Pastur law of the same trace, ``sigma^2 = tr C / p``; the initial one also
    against the law at its own scale ``C_W / n_{j-1}``), with the Marchenko-Pastur values of a white layer (aspect
    ratio ``y = n_{j-1} / n_j``) and of the mean of ``S`` independent white layers (``y / S``: a Wishart matrix
    with ``S n_j`` rows, whatever orthogonal maps are applied to each);
    ``resamples`` rainbow networks (from the averaged ``C_hat``) and as many white ones (same
    ``G``), each aligned onto network 0 layer by layer, and the test accuracy of ridge readouts
    (:func:`ridge_accuracy`) on them and on every trained network's last layer, besides the trained networks'
    own readouts.

    Returns
    -------
    dict
        Plain lists and numbers (JSON-ready): ``width``, ``seconds``, ``train_loss``, ``acc`` (``trained``,
        ``trained_ridge``, ``rainbow``, ``white``: one value per network or draw), ``pairs`` (``cka``, ``aligned``,
        ``raw``, each ``pairs x layers``, and the same of the initial networks under ``init_``), ``resampled_error``
        (``rainbow`` and ``white``: draws x layers, held-out relative error to network 0 after alignment),
        ``layers`` (per hidden layer: ``p``, ``ratio``, ``networks``, ``mp_pr``, ``mp_top``, ``mp_entropy_rank``
        (of the classical locations) and the same of ``y / S`` with the suffix ``_mean``, ``init_scale`` and the
        spectra
        ``eig_mean``, ``eig_single``, ``eig_init`` with their statistics ``mean``, ``single``, ``init`` and
        ``init_ks_own_scale``).

    Raises
    ------
    InputError
        Bad sizes (checked by the functions it calls, before their work).
    """
    import time

    from ..measures import (
        covariance_spectrum,
        entropy_rank,
        marchenko_pastur_ks,
        marchenko_pastur_participation,
        marchenko_pastur_quantiles,
        top_share,
    )

    resamples = integer_in_range("resamples", resamples, 1, who="measure_width")
    top_k = integer_in_range("top_k", top_k, 1, who="measure_width")
    t0 = time.perf_counter()
    fam = train_family(split, width, depth, init_seeds, sgd_seeds, epochs=epochs, lr=lr, weight_decay=weight_decay)
    fit = [hidden_features(net, split.X_train) for net in fam.trained]
    ev = [hidden_features(net, split.X_test) for net in fam.trained]
    pm = pair_measures(fit, ev)
    pm0 = pair_measures([hidden_features(net, split.X_train) for net in fam.initial],
                        [hidden_features(net, split.X_test) for net in fam.initial])
    covs = mean_covariances(fam.trained, alignments_to_reference(fit))
    widths = list(fam.trained[0].widths[:-1])
    layers = []
    for j, C in enumerate(covs):
        p, ratio = widths[j], widths[j] / widths[j + 1]
        eig = {"mean": covariance_spectrum(C),
               "single": covariance_spectrum(weight_covariance(fam.trained[0].weight(j))),
               "init": covariance_spectrum(weight_covariance(fam.initial[0].weight(j)))}
        init_scale = KAIMING_C_W / p
        S = len(fam.trained)
        # white references: one layer (y = p / n_j) and the mean of S independent ones (a Wishart with S n_j rows,
        # whatever the rotations: y / S)
        ratios = {"single": ratio, "init": ratio, "mean": ratio / S}
        layer = {"layer": j + 1, "p": p, "ratio": ratio, "networks": S, "init_scale": init_scale,
                 "mp_pr": marchenko_pastur_participation(p, ratio),
                 "mp_top": top_share(marchenko_pastur_quantiles(p, ratio), min(top_k, p)),
                 "mp_pr_mean": marchenko_pastur_participation(p, ratio / S),
                 "mp_top_mean": top_share(marchenko_pastur_quantiles(p, ratio / S), min(top_k, p)),
                 "mp_entropy_rank": entropy_rank(marchenko_pastur_quantiles(p, ratio)),
                 "mp_entropy_rank_mean": entropy_rank(marchenko_pastur_quantiles(p, ratio / S)),
                 "init_ks_own_scale": marchenko_pastur_ks(eig["init"], ratio, init_scale)}
        for key, lam in eig.items():
            layer[key] = _spectrum_stats(lam, ratios[key], min(top_k, p))
            layer["eig_" + key] = lam.tolist()
        layers.append(layer)
    acc = {"trained": fam.test_accuracy.tolist(),
           "trained_ridge": [ridge_accuracy(f[-1], split.y_train, e[-1], split.y_test, ridge) for f, e in zip(fit, ev)],
           "rainbow": [], "white": []}
    errors: dict[str, list] = {"rainbow": [], "white": []}
    white = white_covariances(widths)
    for r in range(resamples):
        for key, cov in (("rainbow", covs), ("white", white)):
            new = resample_network(cov, fit[0], split.X_train, split.X_test, seed=resample_seed, network=r,
                                   ref_eval=ev[0])
            acc[key].append(ridge_accuracy(new.fit, split.y_train, new.eval, split.y_test, ridge))
            errors[key].append(list(new.aligned_errors))
    return {"width": int(width), "seconds": time.perf_counter() - t0, "train_loss": fam.train_loss.tolist(),
            "acc": acc, "pairs": {"cka": pm.cka.tolist(), "aligned": pm.aligned.tolist(), "raw": pm.raw.tolist(),
                                  "init_cka": pm0.cka.tolist(), "init_aligned": pm0.aligned.tolist(),
                                  "init_raw": pm0.raw.tolist()},
            "resampled_error": errors, "layers": layers}
