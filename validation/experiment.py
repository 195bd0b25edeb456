"""What an experiment of the validation suite is: checks, results, and the registry.

An experiment is one module in ``sigprop/validation/experiments/`` defining ``EXPERIMENT``, an
:class:`Experiment`.  Its ``run(ctx)`` returns an :class:`ExperimentResult` holding :class:`Check`s.
A check is judged by the runner, not by the experiment: for ``kind='z'`` the runner compares
``|z| = |estimate - theory| / stderr`` with one z bound chosen for the whole run (so that a correct
theory passes every check with probability >= 99%); ``kind='exact'`` compares ``|estimate - theory|``
with ``tol`` (for results that must agree to rounding); ``kind='info'`` is reported, never judged.

A check may also carry its experiment's headline :class:`Finding` (the paper's claim and whether the run
agrees with it), which the report lists right under its verdict: the judged checks passing says that the
engine's theory matches its simulations, not that a paper's claim holds.
"""
from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from sigprop.theory.errors import InputError

__all__ = ["Check", "Context", "Experiment", "ExperimentResult", "Finding", "discover", "unit_id"]


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
            raise InputError(f"Check.kind must be 'z', 'exact' or 'info', got {self.kind!r}")
        if self.kind == "z" and not (self.stderr > 0 and math.isfinite(self.stderr)):
            raise InputError(f"check {self.name!r}: kind 'z' needs a positive finite stderr, got {self.stderr!r}")

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


FINDING_BASES = ("interval", "checks", "informational")


@dataclass(frozen=True)
class Finding:
    """An experiment's headline result, stated against the claim of the paper it tests.

    The report lists every finding right under its verdict, so that "all judged checks passed" is never read as
    "the papers' claims hold".  An experiment declares one by adding ``finding.as_check(name)`` to its checks (an
    ``info`` check), or by putting ``finding.to_dict()`` into ``details['finding']`` of the check that measures it;
    either way it travels with the checks through the cache and ``results.json``.

    Parameters
    ----------
    claim : str
        The paper's claim in words.
    source : str
        Who claims it (authors, or this package for its own derivations).
    basis : {'interval', 'checks', 'informational'}
        How the finding is judged: ``'interval'``: agree iff the confidence ``interval`` of ``value`` contains
        ``paper_value`` and none of the ``rivals`` (inconclusive if it contains both, disagree if it excludes
        ``paper_value``); ``'checks'``: the experiment's judged checks test the claim, agree iff all of them pass
        under the run's z bound; ``'informational'``: reported, not judged.
    measured : str
        What ``value`` is, e.g. ``'trained exponent b of l* ~ L^b'``.
    value : float
        The measured number (``'interval'`` basis; NaN if it could not be measured).
    interval : tuple of float, optional
        ``(low, high)``, the ``confidence`` interval of ``value``.
    confidence : float
        Level of ``interval`` (default 0.95).
    paper_value : float, optional
        The paper's number.
    paper_text : str
        The paper's number as the paper writes it, e.g. ``'3/5'``.
    rivals : tuple of float
        Values the measurement must tell the paper's value apart from (e.g. 0 for "no growth with depth"): an
        interval that holds one of them as well as ``paper_value`` supports nothing.

    Examples
    --------
    >>> f = Finding("l* grows as L^(3/5)", "Lou, Mingard & Hayou", "interval", measured="trained exponent",
    ...             value=2.1, interval=(1.3, 2.9), paper_value=0.6, paper_text="3/5")
    >>> f.judge([], zmax=4.0)
    ('disagree', 'trained exponent 2.10, 95% CI [1.30, 2.90]; paper 3/5 = 0.600, outside the CI')
    >>> Finding.from_dict(f.to_dict()) == f
    True
    >>> wide = Finding("l* grows as L^(3/5)", "Lou, Mingard & Hayou", "interval", measured="trained exponent",
    ...                value=0.3, interval=(-3.0, 3.7), paper_value=0.6, paper_text="3/5", rivals=(0.0, 1.0))
    >>> wide.judge([], zmax=4.0)[0]
    'inconclusive'
    >>> c = Check("x", "mean", theory=1.0, estimate=1.1, stderr=0.05, rule="|z| <= zmax")
    >>> Finding("E z^2 = K", "a book", "checks").judge([c], zmax=3.0)
    ('agree', '1 of 1 judged checks pass (largest |z| 2.00, bound 3.00)')
    """

    claim: str
    source: str
    basis: str
    measured: str = ""
    value: float = math.nan
    interval: tuple[float, float] | None = None
    confidence: float = 0.95
    paper_value: float | None = None
    paper_text: str = ""
    rivals: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.basis not in FINDING_BASES:
            raise InputError(f"Finding.basis must be one of {', '.join(FINDING_BASES)}, got {self.basis!r}")
        if self.interval is not None:
            object.__setattr__(self, "interval", (float(self.interval[0]), float(self.interval[1])))
        object.__setattr__(self, "rivals", tuple(float(r) for r in self.rivals))
        if self.basis == "interval" and self.paper_value is None:
            raise InputError("Finding: basis 'interval' needs paper_value")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (NaN stays a float; the report's writer turns it into null)."""
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval is not None else None
        d["rivals"] = list(self.rivals)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Finding":
        """Inverse of :meth:`to_dict`; a ``None`` value (JSON null) reads as NaN."""
        d = dict(d)
        if d.get("value") is None:
            d["value"] = math.nan
        if d.get("interval") is not None:
            d["interval"] = tuple(d["interval"])
        return cls(**d)

    @classmethod
    def from_check(cls, check: "Check") -> "Finding | None":
        """The finding a check carries in ``details['finding']``, or None."""
        d = check.details.get("finding") if isinstance(check.details, dict) else None
        return cls.from_dict(d) if d else None

    def as_check(self, experiment: str, name: str | None = None) -> "Check":
        """An ``info`` check that carries this finding (for findings no existing check measures)."""
        return Check(experiment, name or f"finding: {self.measured or self.claim}",
                     theory=math.nan if self.paper_value is None else float(self.paper_value),
                     estimate=float(self.value), stderr=math.nan,
                     rule=f"headline finding ({self.basis}), listed under the report's verdict", kind="info",
                     details={"finding": self.to_dict()})

    def judge(self, checks: list["Check"], zmax: float) -> tuple[str, str]:
        """``(verdict, text)``: 'agree', 'disagree', 'inconclusive' or 'informational'; text states the numbers.

        ``checks`` are the experiment's checks ('checks' basis: its judged ones decide); ``zmax`` the run's bound.
        """
        if self.basis == "checks":
            judged = [c for c in checks if c.kind != "info"]
            if not judged:
                return "informational", "no judged checks"
            n_pass = sum(1 for c in judged if c.passed(zmax))
            zs = [abs(c.z) for c in judged if c.kind == "z" and math.isfinite(c.z)]
            worst = f"largest |z| {max(zs):.2f}, bound {zmax:.2f}" if zs else "exact checks only"
            verdict = "agree" if n_pass == len(judged) else "disagree"
            return verdict, f"{n_pass} of {len(judged)} judged checks pass ({worst})"
        what = self.measured or "measured"
        if not math.isfinite(self.value):
            return "informational", f"{what}: not measured"
        text = f"{what} {self.value:#.3g}"  # three figures, trailing zeros kept: 2.10, not 2.1
        if self.interval is not None:
            lo, hi = self.interval
            text += f", {100 * self.confidence:g}% CI [{lo:#.3g}, {hi:#.3g}]"
        if self.paper_value is not None:
            paper = f"{self.paper_value:#.3g}"
            if self.paper_text:  # '3/5 = 0.600'; a text that already shows the number stands alone: '> 0.92'
                shown = f"{self.paper_value:g}" in self.paper_text
                paper = self.paper_text if shown else f"{self.paper_text} = {paper}"
            text += f"; paper {paper}"
        if self.basis == "informational" or self.interval is None:
            return "informational", text
        lo, hi = self.interval
        if not lo <= self.paper_value <= hi:
            return "disagree", text + ", outside the CI"
        also = [r for r in self.rivals if lo <= r <= hi]
        if also:
            return "inconclusive", text + f", inside the CI, but so is {', '.join(f'{r:g}' for r in also)}"
        return "agree", text + ", inside the CI"


@dataclass
class Context:
    """What an experiment may use: the run's settings, a folder for figures, a progress factory."""

    profile: str = "quick"
    backend: str = "cpu"
    seed: int = 0
    jobs: int = 1
    out_dir: Path = Path("sigprop-report")
    progress: Callable[..., Any] | None = None  # tqdm-like: progress(iterable, desc=..., total=...)
    unit_results: dict[str, Any] | None = None  # unit_id(key) -> value, computed by the runner (workers, cache)

    def figure_path(self, experiment: str, name: str) -> Path:
        path = Path(self.out_dir) / "figures" / f"{experiment}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def track(self, iterable, desc: str = "", total: int | None = None):
        return iterable if self.progress is None else self.progress(iterable, desc=desc, total=total)

    def run_units(self, run_unit: Callable[["Context", dict[str, Any], Any], Any], keys: list[Any],
                  settings: dict[str, Any], desc: str = "") -> list[Any]:
        """``[run_unit(self, settings, key) for key in keys]``, taking each value the runner already computed.

        The runner computes an experiment's units (:attr:`Experiment.units`) before its ``run``, on Dask workers
        or from the cache, and hands their values in :attr:`unit_results`; a key it did not compute (an
        experiment run by hand, as in the tests) is computed here.  Either way the values are the same: a unit
        is a function of its settings, key and the run's seed only.
        """
        done = self.unit_results or {}
        todo = [k for k in keys if unit_id(k) not in done]
        fresh = {unit_id(k): run_unit(self, settings, k) for k in self.track(todo, desc=desc, total=len(todo))}
        return [done[unit_id(k)] if unit_id(k) in done else fresh[unit_id(k)] for k in keys]

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

    Finer units (optional): ``units(settings)`` lists JSON-serialisable keys (e.g. ``[depth, seed]``) and
    ``run_unit(ctx, settings, key)`` computes one of them, a plain function of its settings, key and
    ``ctx.seed`` (its value: numbers, arrays, lists, dicts; no figures).  The runner computes the units first
    (spread over Dask workers with ``--jobs``/``--scheduler``, each cached as it finishes), then calls ``run``,
    which obtains their values with ``ctx.run_units(run_unit, keys, settings)`` and combines them into checks.
    """

    name: str
    title: str
    description: str
    settings: Callable[[str], dict[str, Any]]
    run: Callable[[Context, dict[str, Any]], ExperimentResult]
    order: int = 100
    units: Callable[[dict[str, Any]], list[Any]] | None = None
    run_unit: Callable[[Context, dict[str, Any], Any], Any] | None = None

    def __post_init__(self) -> None:
        if (self.units is None) != (self.run_unit is None):
            raise InputError(f"experiment {self.name!r}: units and run_unit go together (both or neither)")


def unit_id(key: Any) -> str:
    """The canonical text of a unit key (compact JSON; tuples as lists), the key of ``Context.unit_results``.

    Examples
    --------
    >>> unit_id((40, 2)), unit_id([40, 2]), unit_id("relu")
    ('[40,2]', '[40,2]', '"relu"')
    """
    import json

    return json.dumps(key, sort_keys=True, separators=(",", ":"))


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
