"""sigprop.theory: exact and symbolic results for wide random networks, with no sampling."""
from .activations import ACTIVATION_NAMES, Activation, activation, custom_activation

__all__ = ["ACTIVATION_NAMES", "Activation", "activation", "custom_activation"]
