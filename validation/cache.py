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
runner recomputes the experiment and overwrites the entry.  So is an entry that is damaged in any other way: a
file that cannot be read or is not valid JSON, or whose content does not decode (e.g. an array whose dtype is not
a plain number, bool or string type, which :func:`decode_value` refuses).  A file that does not exist is a plain
miss, without a warning.

Writing an entry raises the ``OSError`` of the file system (a folder made unwritable, a full disk) and leaves no
temporary file behind; the runner then warns and goes on with the value in memory
(:mod:`sigprop.validation.runner`).
"""
from __future__ import annotations

import contextlib
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
           "sigprop_version", "entry_checksum", "CacheWarning", "encode_value", "decode_value", "write_atomic"]

CACHE_FORMAT = 2  # 2: entries carry a checksum


class CacheWarning(UserWarning):
    """A cache entry was found but not trusted (damaged, or its checksum is missing or wrong) and will be
    recomputed, or an entry could not be written (the run goes on without it)."""


# dtype kinds a stored array may have: bool, signed and unsigned integers, floats, complex, bytes and unicode
_PLAIN_KINDS = "biufcSU"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, then a rename.

    A failure (``OSError``: no permission, a full disk, a folder where the file should be) propagates and removes
    the temporary file, so that ``path`` is either the old file or the new one, never half-written.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _plain_dtype(text: Any) -> np.dtype:
    """The dtype a stored array names, if it is a plain number, bool or string dtype; else ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"an array's dtype must be a dtype string, got {type(text).__name__}")
    try:
        dtype = np.dtype(text)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {text!r} ({exc})") from None
    if dtype.kind not in _PLAIN_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"dtype {text!r} is not a plain number, bool or string dtype")
    return dtype


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
    non-finite floats are tagged.  Supported: None, bool, int, float, str, list, tuple, dict, numpy scalars and
    numpy arrays of a plain dtype (bool, integer, float, complex, bytes, unicode); anything else (object,
    structured, datetime arrays, other types) is an :class:`~sigprop.theory.errors.InputTypeError` (a unit must
    return data).

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
        try:
            _plain_dtype(a.dtype.str)
        except ValueError:
            raise InputTypeError(f"a unit's value may hold arrays of plain number, bool or string dtypes only, got "
                                 f"dtype {a.dtype}") from None
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
    """The inverse of :func:`encode_value` (on its output after a JSON round trip).

    Damaged input raises ``ValueError``, ``TypeError`` or ``KeyError``, never builds an object array: an array
    whose stored dtype is not a plain number, bool or string dtype is refused (``ValueError``).

    Examples
    --------
    >>> decode_value({"__ndarray__": "", "dtype": "|O", "shape": [0]})
    Traceback (most recent call last):
    ...
    ValueError: dtype '|O' is not a plain number, bool or string dtype
    """
    import base64

    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__ndarray__" in obj:
        dtype = _plain_dtype(obj["dtype"])
        data = base64.b64decode(obj["__ndarray__"], validate=True)
        return np.frombuffer(data, dtype=dtype).reshape(obj["shape"]).copy()
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
        figures exist; else None (an entry that is damaged, or whose checksum is missing or wrong, also warns,
        :class:`CacheWarning`)."""
        path = self.path(experiment, key)
        entry = _read_entry(path, key, experiment)
        if entry is None:
            return None
        try:
            result = result_from_dict(entry["result"])
            elapsed = float(entry.get("elapsed", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            _distrust(path, f"does not hold a result ({type(exc).__name__}: {exc})", experiment)
            return None
        for _, fig in result.figures:
            p = Path(fig)
            if not (p if p.is_absolute() else self.out_dir / p).exists():
                return None
        return result, elapsed

    def unit_path(self, experiment: str, key: str) -> Path:
        return self.root / "units" / f"{experiment}-{key[:20]}.json"

    def load_unit(self, experiment: str, key: str) -> tuple[Any, float] | None:
        """(value, elapsed seconds) of a unit stored under this exact key with a matching checksum, else None
        (an entry that is damaged, e.g. an array of a dtype that is not plain data, or whose checksum is missing
        or wrong warns, :class:`CacheWarning`, and the unit is recomputed)."""
        path = self.unit_path(experiment, key)
        entry = _read_entry(path, key, "the unit")
        if entry is None:
            return None
        try:
            return decode_value(entry["value"]), float(entry.get("elapsed", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            _distrust(path, f"does not hold a unit's value ({type(exc).__name__}: {exc})", "the unit")
            return None

    def store_unit(self, experiment: str, key: str, unit: str, value: Any, elapsed: float) -> Path:
        """Store a unit's value (atomically: temporary file + rename); an ``OSError`` of the file system
        propagates (see :func:`write_atomic`)."""
        path = self.unit_path(experiment, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"format": CACHE_FORMAT, "key": key, "experiment": experiment, "unit": unit,
                 "elapsed": float(elapsed), "value": encode_value(value)}
        entry["checksum"] = entry_checksum(json.loads(json.dumps(entry)))
        write_atomic(path, json.dumps(entry))
        return path

    def store(self, experiment: str, key: str, result: ExperimentResult, elapsed: float,
              settings: dict[str, Any] | None = None) -> Path:
        """Store a finished experiment (atomically); an ``OSError`` of the file system propagates."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.path(experiment, key)
        entry = {"format": CACHE_FORMAT, "key": key, "experiment": experiment, "elapsed": float(elapsed),
                 "settings": jsonable(settings or {}), "result": result_to_dict(result, self.out_dir)}
        # the checksum of what json.loads will give back (the round trip normalises tuples and the like)
        entry["checksum"] = entry_checksum(json.loads(json.dumps(entry)))
        write_atomic(path, json.dumps(entry, indent=1))
        return path


def _distrust(path: Path, why: str, what: str) -> None:
    """Warn that the cache entry ``path`` is not used: ``what`` (an experiment, or 'the unit') is recomputed."""
    warnings.warn(f"cache entry {path} {why}; not trusted, {what} will be recomputed and the entry overwritten",
                  CacheWarning, stacklevel=3)


def _read_entry(path: Path, key: str, what: str) -> dict[str, Any] | None:
    """The cache entry at ``path`` if it is stored under ``key`` in this format with a matching checksum, else
    None: a missing file or an entry of another key or format silently (a miss), a damaged one with a
    :class:`CacheWarning`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _distrust(path, f"cannot be read ({exc.strerror or exc})", what)
        return None
    try:
        entry = json.loads(text)
    except ValueError:
        _distrust(path, "is not valid JSON (damaged or cut short)", what)
        return None
    if not isinstance(entry, dict):
        _distrust(path, f"is not a cache entry (a JSON {type(entry).__name__}, damaged)", what)
        return None
    if entry.get("key") != key or entry.get("format") != CACHE_FORMAT:
        return None
    stored = entry.get("checksum")
    if stored is None or stored != entry_checksum(entry):
        why = "has no checksum" if stored is None else "does not match its checksum (edited or damaged)"
        _distrust(path, why, what)
        return None
    return entry
