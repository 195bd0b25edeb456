"""Finite-width correlators of deep networks: symbolic Wick derivations, exact values, 1/n recursions."""
