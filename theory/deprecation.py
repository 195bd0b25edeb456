"""Old public names kept for one release: a module-level ``__getattr__`` that warns and hands on the new name, and
modules kept at their old path for one release, handing on every name of their new home.

Examples
--------
>>> import warnings
>>> import sigprop.theory.tangent as tangent
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     f = tangent.layer_alignments
>>> f is tangent.label_alignments, caught[0].category.__name__
(True, 'DeprecationWarning')
"""
from __future__ import annotations

import warnings
from typing import Any, Callable

__all__ = ["renamed_attributes", "moved_module"]


def renamed_attributes(module: str, renames: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for names renamed in ``module``: ``renames`` maps each old name to its new
    one in ``namespace`` (the module's ``globals()``); reading an old name warns (DeprecationWarning, at the
    caller's line) and returns the new object; any other unknown name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name in renames:
            warnings.warn(f"{module}.{name} is renamed {module}.{renames[name]}; the old name goes in the next "
                          "release", DeprecationWarning, stacklevel=2)
            return namespace[renames[name]]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


def moved_module(old: str, new: str, namespace: dict[str, Any]) -> None:
    """Make the module ``old`` (whose ``globals()`` is ``namespace``) a stand-in for the module ``new``: every name of
    ``new`` is copied in (its ``__all__`` too) and importing ``old`` warns (DeprecationWarning)."""
    import importlib

    target = importlib.import_module(new)
    names = [k for k in vars(target) if not k.startswith("__")] + ["__all__"] * hasattr(target, "__all__")
    namespace.update({k: getattr(target, k) for k in names})
    warnings.warn(f"the module {old} is now {new}; the old path goes in the next release", DeprecationWarning,
                  stacklevel=3)
