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

__all__ = ["SimulationResult", "ARRAY_FIELDS", "load_npz"]

ARRAY_FIELDS: tuple[str, ...] = ("preact_gram", "postact_gram", "preact_m2", "preact_m4", "backward_gram",
                                 "tangent_gram")


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Statistics of ``n_networks`` simulated networks and the settings that produced them."""

    preact_gram: np.ndarray
    postact_gram: np.ndarray
    preact_m2: np.ndarray
    preact_m4: np.ndarray
    backward_gram: np.ndarray | None
    tangent_gram: np.ndarray | None
    X: np.ndarray = field(repr=False)
    depth: int
    widths: tuple[int, ...]
    activation: str
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

    def __post_init__(self) -> None:
        for name in ARRAY_FIELDS + ("X",):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def n_inputs(self) -> int:
        """P, the number of inputs."""
        return int(self.X.shape[0])

    @property
    def width(self) -> int | tuple[int, ...]:
        """The width: an int when all layers are equally wide, else the tuple of widths."""
        return self.widths[0] if len(set(self.widths)) == 1 else self.widths

    @property
    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (everything but the arrays and X)."""
        out = {}
        for f in fields(self):
            if f.name in ARRAY_FIELDS or f.name == "X":
                continue
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

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
