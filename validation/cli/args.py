"""Arguments shared by the ``sigprop`` subcommands: one spelling and one parser for each.

- ``--activation NAME`` and ``--param KEY=VALUE`` (repeatable) for an activation's parameters, e.g.
  ``--activation leaky_relu --param slope=0.2``; :func:`activation_from_args` builds the Activation.
- ``--json``: print one JSON object instead of text.
- Variances are ``--C-W`` and ``--C-b`` everywhere.

Errors in values are :class:`sigprop.theory.errors.InputError`, which the dispatcher prints as one line with exit 2.
"""
from __future__ import annotations

import argparse

from sigprop.theory.errors import InputError

__all__ = ["add_activation_arguments", "add_param_argument", "parse_params", "activation_from_args", "add_json_flag",
           "RenamedFlag"]


def add_param_argument(parser) -> None:
    """``--param KEY=VALUE`` (repeatable): a parameter of the activation."""
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="activation parameter, e.g. slope=0.2 for leaky_relu or alpha=0.5 for elu (repeatable)")


def add_activation_arguments(parser, *, default: str | None = "relu", help: str | None = None) -> None:
    """``--activation NAME`` (required when ``default`` is None) and ``--param KEY=VALUE``."""
    text = help or "activation name (relu, leaky_relu, tanh, gelu, erf, ...)"
    if default is None:
        parser.add_argument("--activation", required=True, help=text)
    else:
        parser.add_argument("--activation", default=default, help=f"{text} (default {default})")
    add_param_argument(parser)


def parse_params(items: list[str]) -> dict[str, float]:
    """``['slope=0.2', ...]`` -> ``{'slope': 0.2, ...}``.

    Examples
    --------
    >>> parse_params(["slope=0.2", " alpha = 1"])
    {'slope': 0.2, 'alpha': 1.0}
    """
    out: dict[str, float] = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--param must look like KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        try:
            out[k] = float(v)
        except ValueError:
            raise InputError(f"--param {k}: value must be a number, got {v!r}") from None
    return out


def activation_from_args(args: argparse.Namespace, name: str | None = None):
    """The Activation named by ``--activation`` (or ``name``) with the ``--param`` values."""
    from sigprop.theory.activations import activation

    return activation(args.activation if name is None else name, **parse_params(args.param))


def add_json_flag(parser) -> None:
    """``--json``: print one JSON object instead of text."""
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


class RenamedFlag(argparse.Action):
    """A hidden old spelling of an option: using it is an error that names the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs="?", help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} is now spelled {self.new} (one spelling across sigprop commands)")
