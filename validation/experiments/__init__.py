"""Experiments of the validation suite: one module per experiment."""
