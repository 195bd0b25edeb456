"""``sigprop theory NAME [--param KEY=VALUE]... [--rho R]... [--kmax K] [--json]``.

Prints the normalisation constant C = sqrt(E phi^2), kappa(0), kappa'(0), kappa'(1), the convergence case,
rho* and rate, the numeric Hermite coefficients c_0..c_kmax (raw phi, default kmax = 10) and kappa at every
``--rho``.  With ``--json``: exactly one JSON object with exactly the keys
``C, kappa0, kappa_prime0, kappa_prime1, case, rho_star, rate, hermite, kappa``; ``kappa`` maps each --rho
STRING AS GIVEN on the command line to its value.  Non-finite numbers are written as the strings "inf",
"-inf", "nan" (strict JSON has no infinity); for a linear activation (not covered by the convergence theorem)
``case``, ``rho_star`` and ``rate`` are null.  Bad input: message on stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from sigprop.theory.errors import InputError

from .args import activation_from_args, add_json_flag, add_param_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="activation name (e.g. relu, leaky_relu, tanh, gelu, selu, erf, exp)")
    add_param_argument(parser)
    parser.add_argument("--rho", action="append", default=[], metavar="R",
                        help="evaluate kappa at R in [-1, 1] (repeatable)")
    parser.add_argument("--kmax", type=int, default=10, help="highest Hermite coefficient to print (default 10)")
    add_json_flag(parser)


def _num(x):
    if x is None:
        return None
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def run(args: argparse.Namespace) -> int:
    from sigprop.theory import KernelMap, hermite_coefficients

    if args.kmax < 0:
        raise InputError(f"--kmax must be >= 0, got {args.kmax}")
    rhos = []
    for s in args.rho:
        try:
            r = float(s)
        except ValueError:
            raise InputError(f"--rho must be a number in [-1, 1], got {s!r}") from None
        if math.isnan(r) or abs(r) > 1:
            raise InputError(f"--rho must be in [-1, 1], got {s!r}")
        rhos.append((s, r))
    act = activation_from_args(args, name=args.name)
    km = KernelMap(act)
    try:
        conv = km.convergence()
        case, rho_star, rate, note = conv.case, conv.rho_star, conv.rate, ""
    except ValueError as exc:
        case, rho_star, rate, note = None, None, None, str(exc)
    herm = hermite_coefficients(act, args.kmax)
    kap = {s: float(km(r)) for s, r in rhos}
    if args.json:
        obj = {"C": _num(km.C), "kappa0": _num(km.kappa0), "kappa_prime0": _num(km.kappa_prime0),
               "kappa_prime1": _num(km.kappa_prime1), "case": case, "rho_star": _num(rho_star), "rate": _num(rate),
               "hermite": [_num(c) for c in herm], "kappa": {s: _num(v) for s, v in kap.items()}}
        print(json.dumps(obj))
        return 0
    w = sys.stdout.write
    w(f"activation    {act.label}   (kernel map: {km.method})\n")
    w(f"C             {km.C:.16g}   (sqrt(E phi^2), X ~ N(0,1))\n")
    w(f"kappa0        {km.kappa0:.16g}\n")
    w(f"kappa_prime0  {km.kappa_prime0:.16g}\n")
    w(f"kappa_prime1  {km.kappa_prime1:.16g}\n")
    if case is None:
        w(f"case          none ({note})\n")
    else:
        w(f"case          {case}\nrho_star      {rho_star:.16g}\nrate          {rate:.16g}\n")
    w("hermite       c_k = E[phi(X) He_k(X)] / sqrt(k!)  (raw phi)\n")
    for k, c in enumerate(herm):
        w(f"  c_{k:<4d} {c: .16e}\n")
    for s, v in kap.items():
        w(f"kappa({s}) = {v:.16g}\n")
    return 0
