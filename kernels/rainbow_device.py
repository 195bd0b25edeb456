"""Device code of the compiled rainbow engines, shared verbatim by the CPU (njit) and CUDA kernels.

Only ``@numba.njit(inline='always')`` functions on scalars and preallocated arrays (no allocation, no exceptions), as in
:mod:`sigprop.kernels.gram_device` and :mod:`sigprop.kernels.layer_ops`, whose functions the rainbow kernels call for
everything else (the white products, the bias, the column sums), as the one Gram chain of each backend does.
What is specific to the data-defined covariance ``C_l = a_l I + sum_k b_lk hhat_k hhat_k^T / n``
(:mod:`sigprop.kernels.rainbow`, docs/rainbow.md) is here:

* :func:`add_anchor_row`, the anchor part of one explicit row,
  ``z_i(x) += sum_k (Hhat[x, P + k] sqrt(b_k)) Xi_ik`` (``Xi_ik`` the N(0, 1) number of stream 17 at
  ``(network, layer, row i, column k)``), read straight from the previous layer's post-activation Gram: ``O(N m)``
  per row, no ``n x n`` matrix;
* :func:`anchored_covariance_into`, the Gram chain's covariance step
  ``K = C_b + a Hhat + Hhat[:, A] diag(b) Hhat[A, :]`` (:func:`sigprop.theory.rainbow.anchored_gram`),
  upper triangle computed and mirrored, so ``K`` is exactly symmetric: the step with which the one Gram chain of
  each backend (:mod:`sigprop.kernels.gram_cpu`, :mod:`sigprop.kernels.gram_cuda`) runs rainbow networks, in place
  of the plain step :func:`sigprop.kernels.gram_device.covariance_into`.

Layouts: explicit engines hold a layer as ``Z[s, i, x]`` (network ``s`` of the batch, neuron ``i``, point ``x``, as
:mod:`layer_ops`), the Gram chain as ``Z[x, i]`` (one network, as :mod:`gram_device`).

Examples
--------
>>> import numpy as np
>>> H = np.array([[1.0, 0.5], [0.5, 2.0]]); K = np.empty((2, 2))
>>> cov = np.array([[0.0, 0.1, 0.0], [1.0, 0.1, 3.0]])          # layer index 1: a = 1, c_b = 0.1, b = (3,)
>>> anchored_covariance_into(K, H, 1, 2, cov)                   # 0.1 + H + 3 H[:, 1] H[1, :]
>>> K
array([[ 1.85,  3.6 ],
       [ 3.6 , 14.1 ]])
"""
from __future__ import annotations

import numba

from .rng import normal_pair

__all__ = ["add_anchor_row", "anchored_covariance_into", "STREAM_RAINBOW_WHITE", "STREAM_RAINBOW_ANCHOR",
           "STREAM_RAINBOW_BIAS"]

# The generator streams of the rainbow engines (:mod:`sigprop.kernels.rainbow`), used by no other engine.
STREAM_RAINBOW_WHITE = 16  # G: the white part of the rows
STREAM_RAINBOW_ANCHOR = 17  # Xi: the anchor coefficients
STREAM_RAINBOW_BIAS = 18  # beta: the biases


@numba.njit(inline="always")
def add_anchor_row(seed, stream, network, layer, i, G, s, lp, P, m, sqrtb, Z):
    """Z[s, i, x] += sum_{k < m} (G[s, lp, x, P + k] sqrtb[k]) Xi_ik for every point x (in increasing k).

    ``Xi_ik = normal_at(seed, stream, network, layer, i, k)`` (pairs of columns from one Philox block, as
    :func:`sigprop.kernels.rng.normals`); ``G[s, lp]`` is the previous layer's post-activation Gram ``Hhat`` of
    points and anchors (anchors at ``P..P+m-1``)."""
    N = Z.shape[2]
    for kp in range((m + 1) // 2):
        x0, x1 = normal_pair(seed, stream, network, layer, i, kp)
        k = 2 * kp
        two = k + 1 < m
        for x in range(N):
            v = (G[s, lp, x, P + k] * sqrtb[k]) * x0
            if two:
                v2 = (G[s, lp, x, P + k + 1] * sqrtb[k + 1]) * x1
                Z[s, i, x] = (Z[s, i, x] + v) + v2
            else:
                Z[s, i, x] += v


@numba.njit(inline="always")
def anchored_covariance_into(K, H, l, N, cov):
    """The rainbow chain's covariance step for layer index ``l`` (the arguments of
    :func:`sigprop.kernels.gram_device.covariance_into`, the plain chain's step).

    ``l = 0``: ``K = H``, the first layer's covariance ``C_b + Y C_1 Y^T / d``, with which the chain starts ``H``.
    ``l >= 1``: ``K = c_b + a H + H[:, A] diag(b) H[A, :]`` (N x N) with ``cov[l] = (a, c_b, b_1 .. b_m)``, the
    anchors ``A`` the last ``m = cov.shape[1] - 2`` points, the anchor terms summed in increasing ``k``.  The upper
    triangle is computed and mirrored: ``K`` is exactly symmetric for a symmetric ``H``."""
    if l == 0:
        for x in range(N):
            for y in range(N):
                K[x, y] = H[x, y]
        return
    a = cov[l, 0]
    c_b = cov[l, 1]
    m = cov.shape[1] - 2
    P = N - m
    for x in range(N):
        for y in range(x, N):
            v = c_b + a * H[x, y]
            for k in range(m):
                v += (cov[l, 2 + k] * H[x, P + k]) * H[P + k, y]
            K[x, y] = v
            K[y, x] = v
