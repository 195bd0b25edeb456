"""Checks of the command line's input and output paths, made before any work.

A subcommand calls :func:`check_output_path` on every path it will write and :func:`check_input_file` on every
file it will read *before* it starts computing, so that a typo costs a one-line error (``ValueError``, which
the ``sigprop`` dispatcher prints as ``sigprop CMD: error: ...`` with exit status 2) instead of a traceback
after minutes of work.

Writability is tested by creating (and at once deleting) an empty temporary file in the folder that will hold
the output, not only with :func:`os.access`: as root ``os.access`` says every place is writable, and it knows
nothing of read-only file systems or of ``/proc``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from sigprop.theory.errors import InputError

__all__ = ["check_output_path", "check_input_file"]


def _probe_writable(folder: Path, option: str, shown: str) -> None:
    """ValueError naming ``option`` unless a file can be created in the existing folder ``folder``."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option}: cannot write to {shown}: folder {str(folder)!r} is not writable")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".sigprop-write-test-"):
            pass
    except OSError as exc:
        raise InputError(f"{option}: cannot write to {shown}: cannot create a file in folder {str(folder)!r} "
                         f"({exc.strerror or exc})") from None


def check_output_path(path: str | os.PathLike, *, option: str, kind: Literal["file", "dir"]) -> Path:
    """Check, before any work, that an output ``path`` can be written; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : str or os.PathLike
        The output path as given on the command line.
    option : str
        The option's name for messages, e.g. ``'--out'``.
    kind : {'file', 'dir'}
        ``'file'``: a file that will be created or overwritten; it must not be an existing folder and its folder
        must exist and be writable.  ``'dir'``: a report folder that will be created if missing (but not its
        parent, which must exist: a typo in the parent should not create a tree of folders); it must not be an
        existing file, and it (or its parent, when it does not exist yet) must be writable.

    Returns
    -------
    pathlib.Path
        ``path`` unchanged, as a Path.

    Raises
    ------
    ValueError
        One line naming ``option`` and the path: empty path, a file where a folder is wanted or the other way
        round, a missing parent folder, a parent that is a file (``somefile/out``), or a folder in which no file
        can be created (permissions, read-only file system, ``/proc``).
    """
    if kind not in ("file", "dir"):
        raise InputError(f"check_output_path: kind must be 'file' or 'dir', got {kind!r}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{option} must name a {'file' if kind == 'file' else 'folder'}, got {text!r}")
    p = Path(text)
    shown = repr(text)
    if kind == "dir":
        if p.exists():
            if not p.is_dir():
                raise InputError(f"{option} {shown} is an existing file, not a folder; name a folder for the report")
            _probe_writable(p, option, shown)
            return p
        target_parent = p.parent
    else:
        if p.is_dir():
            raise InputError(f"{option} {shown} is an existing folder; name a file")
        if p.exists() and not os.access(p, os.W_OK):
            raise InputError(f"{option}: cannot write to {shown}: the file exists and is not writable")
        target_parent = p.parent
    parent = target_parent if str(target_parent) else Path(".")
    if not parent.exists():
        # a parent that "does not exist" because one of its ancestors is a file: say so
        for anc in [parent, *parent.parents]:
            if anc.exists():
                if not anc.is_dir():
                    raise InputError(f"{option}: cannot write to {shown}: {str(anc)!r} is a file, not a folder")
                break
        raise InputError(f"{option}: cannot write to {shown}: folder {str(parent)!r} does not exist")
    if not parent.is_dir():
        raise InputError(f"{option}: cannot write to {shown}: {str(parent)!r} is a file, not a folder")
    _probe_writable(parent, option, shown)
    return p


def check_input_file(path: str | os.PathLike, *, option: str) -> Path:
    """Check, before any work, that the input file ``path`` exists and is readable; return it as a Path.

    Parameters
    ----------
    path : str or os.PathLike
        The input path as given on the command line.
    option : str
        The option's name for messages, e.g. ``'--X'``.

    Returns
    -------
    pathlib.Path
        ``path`` unchanged, as a Path.

    Raises
    ------
    ValueError
        One line naming ``option`` and the path: empty, missing, a folder, or not readable.
    """
    text = os.fspath(path)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{option} must name a file, got {text!r}")
    p = Path(text)
    if not p.exists():
        raise InputError(f"{option}: file {text!r} does not exist")
    if p.is_dir():
        raise InputError(f"{option}: {text!r} is a folder, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{option}: file {text!r} is not readable")
    return p
