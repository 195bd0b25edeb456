"""sigprop.kernels: compiled Monte-Carlo of finite-width random networks (CPU and CUDA), and the learning of finite
networks (the trainer, RFM, data sets: :mod:`sigprop.kernels.learning`).

Monte-Carlo (docs/simulation.md): :func:`simulate` returns a frozen :class:`SimulationResult`; the weight-covariance
model :class:`RainbowCovariance` is its ``covariance`` argument; :func:`simulate_distributed` runs the same
networks on a Dask cluster, bit for bit; :func:`load_npz` reads a saved result.

Learning (docs/training.md, docs/feature_learning.md): :func:`train` trains an :class:`MLP` made by :func:`init_mlp`
or :func:`mlp_from_arrays` (weights trained anywhere) with measures as hooks (e.g. :class:`TangentAlignment`),
returning a :class:`TrainingResult`; ``sigprop.kernels.learning.rfm.rfm`` fits a recursive feature machine
(:class:`RFMResult`; the function is not a package attribute, which would hide its module); data sets:
:func:`load_mnist5k`, :func:`load_digits_data`, :func:`inputs_with_gram`.

The learning names and :func:`simulate_distributed` are loaded on first use, so ``import sigprop.kernels`` stays
light.

Examples
--------
>>> import sigprop.kernels as k
>>> k.train.__module__, k.load_mnist5k.__module__
('sigprop.kernels.learning.training', 'sigprop.kernels.learning.datasets')
"""
from sigprop.theory.lazy_exports import lazy_exports

from .covariance import RainbowCovariance
from .float_range import SimulationOverflowWarning, SimulationUnderflowWarning
from .result import SimulationResult, load_npz
from .simulate import simulate

_LAZY = {name: module for module, names in {
    "distributed": ("simulate_distributed",),
    "learning.training": ("train", "init_mlp", "mlp_from_arrays", "MLP", "TrainingResult", "TangentAlignment",
                          "layer_alignments", "evaluate"),
    "learning.rfm": ("RFMResult",),
    "learning.datasets": ("load_mnist5k", "load_digits_data", "inputs_with_gram"),
}.items() for name in names}

__all__ = ["simulate", "SimulationResult", "RainbowCovariance", "load_npz", "SimulationOverflowWarning",
           "SimulationUnderflowWarning", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
