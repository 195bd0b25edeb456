"""Result cache of the validation suite: finished experiments survive an interrupted run.

One JSON file per finished experiment under ``<out>/.cache/``, named by the experiment and a key: the
SHA-256 of the canonical JSON of (experiment name, its full settings, seed, backend, sigprop version and a
fingerprint of the package sources, so that a code change never reuses a stale result).
A run restarted with the same ``--out`` and the same key reuses the stored :class:`ExperimentResult`
(checks, figure paths, tables, notes, elapsed time) as long as its figures still exist.  Files are
written atomically (temporary file + rename), so an interrupt never leaves a half-written entry.

Each entry stores ``checksum``, the SHA-256 of the canonical JSON (sorted keys, no spaces) of the rest of the
entry.  An entry whose checksum is missing or does not match (edited by hand, or damaged, but still valid
JSON) is not trusted: :meth:`ResultCache.load` warns (:class:`CacheWarning`) and reports a miss, so the
runner recomputes the experiment and overwrites the entry.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .experiment import Check, ExperimentResult

__all__ = ["cache_key", "unit_cache_key", "result_to_dict", "result_from_dict", "ResultCache", "jsonable",
           "sigprop_version", "entry_checksum", "CacheWarning", "encode_value", "decode_value"]

CACHE_FORMAT = 2  # 2: entries carry a checksum


class CacheWarning(UserWarning):
    """A cache entry was found but not trusted (its checksum is missing or wrong); it will be recomputed."""


def entry_checksum(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a cache entry without its ``checksum`` field.

    Parameters
    ----------
    entry : dict
        A cache entry as stored (plain JSON types); a ``checksum`` key, if present, is left out.

    Returns
    -------
    str
        64 hex digits; the same for the entry before ``json.dump`` and after ``json.load``.
    """
    body = {k: v for k, v in entry.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sigprop_version() -> str:
    try:
        from importlib.metadata import version

        return version("sigprop")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """SHA-256 of every ``.py`` file of sigprop.theory, sigprop.kernels and sigprop.validation (path and bytes)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import importlib

        digest = hashlib.sha256()
        for name in ("sigprop.theory", "sigprop.kernels", "sigprop.validation"):
            root = Path(importlib.import_module(name).__path__[0])
            for path in sorted(root.rglob("*.py")):
                digest.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
                digest.update(path.read_bytes())
        _FINGERPRINT = digest.hexdigest()
    return _FINGERPRINT


def jsonable(obj: Any, *, finite: bool = False) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, Paths; with ``finite``, nan/inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, finite=finite) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist(), finite=finite)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return None if (finite and not math.isfinite(v)) else v
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def encode_value(obj: Any) -> Any:
    """A unit's value as plain JSON that :func:`decode_value` turns back into an equal value, bit for bit.

    Arrays are stored as base64 of their bytes with dtype and shape; tuples, dicts with non-string keys and
    non-finite floats are tagged.  Supported: None, bool, int, float, str, list, tuple, dict, numpy arrays and
    scalars; anything else is an :class:`~sigprop.theory.errors.InputTypeError` (a unit must return data).

    Examples
    --------
    >>> import json
    >>> v = {(40, 1): [np.arange(3.0), 0.1, float("nan")], "epoch_at": {1.0: 3}}
    >>> w = decode_value(json.loads(json.dumps(encode_value(v))))
    >>> list(w), w[(40, 1)][0].tolist(), w[(40, 1)][2] != w[(40, 1)][2], w["epoch_at"]
    ([(40, 1), 'epoch_at'], [0.0, 1.0, 2.0], True, {1.0: 3})
    """
    import base64

    from sigprop.theory.errors import InputTypeError

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        if a.dtype == object:
            raise InputTypeError("a unit's value may not hold object arrays")
        return {"__ndarray__": base64.b64encode(a.tobytes()).decode(), "dtype": a.dtype.str, "shape": list(a.shape)}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode_value(v) for v in obj]}
    if isinstance(obj, list):
        return [encode_value(v) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: encode_value(v) for k, v in obj.items()}
        return {"__items__": [[encode_value(k), encode_value(v)] for k, v in obj.items()]}
    raise InputTypeError(f"a unit's value must be data (numbers, strings, arrays, lists, tuples, dicts), "
                         f"got {type(obj).__name__}")


def decode_value(obj: Any) -> Any:
    """The inverse of :func:`encode_value` (on its output after a JSON round trip)."""
    import base64

    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__ndarray__" in obj:
        data = base64.b64decode(obj["__ndarray__"])
        return np.frombuffer(data, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__tuple__" in obj:
        return tuple(decode_value(v) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_hashable(decode_value(k)): decode_value(v) for k, v in obj["__items__"]}
    return {k: decode_value(v) for k, v in obj.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(v) for v in key) if isinstance(key, (list, tuple)) else key


def unit_cache_key(experiment: str, settings: dict[str, Any], unit: str, seed: int, backend: str,
                   version: str | None = None) -> str:
    """SHA-256 (hex) of what one unit of an experiment depends on: :func:`cache_key` with the unit's id."""
    return cache_key(f"{experiment}/unit", {"settings": settings, "unit": unit}, seed, backend, version)


def cache_key(experiment: str, settings: dict[str, Any], seed: int, backend: str, version: str | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of everything an experiment's result depends on."""
    payload = {"experiment": experiment, "settings": jsonable(settings), "seed": int(seed), "backend": backend,
               "sigprop": sigprop_version() if version is None else version, "code": code_fingerprint(),
               "format": CACHE_FORMAT}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def result_to_dict(result: ExperimentResult, out_dir: Path | None = None) -> dict[str, Any]:
    """JSON form of an :class:`ExperimentResult`; figure paths inside ``out_dir`` are stored relative to it."""
    figures = []
    for caption, path in result.figures:
        p = Path(path)
        if out_dir is not None and p.is_absolute():
            try:
                p = p.relative_to(Path(out_dir).resolve())
            except ValueError:
                pass
        elif out_dir is not None:
            try:
                p = p.relative_to(Path(out_dir))
            except ValueError:
                pass
        figures.append([caption, str(p)])
    return {"checks": [jsonable(asdict(c)) for c in result.checks], "figures": figures,
            "tables": list(result.tables), "notes": result.notes}


def result_from_dict(d: dict[str, Any]) -> ExperimentResult:
    checks = [Check(**{**c, "details": c.get("details") or {}}) for c in d["checks"]]
    return ExperimentResult(checks=checks, figures=[(c, p) for c, p in d.get("figures", [])],
                            tables=list(d.get("tables", [])), notes=d.get("notes", ""))


class ResultCache:
    """Finished experiments of one report folder, stored in ``<out>/.cache``."""

    def __init__(self, out_dir: Path | str):
        self.out_dir = Path(out_dir)
        self.root = self.out_dir / ".cache"

    def path(self, experiment: str, key: str) -> Path:
        return self.root / f"{experiment}-{key[:20]}.json"

    def load(self, experiment: str, key: str) -> tuple[ExperimentResult, float] | None:
        """(result, elapsed seconds) if stored under this exact key, with a matching checksum, and all its
        figures exist; else None (a checksum that is missing or wrong also warns, :class:`CacheWarning`)."""
        path = self.path(experiment, key)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or entry.get("format") != CACHE_FORMAT:
            return None
        stored = entry.get("checksum")
        if stored is None or stored != entry_checksum(entry):
            why = "has no checksum" if stored is None else "does not match its checksum (edited or damaged)"
            warnings.warn(f"cache entry {path} {why}; not trusted, {experiment} will be recomputed and the entry "
                          "overwritten", CacheWarning, stacklevel=2)
            return None
        try:
            result = result_from_dict(entry["result"])
        except (KeyError, TypeError, ValueError):
            return None
        for _, fig in result.figures:
            p = Path(fig)
            if not (p if p.is_absolute() else self.out_dir / p).exists():
                return None
        return result, float(entry.get("elapsed", 0.0))

    def unit_path(self, experiment: str, key: str) -> Path:
        return self.root / "units" / f"{experiment}-{key[:20]}.json"

    def load_unit(self, experiment: str, key: str) -> tuple[Any, float] | None:
        """(value, elapsed seconds) of a unit stored under this exact key with a matching checksum, else None
        (a checksum that is missing or wrong warns, :class:`CacheWarning`, and the unit is recomputed)."""
        path = self.unit_path(experiment, key)
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or entry.get("format") != CACHE_FORMAT:
            return None
        if entry.get("checksum") != entry_checksum(entry):
            warnings.warn(f"cache entry {path} does not match its checksum; not trusted, the unit will be "
                          "recomputed and the entry overwritten", CacheWarning, stacklevel=2)
            return None
        return decode_value(entry["value"]), float(entry.get("elapsed", 0.0))

    def store_unit(self, experiment: str, key: str, unit: str, value: Any, elapsed: float) -> Path:
        """Store a unit's value (atomically: temporary file + rename)."""
        path = self.unit_path(experiment, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"format": CACHE_FORMAT, "key": key, "experiment": experiment, "unit": unit,
                 "elapsed": float(elapsed), "value": encode_value(value)}
        entry["checksum"] = entry_checksum(json.loads(json.dumps(entry)))
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)
        return path

    def store(self, experiment: str, key: str, result: ExperimentResult, elapsed: float,
              settings: dict[str, Any] | None = None) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(experiment, key)
        entry = {"format": CACHE_FORMAT, "key": key, "experiment": experiment, "elapsed": float(elapsed),
                 "settings": jsonable(settings or {}), "result": result_to_dict(result, self.out_dir)}
        # the checksum of what json.loads will give back (the round trip normalises tuples and the like)
        entry["checksum"] = entry_checksum(json.loads(json.dumps(entry)))
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(entry, indent=1))
        os.replace(tmp, path)
        return path
