"""The frozen result of :func:`sigprop.kernels.simulate`: per-network statistics plus the settings.

Array attributes (S networks, L hidden layers, P inputs; layer index 0 = first hidden layer):
``preact_gram``, ``postact_gram`` (S, L, P, P); ``preact_m2``, ``preact_m4`` (S, L, P); with
``backward=True`` also ``backward_gram`` and ``tangent_gram`` (S, L, P, P), else None.
The arrays are read-only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SimulationResult", "SimulationSettings", "ARRAY_FIELDS", "load_npz"]

ARRAY_FIELDS: tuple[str, ...] = ("preact_gram", "postact_gram", "preact_m2", "preact_m4", "backward_gram",
                                 "tangent_gram")


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False, kw_only=True)
class SimulationSettings:
    """The settings of a simulation, written once for :class:`sigprop.kernels.simulate.SimulationRequest` (the checked
    arguments of :func:`sigprop.kernels.simulate`) and :class:`SimulationResult` (the statistics and the settings
    that produced them).  Keyword-only; each subclass adds the activation (the request an ``Activation``, ``act``;
    the result its label, ``activation``).

    Examples
    --------
    >>> [f.name for f in fields(SimulationSettings)][:4]
    ['X', 'depth', 'widths', 'C_W']
    """

    X: np.ndarray = field(repr=False)
    depth: int
    widths: tuple[int, ...]
    C_W: float
    C_b: float
    n_networks: int
    method: str
    backend: str
    seed: int
    weights: str
    residual: float
    norm: str | None
    backward: bool

    @property
    def n_inputs(self) -> int:
        """P, the number of inputs."""
        return int(self.X.shape[0])

    @property
    def width(self) -> int | tuple[int, ...]:
        """The width: an int when all layers are equally wide, else the tuple of widths."""
        return self.widths[0] if len(set(self.widths)) == 1 else self.widths

    def shared_settings(self) -> dict[str, Any]:
        """The fields of :class:`SimulationSettings` by name (for building one subclass from another)."""
        return {f.name: getattr(self, f.name) for f in fields(SimulationSettings)}

    @property
    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (everything but the arrays and X; widths as a list)."""
        out: dict[str, Any] = {"depth": self.depth, "widths": list(self.widths),
                               "activation": self.activation}  # the label: a field or property of each subclass
        out.update((f.name, getattr(self, f.name)) for f in fields(SimulationSettings)
                   if f.name not in ("X", "depth", "widths"))
        return out


@dataclass(frozen=True, eq=False)
class SimulationResult(SimulationSettings):
    """Statistics of ``n_networks`` simulated networks and the settings that produced them.

    The arrays are positional (``preact_gram, postact_gram, preact_m2, preact_m4, backward_gram, tangent_gram``),
    the settings keywords (those of :class:`SimulationSettings` and ``activation``, the activation's label).

    Examples
    --------
    >>> import numpy as np
    >>> from sigprop.kernels import simulate
    >>> res = simulate(np.eye(2, 4), depth=2, width=8, activation="relu", C_W=2.0, n_networks=3)
    >>> res.preact_gram.shape, res.activation, res.width, res.n_inputs, res.settings["widths"]
    ((3, 2, 2, 2), 'relu', 8, 2, [8, 8])
    """

    preact_gram: np.ndarray
    postact_gram: np.ndarray
    preact_m2: np.ndarray
    preact_m4: np.ndarray
    backward_gram: np.ndarray | None
    tangent_gram: np.ndarray | None
    activation: str = field(kw_only=True)

    def __post_init__(self) -> None:
        for name in ARRAY_FIELDS + ("X",):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics present (None-valued ones left out)."""
        return {k: getattr(self, k) for k in ARRAY_FIELDS if getattr(self, k) is not None}

    def save_npz(self, path: str | Path) -> Path:
        """Write the arrays, the inputs ``X`` and the settings (JSON string ``settings``) to an .npz file."""
        path = Path(path)
        np.savez_compressed(path, X=self.X, settings=np.array(json.dumps(self.settings)), **self.arrays())
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def __repr__(self) -> str:
        return (f"SimulationResult(method={self.method!r}, backend={self.backend!r}, activation={self.activation!r}, "
                f"n_networks={self.n_networks}, depth={self.depth}, widths={self.widths}, P={self.n_inputs}, "
                f"C_W={self.C_W}, C_b={self.C_b}, residual={self.residual}, norm={self.norm!r}, seed={self.seed})")


def load_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :meth:`SimulationResult.save_npz`: (arrays incl. X, settings)."""
    with np.load(Path(path), allow_pickle=False) as f:
        settings = json.loads(str(f["settings"]))
        arrays = {k: f[k] for k in f.files if k != "settings"}
    return arrays, settings
