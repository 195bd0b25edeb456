"""``sigprop correlators``: Wick factors, exact deep-linear and ReLU moments, the 1/n vertex recursion.

    sigprop correlators wick --m 3 [--show-contractions]
    sigprop correlators deep-linear --m 2 --widths 8,8,8,8 [--C-W 1] [--G0 1]
    sigprop correlators relu --m 2 --widths 8,8,8,8 [--C-W 2] [--G0 1]
    sigprop correlators vertex --activation tanh --widths 64x10 --C-W 1 [--C-b 0] [--K0 1]
    sigprop correlators multi --activation relu --widths 32x5 --C-W 2 --G0 1,0.3,0.8
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from sigprop.theory.correlators.deep_linear import MAX_CLI_M, MAX_LAYERS
from sigprop.theory.correlators.relu_exact import RELU_MAX_M
from sigprop.theory.correlators.wick import MAX_M, double_factorial_count
from sigprop.theory.errors import InputError

from .args import RenamedFlag, activation_from_args, add_activation_arguments

__all__ = ["add_arguments", "run", "parse_widths"]


def parse_widths(text: str) -> list[int]:
    """Hidden-layer widths from ``'8,8,16'`` or ``'32x5'`` (five layers of width 32) or a mix ``'8x2,16'``.

    Parameters
    ----------
    text : str
        Comma-separated fields, each ``W`` or ``WxK`` with integers ``W >= 1`` and ``K >= 1``; no empty field.

    Returns
    -------
    list of int
        One width per layer.

    Raises
    ------
    ValueError
        A field that is empty, not an integer, or < 1, named with the whole text (``--widths``); or more than
        ``MAX_LAYERS`` layers in all (counted before the list is built).

    Examples
    --------
    >>> parse_widths("8x2,16")
    [8, 8, 16]
    >>> parse_widths("8x100000000")
    Traceback (most recent call last):
    ...
    sigprop.theory.errors.InputError: --widths: 100000000 layers, at most 10000 are allowed, got '8x100000000'
    """
    usage = "expected comma-separated widths >= 1 like '8,8,16', '32x5' or '8x2,16'"
    fields: list[tuple[int, int]] = []
    for k, raw in enumerate(text.split(",")):
        part = raw.strip()
        if not part:
            raise InputError(f"--widths: field {k + 1} is empty in {text!r}; {usage}")
        try:
            if "x" in part:
                w_text, k_text = part.split("x")
                w, rep = int(w_text), int(k_text)
            else:
                w, rep = int(part), 1
        except ValueError:
            raise InputError(f"--widths: field {part!r} is not W or WxK with integers W, K; {usage}, "
                             f"got {text!r}") from None
        if w < 1 or rep < 1:
            raise InputError(f"--widths: field {part!r} needs width >= 1 and repeat count >= 1; {usage}, got {text!r}")
        fields.append((w, rep))
    count = sum(rep for _, rep in fields)
    if count > MAX_LAYERS:
        raise InputError(f"--widths: {count} layers, at most {MAX_LAYERS} are allowed, got {text!r}")
    return [w for w, rep in fields for _ in range(rep)]


def _coupling_flags(p: argparse.ArgumentParser, cw_default: float | None, with_cb: bool) -> None:
    """``--C-W`` (and ``--C-b``), with the old spellings ``--C_W``/``--C_b`` rejected with a pointer."""
    if cw_default is None:
        p.add_argument("--C-W", dest="C_W", type=float, required=True, metavar="C_W",
                       help="weight variance times fan-in (> 0)")
    else:
        p.add_argument("--C-W", dest="C_W", type=float, default=cw_default, metavar="C_W",
                       help=f"weight variance times fan-in (> 0, default {cw_default:g})")
    p.add_argument("--C_W", action=RenamedFlag, new="--C-W")
    if with_cb:
        p.add_argument("--C-b", dest="C_b", type=float, default=0.0, metavar="C_b",
                       help="bias variance (>= 0, default 0)")
        p.add_argument("--C_b", action=RenamedFlag, new="--C-b")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = sub.add_parser("wick", help="derive c_2m(n) by Wick contraction; closed form and expansions")
    p.add_argument("--m", type=int, default=2,
                   help=f"half the order, 1 <= m <= {MAX_M}: 2 -> four-point (default 2); the derivation contracts "
                        f"(2m-1)!! pairings: m <= 6 takes seconds, m = {MAX_M} about 15 s, larger m is refused")
    p.add_argument("--show-contractions", action="store_true",
                   help="list every contraction ((2m-1)!! lines: 945 for m = 5)")
    for name, help_, cw in (("deep-linear", "exact G_2m per layer of a deep linear network", 1.0),
                            ("relu", "exact G_2m = E z^2m/(2m-1)!! per layer of a ReLU network", 2.0)):
        p = sub.add_parser(name, help=help_)
        top = MAX_CLI_M if name == "deep-linear" else RELU_MAX_M
        p.add_argument("--m", type=int, default=2, help=f"half the order, 1 <= m <= {top} (default 2)")
        p.add_argument("--widths", required=True,
                       help=f"hidden widths, e.g. 8,8,8 or 8x3 (at most {MAX_LAYERS} layers; the values must stay "
                            "in the float64 range, else the largest allowed depth is named)")
        _coupling_flags(p, cw, with_cb=False)
        p.add_argument("--G0", type=float, default=1.0, help="|x|^2/n_0")
    p = sub.add_parser("vertex", help="leading-order K and kappa_4 = V/n recursion, one input")
    add_activation_arguments(p, default=None)
    p.add_argument("--widths", required=True, help="hidden widths, e.g. 64,64 or 64x10")
    _coupling_flags(p, None, with_cb=True)
    p.add_argument("--K0", type=float, default=1.0, help="G0 = |x|^2/n_0 (K^(1) = C_b + C_W K0)")
    p = sub.add_parser("multi", help="leading-order V_(ab)(cd) for two inputs")
    add_activation_arguments(p, default=None)
    p.add_argument("--widths", required=True, help="hidden widths, e.g. 32,32 or 32x5")
    _coupling_flags(p, None, with_cb=True)
    p.add_argument("--G0", default="1,0.5,1", help="G0_11,G0_12,G0_22 (default 1,0.5,1)")


def _wick(args) -> None:
    import sympy as sp

    from sigprop.theory.correlators import wick

    if args.m < 1:
        raise InputError(f"--m must be in 1..{MAX_M}, got {args.m}")
    if args.m > MAX_M:  # refused before any work: m = 8 ran for minutes and past 2.9 GB
        raise InputError(f"--m must be in 1..{MAX_M}, got {args.m}: the derivation contracts (2m-1)!! = "
                         f"{double_factorial_count(args.m)} Wick pairings ({double_factorial_count(MAX_M)} for "
                         f"m = {MAX_M}, about 15 s); c_2m(n) = prod_(j<m) (1 + 2j/n) for larger m")
    m = args.m
    rec = wick.derive_layer_recursion(m)
    print(f"E[W_i1j1 ... W_i{2*m}j{2*m}] = (C_W/n)^{m} x sum over {rec.n_pairings} Wick pairings of delta_i delta_j")
    count = wick.double_factorial_count(m)
    print(f"layer-l ansatz: E[z_j1 ... z_j{2*m}] = (sum over {count} pairings of delta_j) G_{2*m}")
    if args.show_contractions:
        i = [f"i{k + 1}" for k in range(2 * m)]  # plain labels: contract() is generic, and strings hash fast
        j = [f"j{k + 1}" for k in range(2 * m)]
        ref = next(wick.pairings(range(2 * m)))
        w_deltas = tuple(d for a, b in ref for d in ((i[a], i[b]), (j[a], j[b])))
        print(f"coefficient of delta_i structure {' '.join(f'd(i{a+1},i{b+1})' for a, b in ref)}:")
        for lower in wick.pairings(range(2 * m)):
            dl = tuple((j[a], j[b]) for a, b in lower)
            factor, _ = wick.contract(w_deltas + dl, j)
            print(f"  x {' '.join(f'd(j{a+1},j{b+1})' for a, b in lower)}  --sum_j-->  {factor}")
    print(f"c_{2*m}(n) = n^-{m} x (sum) = {rec.factor} = {sp.factor(rec.factor)}")
    print(f"G_{2*m}^(l+1) = C_W^{m} c_{2*m}(n_l) G_{2*m}^(l)")
    print(f"closed form (equal widths): G_{2*m}^(L) = {wick.closed_form(m)}   [G2 = G_2^(L)]")
    print(f"1/n expansion: G_{2*m}/G_2^{m} = {wick.inverse_width_series(m, order=3)} + O(1/n^3)")
    print(f"L, n -> inf at t = L/n: G_{2*m}/G_2^{m} -> {wick.depth_to_width_limit(m)}")


def _table(header: list[str], rows: list[list]) -> None:
    print("  ".join(f"{h:>14}" for h in header))
    for r in rows:
        print("  ".join(f"{v:>14.8g}" if isinstance(v, float) else f"{v:>14}" for v in r))


def _moment_ratio(g: float, g2: float, m: int) -> float:
    """``g / g2^m``; through logarithms where ``g2^m`` alone would leave the normal float64 range."""
    with np.errstate(over="ignore", under="ignore"):
        den = np.float64(g2) ** m
    if np.isfinite(den) and den >= np.finfo(float).tiny:
        return float(g / den)
    return math.exp(math.log(g) - m * math.log(g2))


def run(args) -> int:
    np.set_printoptions(precision=10)
    if args.what == "wick":
        _wick(args)
        return 0
    widths = parse_widths(args.widths)
    if args.what in ("deep-linear", "relu"):
        from sigprop.theory.correlators.deep_linear import deep_linear_moments
        from sigprop.theory.correlators.relu_exact import relu_moments

        fn = deep_linear_moments if args.what == "deep-linear" else relu_moments
        top = MAX_CLI_M if args.what == "deep-linear" else RELU_MAX_M
        if not 1 <= args.m <= top:
            raise InputError(f"--m must be in [1, {top}], got {args.m}")
        g2 = fn(1, widths, args.C_W, args.G0)
        g = fn(args.m, widths, args.C_W, args.G0)
        print(f"{args.what}: C_W={args.C_W:g}, G0={args.G0:g}, widths={widths}; G_2m = E[z^2m]/(2m-1)!!")
        _table(["layer", "width", "G_2", f"G_{2*args.m}", f"G_{2*args.m}/G_2^{args.m}"],
               [[l + 1, widths[l], float(g2[l]), float(g[l]), _moment_ratio(float(g[l]), float(g2[l]), args.m)]
                for l in range(len(widths))])
        return 0
    if args.what == "vertex":
        from sigprop.theory.correlators.vertex import vertex_recursion

        r = vertex_recursion(activation_from_args(args), widths, args.C_W, args.C_b, args.K0)
        print(f"vertex recursion: {r.activation}, C_W={args.C_W:g}, C_b={args.C_b:g}, K0={args.K0:g}; "
              "kappa4 = (E z^4 - 3 (E z^2)^2)/3 at O(1/n), V = n_(l-1) kappa4")
        _table(["layer", "K", "chi_par", "kappa4", "V", "V/K^2", "dK"],
               [[l + 1, float(r.K[l]), float(r.chi_par[l]), float(r.kappa4[l]), float(r.V[l]),
                 float(r.V[l] / r.K[l] ** 2), float(r.dK[l])] for l in range(len(widths))])
        return 0
    if args.what == "multi":
        from sigprop.theory.correlators.multi_input import multi_input_vertex_recursion

        try:
            g11, g12, g22 = (float(v) for v in args.G0.split(","))
        except ValueError:
            raise InputError(f"--G0: expected three numbers G0_11,G0_12,G0_22, got {args.G0!r}") from None
        G0 = np.array([[g11, g12], [g12, g22]])
        r = multi_input_vertex_recursion(activation_from_args(args), widths, args.C_W, args.C_b, G0)
        names = [f"({a+1}{b+1})" for a, b in r.pairs]
        for l in range(len(widths)):
            print(f"layer {l + 1}: K = {r.K[l].tolist()}")
            for p, name in enumerate(names):
                print(f"   V_{name}(..) = " + "  ".join(f"{names[q]}:{r.V[l, p, q]:.8g}" for q in range(len(names))))
        return 0
    raise InputError(f"unknown correlators subcommand {args.what!r}")
