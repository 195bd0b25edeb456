"""``sigprop equilibrium``: the equilibrium layer l*(L) and its fitted exponent over a window of depths.

Examples::

    sigprop equilibrium --depth 1000000
    sigprop equilibrium --depths 10:100:10 --rho0 0.2
    sigprop equilibrium --window 50 1600 --activation leaky_relu --param slope=0.1
"""
from __future__ import annotations

import argparse
import json

from sigprop.theory.errors import InputError

from .args import RenamedFlag, activation_from_args, add_activation_arguments, add_json_flag

#: the most depths ``--depths`` may list (each is one row of the table and O(L) work)
MAX_DEPTHS = 10_000


def _parse_depths(text: str) -> list[int]:
    """Depths from ``'10:100:10'`` (start:stop:step, stop inclusive) or ``'10,20,50'``.

    Parameters
    ----------
    text : str
        A range ``START:STOP[:STEP]`` with ``STEP >= 1``, or comma-separated integers with no empty field.

    Returns
    -------
    list of int
        The depths, in the order given.

    Raises
    ------
    ValueError
        Anything else (an empty field such as ``'10,,20'`` included), naming ``--depths``; more than
        :data:`MAX_DEPTHS` depths (counted before the list is built).

    Examples
    --------
    >>> _parse_depths("10:30:10"), _parse_depths("10,20,50")
    ([10, 20, 30], [10, 20, 50])
    """
    usage = "--depths must look like 10:100:10 or 10,20,50 (integers)"
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            start, stop = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1
            if step < 1:
                raise ValueError
            depths = range(start, stop + 1, step)
            _check_count(len(depths), text)  # a range's length costs nothing; its list may not fit in memory
            return list(depths)
        fields = text.split(",")
        _check_count(len(fields), text)
        for k, p in enumerate(fields):
            if not p.strip():
                raise InputError(f"{usage}; field {k + 1} is empty in {text!r}")
        return [int(p) for p in fields]
    except InputError:
        raise
    except ValueError:
        raise InputError(f"{usage}, got {text!r}") from None


def _check_count(count: int, text: str) -> None:
    """InputError naming ``--depths`` and :data:`MAX_DEPTHS` when ``count`` depths are too many."""
    if count > MAX_DEPTHS:
        raise InputError(f"--depths lists {count} depths, at most {MAX_DEPTHS} are allowed (use a larger step), "
                         f"got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--depth", type=int, help="one depth L (>= 2): print l*(L)")
    parser.add_argument("--depths", type=str, help="several depths, 10:100:10 or 10,20,50: table and log-log fit")
    parser.add_argument("--window", type=int, nargs=2, metavar=("LMIN", "LMAX"),
                        help="the finite-L exponent the definition predicts over [LMIN, LMAX] (40 log-spaced depths)")
    add_activation_arguments(parser, help="positively homogeneous activation (relu, leaky_relu, abs)")
    parser.add_argument("--slope", action=RenamedFlag, new="--param slope=VALUE")
    parser.add_argument("--rho0", type=float, default=0.0, help="input correlation c_0 in [-1, 1) (default 0)")
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    # imported here, so that `sigprop equilibrium --help` stays fast
    from sigprop.theory.equilibrium import (
        asymptotic_equilibrium_layer,
        equilibrium_layer,
        equilibrium_layers,
        equilibrium_position,
    )

    from ..stats import fit_power_law, theory_exponent

    act = activation_from_args(args)
    if args.depth is None and args.depths is None and args.window is None:
        raise InputError("give --depth, --depths or --window")
    out: dict = {"activation": act.label, "rho0": args.rho0,
                 "definition": "smallest l in 0..L with 1 - c_l <= prod_{k=l}^{L-1} kappa'(c_k) "
                               "(docs/derivations.md, section 5)"}
    if args.depth is not None:
        out["depth"] = {"L": args.depth, "l_star": equilibrium_layer(args.depth, act, args.rho0),
                        "l_star_continuous": equilibrium_position(args.depth, act, args.rho0),
                        "asymptote": asymptotic_equilibrium_layer(args.depth, act)}
    if args.depths is not None:
        depths = _parse_depths(args.depths)
        ls = equilibrium_layers(depths, act, args.rho0)
        cont = equilibrium_layers(depths, act, args.rho0, continuous=True)
        rows = [{"L": L, "l_star": int(l), "l_star_continuous": float(c)} for L, l, c in zip(depths, ls, cont)]
        entry = {"rows": rows}
        if len(depths) >= 3 and all(c > 0 for c in cont):
            f = fit_power_law(depths, cont)
            entry["fit"] = {"exponent": f.exponent, "ci95": [f.ci_low, f.ci_high], "prefactor": f.prefactor}
        out["depths"] = entry
    if args.window is not None:
        f = theory_exponent(args.window[0], args.window[1], act, args.rho0)
        out["window"] = {"L_min": args.window[0], "L_max": args.window[1], "exponent": f.exponent,
                         "ci95": [f.ci_low, f.ci_high], "prefactor": f.prefactor}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"activation {out['activation']}, rho0 = {args.rho0:g}; definition: {out['definition']}")
    if "depth" in out:
        d = out["depth"]
        print(f"L = {d['L']}: l* = {d['l_star']} (crossing at {d['l_star_continuous']:.3f}; "
              f"asymptote (9 pi^2/(2 lam^2))^(1/5) L^(3/5) = {d['asymptote']:.3f})")
    if "depths" in out:
        print(f"{'L':>8} {'l*':>8} {'crossing':>12}")
        for r in out["depths"]["rows"]:
            print(f"{r['L']:>8} {r['l_star']:>8} {r['l_star_continuous']:>12.3f}")
        if "fit" in out["depths"]:
            f = out["depths"]["fit"]
            print(f"log-log fit of the crossing: exponent {f['exponent']:.4f}, 95% CI [{f['ci95'][0]:.4f}, "
                  f"{f['ci95'][1]:.4f}], prefactor {f['prefactor']:.4g}")
    if "window" in out:
        w = out["window"]
        print(f"exponent over L = {w['L_min']}..{w['L_max']}: {w['exponent']:.4f}, 95% CI [{w['ci95'][0]:.4f}, "
              f"{w['ci95'][1]:.4f}] (asymptote 0.6)")
    return 0
