"""Moved: the rainbow model's measures are now in :mod:`sigprop.validation.measures` (Procrustes, CKA and aligned
error in ``measures.similarity``; weight covariances, effective ranks and the Marchenko-Pastur law in
``measures.spectra``); the old path works for one release and warns (DeprecationWarning)."""
from sigprop.theory.deprecation import moved_module

moved_module(__name__, "sigprop.validation.measures", globals())
