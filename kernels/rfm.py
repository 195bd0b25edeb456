"""Moved: this module is now :mod:`sigprop.kernels.learning.rfm` (recursive feature machines); the old path works for
one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.kernels.learning.rfm", globals())
