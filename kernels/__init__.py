"""sigprop.kernels: compiled Monte-Carlo of finite-width random networks (CPU and CUDA).

Public API: :func:`simulate` (returns a frozen :class:`SimulationResult`); see docs/simulation.md.
"""
from .float_range import SimulationOverflowWarning, SimulationUnderflowWarning
from .result import SimulationResult, load_npz
from .simulate import simulate

__all__ = ["simulate", "SimulationResult", "load_npz", "SimulationOverflowWarning", "SimulationUnderflowWarning"]
