"""sigprop.validation: theory-versus-simulation experiments, their statistics and reports, and measures of networks.

* the suite (docs/validation.md): :func:`run_suite` runs the experiments (:func:`discover`: each an
  :class:`Experiment` whose ``run`` returns :class:`Check` and :class:`Finding` objects) and :func:`write_report`
  writes report.md, results.json and figures; ``sigprop validate`` is its command (``sigprop.validation.cli``);
* statistics: :func:`z_bound` (the one z bound of a run), :func:`wls_extrapolate` (1/n extrapolation),
  :func:`fit_power_law`, :func:`mean_interval` (``sigprop.validation.stats``);
* measures of networks, pure functions of arrays: the package :mod:`sigprop.validation.measures` (AGOP, NFA, frame
  isotropy, spectra, Procrustes, CKA, the reference NFA quantity);
* your own statistical tests: :func:`assert_z_within`, :func:`assert_extrapolates_to` and Hypothesis strategies
  (``sigprop.validation.testing``, docs/testing.md).

Every name is loaded on first use, so ``import sigprop.validation`` stays light.

Examples
--------
>>> import sigprop.validation as v
>>> v.z_bound.__module__, v.measures.agop.__module__
('sigprop.validation.stats', 'sigprop.validation.measures.nfa')
"""
from sigprop.theory.lazy_exports import lazy_exports

_LAZY = {
    "run_suite": "runner", "SuiteResult": "runner",
    "Experiment": "experiment", "Check": "experiment", "Finding": "experiment", "Context": "experiment",
    "ExperimentResult": "experiment", "discover": "experiment",
    "write_report": "report",
    "z_bound": "stats", "wls_extrapolate": "stats", "fit_power_law": "stats", "mean_interval": "stats",
    "assert_z_within": "testing", "assert_extrapolates_to": "testing",
}
_SUBPACKAGES = ("measures",)

__all__ = [*_LAZY, *_SUBPACKAGES]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), submodules=_SUBPACKAGES)
