"""The frozen result of :func:`sigprop.kernels.simulate`: per-network statistics plus the settings.

Array attributes (S networks, L hidden layers, P inputs; layer index 0 = first hidden layer):
``preact_gram``, ``postact_gram`` (S, L, P, P); ``preact_m2``, ``preact_m4`` (S, L, P); with
``backward=True`` also ``backward_gram`` and ``tangent_gram`` (S, L, P, P), else None.
The arrays are read-only.

With a covariance model (``covariance=RainbowCovariance(...)``, :mod:`sigprop.kernels.covariance`) the Gram matrices
are (S, L, N, N) on the ``P = n_inputs`` inputs then the ``m = covariance.n_anchors`` anchors (``N = P + m``;
``preact_gram[..., :P, :P]`` is the inputs' block, ``[..., P:, P:]`` the anchors'), the moments ``preact_m2`` and
``preact_m4`` (and the backward statistics) are None (the rainbow engines compute Gram matrices only), and with
``keep_activations=True`` the attribute ``activations`` holds per layer an (S, N, n_l) array of ``h^(l)``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SimulationResult", "SimulationSettings", "ARRAY_FIELDS", "load_npz", "flat_arrays"]

ARRAY_FIELDS: tuple[str, ...] = ("preact_gram", "postact_gram", "preact_m2", "preact_m4", "backward_gram",
                                 "tangent_gram")


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    a.setflags(write=False)
    return a


def flat_arrays(arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays as an .npz file holds them: a tuple of per-layer ``activations`` as ``activations_0`` ..
    ``activations_<L-1>`` (hidden layers 1..L), None-valued entries left out.

    Examples
    --------
    >>> sorted(flat_arrays({"preact_gram": np.zeros(1), "activations": (np.zeros(1), np.ones(1))}))
    ['activations_0', 'activations_1', 'preact_gram']
    """
    out = {k: v for k, v in arrays.items() if v is not None and k != "activations"}
    for layer, h in enumerate(arrays.get("activations") or ()):
        out[f"activations_{layer}"] = h
    return out


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
    C_W: float | None
    C_b: float
    n_networks: int
    method: str
    backend: str
    seed: int
    weights: str
    residual: float
    norm: str | None
    backward: bool
    covariance: Any = None  # None (i.i.d., C_W) or a sigprop.kernels.covariance.RainbowCovariance (C_W None)
    first_network: int = 0
    keep_activations: bool = False

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
    def n_anchors(self) -> int:
        """m, the anchors of a rainbow covariance model (0 without one): the last rows of the Gram matrices."""
        return 0 if self.covariance is None else self.covariance.n_anchors

    @property
    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-serialisable dict (everything but the arrays and X; widths as a list; the
        covariance model as ``RainbowCovariance.to_settings()``, which
        :func:`sigprop.kernels.covariance.covariance_from_settings` turns back into the object)."""
        out: dict[str, Any] = {"depth": self.depth, "widths": list(self.widths),
                               "activation": self.activation}  # the label: a field or property of each subclass
        out.update((f.name, getattr(self, f.name)) for f in fields(SimulationSettings)
                   if f.name not in ("X", "depth", "widths", "covariance"))
        out["covariance"] = None if self.covariance is None else self.covariance.to_settings()
        return out


@dataclass(frozen=True, eq=False)
class SimulationResult(SimulationSettings):
    """Statistics of ``n_networks`` simulated networks and the settings that produced them.

    The arrays are positional (``preact_gram, postact_gram, preact_m2, preact_m4, backward_gram, tangent_gram``),
    the settings keywords (those of :class:`SimulationSettings` and ``activation``, the activation's label), and
    ``activations`` (keyword; with ``keep_activations=True`` and a covariance model, per layer an (S, N, n_l) array
    of the post-activations, else None).

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
    activations: tuple[np.ndarray, ...] | None = field(default=None, kw_only=True, repr=False)

    def __post_init__(self) -> None:
        for name in ARRAY_FIELDS + ("X",):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        if self.activations is not None:
            object.__setattr__(self, "activations", tuple(_frozen(h) for h in self.activations))

    def arrays(self) -> dict[str, np.ndarray]:
        """The statistics present (None-valued ones left out)."""
        return {k: getattr(self, k) for k in ARRAY_FIELDS if getattr(self, k) is not None}

    def save_npz(self, path: str | Path) -> Path:
        """Write the arrays, the inputs ``X`` and the settings (JSON string ``settings``) to an .npz file (kept
        activations as ``activations_0`` .. ``activations_<L-1>``, :func:`flat_arrays`)."""
        path = Path(path)
        arrays = flat_arrays({**self.arrays(), "activations": self.activations})
        np.savez_compressed(path, X=self.X, settings=np.array(json.dumps(self.settings)), **arrays)
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    def __repr__(self) -> str:
        return (f"SimulationResult(method={self.method!r}, backend={self.backend!r}, activation={self.activation!r}, "
                f"n_networks={self.n_networks}, depth={self.depth}, widths={self.widths}, P={self.n_inputs}, "
                f"C_W={self.C_W}, C_b={self.C_b}, residual={self.residual}, norm={self.norm!r}, seed={self.seed}"
                + ("" if self.covariance is None else f", covariance={self.covariance!r}") + ")")


def load_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by :meth:`SimulationResult.save_npz`: (arrays incl. X, settings)."""
    with np.load(Path(path), allow_pickle=False) as f:
        settings = json.loads(str(f["settings"]))
        arrays = {k: f[k] for k in f.files if k != "settings"}
    return arrays, settings
