"""Moved: this module is now :mod:`sigprop.theory.pair_formulas` (the closed-form Gaussian pair expectations); the old
path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.theory.pair_formulas", globals())
