"""Moved: this module is now :mod:`sigprop.validation.experiments.rainbow_trained` (the rainbow experiment's
measurements on trained networks); the old path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.validation.experiments.rainbow_trained", globals())
