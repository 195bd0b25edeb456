"""Moved: this module is now :mod:`sigprop.theory.activation_closed_forms` (an activation's closed forms, read from its
registry entry); the old path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.theory.activation_closed_forms", globals())
