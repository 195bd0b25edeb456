"""Moved: this module is now :mod:`sigprop.validation.work_units` (units of work run on Dask workers); the old path
works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.validation.work_units", globals())
