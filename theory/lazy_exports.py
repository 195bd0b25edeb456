"""A package's public names loaded on first use (PEP 562), so that importing the package stays light.

Examples
--------
>>> ns = {"__name__": "sigprop.theory", "__all__": ["errors", "InputError"]}
>>> getattr_, dir_ = lazy_exports("sigprop.theory", {"InputError": "errors"}, ns, submodules=("errors",))
>>> getattr_("InputError").__name__, getattr_("errors").__name__
('InputError', 'sigprop.theory.errors')
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: dict[str, str], namespace: dict[str, Any],
                 submodules: tuple[str, ...] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package`` (whose ``globals()`` is ``namespace``): ``names`` maps
    each public name to the submodule (relative to the package) that holds it, imported on first use and kept in
    ``namespace``; each of ``submodules`` is itself a public attribute; any other name is an AttributeError."""

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
