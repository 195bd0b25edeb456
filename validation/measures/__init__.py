"""Measures of networks: pure functions of arrays (weights, Jacobians, features, spectra), one home per measure.

They apply to networks trained here or anywhere else (:func:`sigprop.kernels.learning.training.mlp_from_arrays` turns
plain weight arrays into a network for :func:`~sigprop.kernels.learning.training.network_features`); the trainer calls
them through its measure hooks (``measures=`` of :func:`~sigprop.kernels.learning.training.train`). Nothing here trains
or simulates. Every public function checks its arguments before any work and raises
:class:`~sigprop.theory.errors.InputError` or :class:`~sigprop.theory.errors.InputTypeError` naming the argument.

By module (every name below is also importable from ``sigprop.validation.measures`` itself):

``nfa``
    The Deep Neural Feature Ansatz: :func:`agop` (of a Jacobian stack), :func:`chain_rule_agop`,
    :func:`psd_power`, :func:`nfa_correlation`, :class:`NFAIsotropy` and :func:`nfa_isotropy_relation` (the
    proposition linking the NFA cosine and the frame isotropy).
``spectra``
    Covariances and their spectra: :func:`frame_isotropy`, :func:`range_basis`, :func:`weight_covariance`,
    :func:`covariance_spectrum`, :func:`participation_ratio`, :func:`entropy_rank`, :func:`top_share`, and the
    Marchenko-Pastur law: :func:`marchenko_pastur_edges`, :func:`marchenko_pastur_density`,
    :func:`marchenko_pastur_cdf`, :func:`marchenko_pastur_quantiles`, :func:`marchenko_pastur_participation`,
    :func:`marchenko_pastur_ks`.
``similarity``
    Two networks' features and two matrices: :func:`procrustes` (:class:`ProcrustesAlignment`, ``ORTHO_TOL``),
    :func:`aligned_error`, :func:`feature_cka`, :func:`matrix_correlation`, :func:`subspace_fraction`.
``reference``
    The NFA number of the reference code ``aradha/deep_neural_feature_ansatz`` beside the paper's ansatz:
    :func:`reference_file_nfa`, :func:`layer_input_agop`, :class:`NFAQuantities`, :func:`nfa_quantities`.

Measures that live elsewhere, and why:

* the centred kernel alignment of given kernels and its label targets (``centered_kernel_alignment``,
  ``centered_kernel_alignment_rank_one``, ``label_alignment``, ``label_alignments``) are in
  :mod:`sigprop.theory.tangent`: the infinite-width tangent kernels there use them, and ``sigprop.theory`` may not
  import this package;
* the per-layer tangent-kernel alignment of a network (``layer_kernels``, ``layer_alignments`` and the trainer's
  hook ``TangentAlignment``) is in :mod:`sigprop.kernels.learning.training`: it needs the network's forward and backward
  passes, computes its alignments with the functions of :mod:`sigprop.theory.tangent`, and the trainer's
  benchmarks use it, while ``sigprop.kernels`` may not import this package;
* the AGOP of an RFM predictor, ``predictor_agop``, is in :mod:`sigprop.kernels.learning.rfm` (it is the RFM's own
  gradient, in closed form, inside the fit).

The old module paths ``sigprop.validation.rainbow_measures`` and ``sigprop.validation.nfa_reference`` still work
for one release and warn (DeprecationWarning).

Examples
--------
>>> import numpy as np
>>> from sigprop.validation.measures import agop, chain_rule_agop, nfa_correlation
>>> rng = np.random.default_rng(0)
>>> W, Jz = rng.standard_normal((3, 5)), rng.standard_normal((200, 2, 3))
>>> bool(np.allclose(agop(Jz @ W), chain_rule_agop(W, agop(Jz))))
True
>>> round(nfa_correlation(W, chain_rule_agop(W, np.eye(3))), 12)
1.0
"""
from __future__ import annotations

from .nfa import NFAIsotropy, agop, chain_rule_agop, nfa_correlation, nfa_isotropy_relation, psd_power
from .reference import NFAQuantities, layer_input_agop, nfa_quantities, reference_file_nfa
from .similarity import (
    ORTHO_TOL,
    ProcrustesAlignment,
    aligned_error,
    feature_cka,
    matrix_correlation,
    procrustes,
    subspace_fraction,
)
from .spectra import (
    covariance_spectrum,
    entropy_rank,
    frame_isotropy,
    marchenko_pastur_cdf,
    marchenko_pastur_density,
    marchenko_pastur_edges,
    marchenko_pastur_ks,
    marchenko_pastur_participation,
    marchenko_pastur_quantiles,
    participation_ratio,
    range_basis,
    top_share,
    weight_covariance,
)

__all__ = [
    # nfa
    "agop",
    "chain_rule_agop",
    "psd_power",
    "nfa_correlation",
    "NFAIsotropy",
    "nfa_isotropy_relation",
    # spectra
    "frame_isotropy",
    "range_basis",
    "weight_covariance",
    "covariance_spectrum",
    "participation_ratio",
    "entropy_rank",
    "top_share",
    "marchenko_pastur_edges",
    "marchenko_pastur_density",
    "marchenko_pastur_cdf",
    "marchenko_pastur_quantiles",
    "marchenko_pastur_participation",
    "marchenko_pastur_ks",
    # similarity
    "ORTHO_TOL",
    "ProcrustesAlignment",
    "procrustes",
    "aligned_error",
    "feature_cka",
    "matrix_correlation",
    "subspace_fraction",
    # reference
    "reference_file_nfa",
    "layer_input_agop",
    "NFAQuantities",
    "nfa_quantities",
]
