"""What an experiment of the validation suite is: checks, results, and the registry.

An experiment is one module in ``sigprop/validation/experiments/`` defining ``EXPERIMENT``, an
:class:`Experiment`.  Its ``run(ctx)`` returns an :class:`ExperimentResult` holding :class:`Check`s.
A check is judged by the runner, not by the experiment: for ``kind='z'`` the runner compares
``|z| = |estimate - theory| / stderr`` with one z bound chosen for the whole run (so that a correct
theory passes every check with probability >= 99%); ``kind='exact'`` compares ``|estimate - theory|``
with ``tol`` (for results that must agree to rounding); ``kind='info'`` is reported, never judged.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Check", "Context", "Experiment", "ExperimentResult", "discover"]


@dataclass(frozen=True)
class Check:
    """One comparison of a theory value with a simulation estimate.

    ``rule`` says in words how it is judged, e.g. ``"|z| <= zmax"`` or
    ``"1/n extrapolation (WLS, 4 widths), |z| <= zmax"``; ``kind`` is ``'z'``, ``'exact'`` or ``'info'``.
    """

    experiment: str
    name: str
    theory: float
    estimate: float
    stderr: float
    rule: str
    kind: str = "z"
    tol: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("z", "exact", "info"):
            raise ValueError(f"Check.kind must be 'z', 'exact' or 'info', got {self.kind!r}")
        if self.kind == "z" and not (self.stderr > 0 and math.isfinite(self.stderr)):
            raise ValueError(f"check {self.name!r}: kind 'z' needs a positive finite stderr, got {self.stderr!r}")

    @property
    def z(self) -> float | None:
        if self.kind != "z":
            return None
        return (self.estimate - self.theory) / self.stderr

    def passed(self, zmax: float) -> bool | None:
        """True/False under the run's z bound; None for ``info`` checks."""
        if self.kind == "info":
            return None
        if not (math.isfinite(self.estimate) and math.isfinite(self.theory)):
            return False
        if self.kind == "exact":
            return abs(self.estimate - self.theory) <= self.tol
        return abs(self.z) <= zmax

    def to_dict(self, zmax: float) -> dict[str, Any]:
        d = asdict(self)
        d["z"] = self.z
        d["passed"] = self.passed(zmax)
        return d


@dataclass
class Context:
    """What an experiment may use: the run's settings, a folder for figures, a progress factory."""

    profile: str = "quick"
    backend: str = "cpu"
    seed: int = 0
    jobs: int = 1
    out_dir: Path = Path("sigprop-report")
    progress: Callable[..., Any] | None = None  # tqdm-like: progress(iterable, desc=..., total=...)

    def figure_path(self, experiment: str, name: str) -> Path:
        path = Path(self.out_dir) / "figures" / f"{experiment}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def track(self, iterable, desc: str = "", total: int | None = None):
        return iterable if self.progress is None else self.progress(iterable, desc=desc, total=total)

    def sub_seed(self, *keys: Any) -> int:
        """A seed in [0, 2^63) derived from the run's seed and ``keys`` (stable across runs and platforms).

        Use one per independent simulation (e.g. per activation and width), so that estimates that a
        fit treats as independent do not share random numbers.
        """
        import hashlib

        text = repr((int(self.seed),) + tuple(str(k) for k in keys))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


@dataclass
class ExperimentResult:
    """Checks, figures (paths relative to the report folder or absolute), markdown tables and notes."""

    checks: list[Check]
    figures: list[tuple[str, str]] = field(default_factory=list)  # (caption, path)
    tables: list[str] = field(default_factory=list)
    notes: str = ""


@dataclass(frozen=True)
class Experiment:
    """A self-describing unit of the suite.

    ``settings(profile)`` returns a JSON-serialisable dict of everything the result depends on
    (widths, depths, sample sizes...): the runner's cache is keyed by it together with the seed and
    backend.  ``run(ctx, settings)`` does the work.
    """

    name: str
    title: str
    description: str
    settings: Callable[[str], dict[str, Any]]
    run: Callable[[Context, dict[str, Any]], ExperimentResult]
    order: int = 100


def discover() -> list[Experiment]:
    """All experiments in ``sigprop.validation.experiments``, sorted by ``order`` then name."""
    from . import experiments

    found = []
    for info in pkgutil.iter_modules(experiments.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{experiments.__name__}.{info.name}")
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            found.append(exp)
    return sorted(found, key=lambda e: (e.order, e.name))
