"""Moved: this module is now :mod:`sigprop.validation.correlator_estimators` (estimators of finite-width correlators);
the old path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.validation.correlator_estimators", globals())
