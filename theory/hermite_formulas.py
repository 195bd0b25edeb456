"""Moved: this module is now :mod:`sigprop.theory.hermite_integrals` (the exact Hermite integrals); the old path works
for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.theory.hermite_integrals", globals())
