"""Moved: this module is now :mod:`sigprop.validation.measures.reference` (the reference code's NFA number beside
the paper's ansatz); the old path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.validation.measures.reference", globals())
