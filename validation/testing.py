"""Test helpers for users of sigprop: Hypothesis strategies and statistical assertions.

Two halves, in the spirit of :mod:`numpy.testing`:

* **Statistical assertions** (NumPy only): :func:`assert_z_within` checks a Monte-Carlo estimate against a
  theory value by its z-score ``(estimate - expected) / SE``, the SE taken from independent replicates (one per
  random network); :func:`assert_extrapolates_to` checks the ``n -> inf`` limit of estimates at several widths,
  the intercept of a weighted least-squares fit in ``1/n`` (:func:`sigprop.validation.stats.wls_extrapolate`).
  Both raise ``AssertionError`` with the estimate, its SE, z and the bound when the check fails, and
  :class:`~sigprop.theory.errors.InputError` for malformed arguments.
* **Hypothesis strategies** for property-based tests: :func:`activations` (built-in activations with valid
  parameters), :func:`correlations` (in [-1, 1]), :func:`gram_matrices` (symmetric positive (semi-)definite,
  with a bounded condition number), :func:`inputs` (``(P, n_0)`` input arrays) and :func:`network_configs`
  (keyword arguments that :func:`sigprop.kernels.simulate` accepts).

Hypothesis is in the ``test`` extra (``pip install 'sigprop[test]'``), not a dependency of sigprop: this module
imports it only when a strategy function is called, so the assertions work without it, and a strategy called
without it raises an ``ImportError`` that names the extra.

A z bound of 4 (the default) fails a correct theory with probability 6e-5 per check; a test file with many
checks can take the Sidak bound of its family, ``zmax=sigprop.validation.stats.z_bound(m)``.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from sigprop.kernels.simulate import METHODS, NORMS, WEIGHTS
from sigprop.theory.activations import ACTIVATION_NAMES, Activation, activation
from sigprop.theory.arguments import integer_in_range, positive_real, real_number
from sigprop.theory.errors import InputError, InputTypeError
from sigprop.validation.stats import WLSFit, mean_se, wls_extrapolate

if TYPE_CHECKING:  # pragma: no cover - types only
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "assert_z_within",
    "assert_extrapolates_to",
    "activations",
    "correlations",
    "gram_matrices",
    "inputs",
    "network_configs",
    "PARAMETER_RANGES",
    "HYPOTHESIS_MISSING",
]

HYPOTHESIS_MISSING = ("the strategies of sigprop.validation.testing need Hypothesis, which is in sigprop's test "
                      "extra: pip install 'sigprop[test]'")

# parameter ranges the strategies draw from (the activations accept wider ones; these keep kernels well-behaved)
PARAMETER_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "leaky_relu": {"slope": (-1.0, 1.0)},
    "elu": {"alpha": (0.05, 3.0)},
    "celu": {"alpha": (0.05, 3.0)},
}
# activations that grow faster than linearly: their kernels overflow within a few layers at C_W ~ 1
_FAST_GROWING = ("exp",)
_MAX_LISTED = 10  # failing entries listed in an assertion message


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------
def _interval(name: str, value: Any, low: float, high: float, *, closed_low: bool = True) -> tuple[float, float]:
    """A (lo, hi) pair with ``low <= lo <= hi <= high`` (``low < lo`` unless ``closed_low``)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InputTypeError(f"{name} must be a (low, high) pair, got {value!r}")
    lo, hi = real_number(f"{name}[0]", value[0]), real_number(f"{name}[1]", value[1])
    ok_low = lo >= low if closed_low else lo > low
    if not (ok_low and lo <= hi <= high):
        rel = "<=" if closed_low else "<"
        raise InputError(f"{name} must be a (low, high) pair with {low} {rel} low <= high <= {high}, got {value!r}")
    return lo, hi


def _float_array(name: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputTypeError(f"{name} must be a real number or array, got {type(value).__name__}") from None


# --------------------------------------------------------------------------------------------
# Statistical assertions
# --------------------------------------------------------------------------------------------
def _zscores(estimate: np.ndarray, expected: np.ndarray, se: np.ndarray) -> np.ndarray:
    """``(estimate - expected) / se``; a zero SE gives 0 for an exact match and +-inf otherwise; NaN stays NaN."""
    diff = estimate - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    return np.where(np.isfinite(estimate) & np.isfinite(se), z, np.nan)


def assert_z_within(samples_or_estimate, expected, *, se=None, zmax: float = 4.0, axis: int = 0,
                    err_msg: str = "") -> float | np.ndarray:
    """Assert that an estimate lies within ``zmax`` standard errors of ``expected``.

    Without ``se``, ``samples_or_estimate`` holds independent replicates along ``axis`` (one per random network,
    e.g. ``res.preact_gram[:, -1, 0, 1]``): the estimate is their mean and its SE ``s / sqrt(S)``
    (:func:`sigprop.validation.stats.mean_se`).  With ``se``, it is the estimate itself.  Every entry must
    satisfy ``|estimate - expected| <= zmax * SE``.

    Parameters
    ----------
    samples_or_estimate : array_like
        Replicates (at least 2 along ``axis``), or the estimate(s) when ``se`` is given.
    expected : float or array_like
        The theory value(s), finite, broadcastable against the estimate.
    se : float or array_like, optional
        Standard error(s) of the estimate, finite and >= 0, broadcastable against it.  A zero SE (replicates all
        equal) requires an exact match.
    zmax : float, optional
        The bound on ``|z|``, > 0; default 4 (a correct theory fails one check with probability 6e-5).  For ``m``
        checks at family level 0.99 use ``sigprop.validation.stats.z_bound(m)``.
    axis : int, optional
        The replicate axis of ``samples_or_estimate`` when ``se`` is None; default 0.
    err_msg : str, optional
        Printed first in the failure message.

    Returns
    -------
    float or numpy.ndarray
        The z-score(s) ``(estimate - expected) / SE``, of the estimate's shape.

    Raises
    ------
    AssertionError
        Some ``|z| > zmax``, or a non-finite estimate or SE (e.g. a simulation that overflowed); the message lists
        estimate, SE, expected and z of the failing entries and the bound.
    InputError
        Fewer than 2 replicates, a negative or non-finite ``se``, a non-finite ``expected``, shapes that do not
        broadcast, or a ``zmax`` that is not a positive finite number.

    Examples
    --------
    Four replicates with mean 1.0 and SE 0.05 agree with 1.1 (z = -2) but not with 1.3 (z = -6):

    >>> import numpy as np
    >>> samples = 1.0 + 0.05 * np.sqrt(3.0) * np.array([-1.0, -1.0, 1.0, 1.0])
    >>> z = assert_z_within(samples, 1.1)
    >>> round(z, 6)
    -2.0
    >>> assert_z_within(samples, 1.3)
    Traceback (most recent call last):
        ...
    AssertionError: Not within zmax = 4 standard errors of the expected value (4 replicates): 1 of 1 entries
     estimate 1, SE 0.05, expected 1.3, z = -6
    max |z| = 6 (bound 4)

    An estimate with a known SE, several entries at once:

    >>> z = assert_z_within([0.31, 0.52], [0.3, 0.5], se=[0.01, 0.01])
    >>> np.round(z, 6)
    array([1., 2.])
    """
    where = "assert_z_within"
    zmax = positive_real("zmax", zmax, where)
    if se is None:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise InputTypeError(f"{where}: axis must be an int, got {axis!r}")
        samples = _float_array(f"{where}: samples", samples_or_estimate)
        if samples.ndim == 0:
            raise InputError(f"{where}: without se, the first argument must hold replicates along axis {axis}, "
                             f"got a scalar (pass se= for a single estimate)")
        if not -samples.ndim <= axis < samples.ndim:
            raise InputError(f"{where}: axis {axis} is out of range for samples of shape {samples.shape}")
        with np.errstate(invalid="ignore", over="ignore"):
            est, err = mean_se(samples, axis=axis)
        est, err = np.asarray(est, dtype=float), np.asarray(err, dtype=float)
        replicates = samples.shape[axis]
    else:
        est = _float_array(f"{where}: estimate", samples_or_estimate)
        err = _float_array(f"{where}: se", se)
        if not np.all(np.isfinite(err) & (err >= 0)):
            raise InputError(f"{where}: se must be finite and >= 0, got {np.asarray(se).tolist()!r}")
        replicates = None
    exp = _float_array(f"{where}: expected", expected)
    if not np.all(np.isfinite(exp)):
        raise InputError(f"{where}: expected must be finite, got {exp.tolist()!r}")
    try:
        est_b, err_b, exp_b = np.broadcast_arrays(est, err, exp)
    except ValueError:
        raise InputError(f"{where}: estimate {est.shape}, se {err.shape} and expected {exp.shape} do not "
                         f"broadcast together") from None
    z = _zscores(est_b, exp_b, err_b)
    bad = ~(np.abs(z) <= zmax)  # NaN (non-finite estimate) fails
    if np.any(bad):
        _fail_z(est_b, err_b, exp_b, z, bad, zmax, replicates, err_msg)
    return float(z) if z.ndim == 0 else z


def _fail_z(est, err, exp, z, bad, zmax, replicates, err_msg) -> None:
    n_bad, n_all = int(bad.sum()), bad.size
    src = f" ({replicates} replicates)" if replicates is not None else ""
    lines = [f"Not within zmax = {zmax:g} standard errors of the expected value{src}: {n_bad} of {n_all} entries"]
    if err_msg:
        lines.append(err_msg)
    for k, idx in enumerate(tuple(int(i) for i in row) for row in np.argwhere(bad)):
        if k == _MAX_LISTED:
            lines.append(f" ... and {n_bad - _MAX_LISTED} more")
            break
        at = f" index {idx}:" if est.ndim else ""
        lines.append(f"{at} estimate {est[idx]:.6g}, SE {err[idx]:.6g}, expected {exp[idx]:.6g}, z = {z[idx]:.4g}")
    not_nan = np.abs(z[~np.isnan(z)])
    worst = f"{not_nan.max():.4g}" if not_nan.size else "nan"
    lines.append(f"max |z| = {worst} (bound {zmax:g})")
    raise AssertionError("\n".join(lines))


def assert_extrapolates_to(widths, estimates, ses, expected: float, *, order: int = 1, zmax: float = 4.0,
                           birge: bool = True, err_msg: str = "") -> WLSFit:
    """Assert that estimates at several widths extrapolate to ``expected`` as ``n -> inf``.

    Fits ``estimate(n) = beta_0 + beta_1 / n (+ beta_2 / n^2)`` by weighted least squares with weights
    ``1/se^2`` (:func:`sigprop.validation.stats.wls_extrapolate`, with the Birge factor: a fit inconsistent with
    its errors widens the intercept's SE) and requires ``|beta_0 - expected| <= zmax * SE(beta_0)``.  The
    estimates at different widths must be independent (different networks, e.g. different seeds).

    Parameters
    ----------
    widths : sequence of float
        The widths ``n``, positive, at least ``order + 1`` distinct.
    estimates, ses : sequence of float
        One estimate and its standard error (> 0, finite) per width.
    expected : float
        The ``n -> inf`` limit the theory predicts.
    order : int, optional
        1 (``1/n``, default) or 2 (also ``1/n^2``).
    zmax : float, optional
        The bound on ``|z|`` of the intercept, > 0; default 4.
    birge : bool, optional
        Scale the covariance by ``max(1, chi2/dof)``; default True.
    err_msg : str, optional
        Printed first in the failure message.

    Returns
    -------
    WLSFit
        The fit (``intercept``, ``intercept_se``, ``beta``, ``chi2``, ``dof``, ``scale``).

    Raises
    ------
    AssertionError
        The intercept is more than ``zmax`` SEs from ``expected``, or an estimate is not finite; the message gives
        intercept, SE, z, the bound, the fitted slope, chi2/dof and the data.
    InputError
        Malformed widths/estimates/ses (see :func:`~sigprop.validation.stats.wls_extrapolate`), a non-finite
        ``expected`` or a ``zmax`` that is not a positive finite number.

    Examples
    --------
    Estimates ``1 + 3/n`` at four widths extrapolate to 1, not to 1.01:

    >>> import numpy as np
    >>> n = np.array([64.0, 128.0, 256.0, 512.0])
    >>> y = 1.0 + 3.0 / n + np.array([1e-4, -1e-4, 1e-4, -1e-4])
    >>> fit = assert_extrapolates_to(n, y, np.full(4, 1e-4), 1.0)
    >>> round(fit.slope, 2)
    3.01
    >>> assert_extrapolates_to(n, y, np.full(4, 1e-4), 1.01)
    Traceback (most recent call last):
        ...
    AssertionError: Extrapolation n -> inf (order 1) not within zmax = 4 standard errors of 1.01
     intercept 0.999935, SE 0.000107559, z = -93.58
    ...
    """
    where = "assert_extrapolates_to"
    zmax = positive_real("zmax", zmax, where)
    target = real_number(f"{where}: expected", expected)
    if not isinstance(birge, (bool, np.bool_)):
        raise InputTypeError(f"{where}: birge must be a bool, got {birge!r}")
    y = _float_array(f"{where}: estimates", estimates)
    if y.ndim == 1 and not np.all(np.isfinite(y)):
        lines = [f"Not all estimates are finite: {y.tolist()}"] + ([err_msg] if err_msg else [])
        raise AssertionError("\n".join(lines))
    fit = wls_extrapolate(widths, y, ses, order=order, birge=bool(birge))
    z = (fit.intercept - target) / fit.intercept_se
    if not abs(z) <= zmax:
        n = np.asarray(widths, dtype=float)
        s = np.asarray(ses, dtype=float)
        data = "\n".join(f"  n = {ni:g}: {yi:.6g} +- {si:.3g}" for ni, yi, si in zip(n, y, s))
        chi2 = f"{fit.chi2:.3g}/{fit.dof}" if fit.dof > 0 else f"{fit.chi2:.3g}/0"
        raise AssertionError("\n".join([
            f"Extrapolation n -> inf (order {order}) not within zmax = {zmax:g} standard errors of {target:g}",
            *([err_msg] if err_msg else []),
            f" intercept {fit.intercept:.6g}, SE {fit.intercept_se:.6g}, z = {z:.4g}",
            f" slope {fit.slope:.6g}, chi2/dof {chi2}, Birge scale {fit.scale:.3g}",
            " data:", data]))
    return fit


# --------------------------------------------------------------------------------------------
# Hypothesis strategies (Hypothesis imported when one is called)
# --------------------------------------------------------------------------------------------
def _st():
    """``hypothesis.strategies``, or an ImportError that names the ``test`` extra."""
    try:
        from hypothesis import strategies
    except ImportError as exc:
        raise ImportError(HYPOTHESIS_MISSING) from exc
    return strategies


def _kinds(kinds: Sequence[str] | None, where: str, default: Sequence[str]) -> list[str]:
    if kinds is None:
        return list(default)
    if isinstance(kinds, str):
        kinds = [kinds]
    names = list(kinds)
    if not names:
        raise InputError(f"{where}: kinds must name at least one activation")
    unknown = [k for k in names if not isinstance(k, str) or k not in ACTIVATION_NAMES]
    if unknown:
        raise InputError(f"{where}: unknown activation name(s) {unknown}; known: {', '.join(ACTIVATION_NAMES)}")
    return names


def activations(kinds: Sequence[str] | None = None, *, params: bool = True) -> SearchStrategy[Activation]:
    """Strategy for built-in activations (:class:`~sigprop.theory.activations.Activation` objects).

    Parameters
    ----------
    kinds : sequence of str, optional
        The names to draw from (:data:`~sigprop.theory.activations.ACTIVATION_NAMES`, the default: all 18).
    params : bool, optional
        Draw the parameters of leaky_relu (slope in [-1, 1]), elu and celu (alpha in [0.05, 3]) from
        :data:`PARAMETER_RANGES` (default); with False they keep their defaults.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Activations that :func:`~sigprop.kernels.simulate`, :class:`~sigprop.theory.KernelMap` and
        :func:`~sigprop.theory.meanfield.kernel_recursion` accept.  Shrinks towards the first name of ``kinds``.

    Raises
    ------
    ImportError
        Hypothesis is not installed (``pip install 'sigprop[test]'``).
    InputError
        An unknown name in ``kinds``, or an empty ``kinds``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from sigprop.theory import KernelMap
    >>> @settings(max_examples=10, derandomize=True, database=None, deadline=None)
    ... @given(activations(["relu", "leaky_relu", "tanh"]))
    ... def test_kappa_of_one_is_one(act):
    ...     assert abs(KernelMap(act)(1.0) - 1.0) < 1e-12
    >>> test_kappa_of_one_is_one()
    """
    st = _st()
    names = _kinds(kinds, "activations", ACTIVATION_NAMES)
    if not isinstance(params, (bool, np.bool_)):
        raise InputTypeError(f"activations: params must be a bool, got {params!r}")

    def build(name: str):
        ranges = PARAMETER_RANGES.get(name, {}) if params else {}
        draws = {p: st.floats(lo, hi, allow_nan=False, allow_infinity=False) for p, (lo, hi) in ranges.items()}
        return st.builds(activation, st.just(name), **draws)

    return st.sampled_from(names).flatmap(build)


_activation_strategy = activations  # network_configs has an argument of that name


def correlations(min_value: float = -1.0, max_value: float = 1.0) -> SearchStrategy[float]:
    """Strategy for correlations ``rho`` in ``[min_value, max_value]``, a sub-interval of [-1, 1].

    The end points are among the values tried (Hypothesis tries the bounds of a float range).

    Parameters
    ----------
    min_value, max_value : float, optional
        The interval, ``-1 <= min_value <= max_value <= 1``; default [-1, 1].

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Finite floats, no NaN.

    Raises
    ------
    ImportError
        Hypothesis is not installed (``pip install 'sigprop[test]'``).
    InputError
        A bound outside [-1, 1], or ``min_value > max_value``.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> from sigprop.theory import KernelMap
    >>> relu = KernelMap("relu")
    >>> @settings(max_examples=20, derandomize=True, database=None)
    ... @given(correlations())
    ... def test_kappa_is_a_correlation(rho):
    ...     assert -1.0 - 1e-12 <= relu(rho) <= 1.0 + 1e-12
    >>> test_kappa_is_a_correlation()
    """
    st = _st()
    lo, hi = _interval("correlations: (min_value, max_value)", (min_value, max_value), -1.0, 1.0)
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _seeded(st):
    """A NumPy Generator from a Hypothesis-drawn seed (so that derandomised runs are reproducible)."""
    return st.integers(0, 2**32 - 1).map(np.random.default_rng)


def gram_matrices(P: int, *, mean_variance: tuple[float, float] = (0.1, 10.0), max_condition: float = 1e4,
                  min_rank: int | None = None) -> SearchStrategy[np.ndarray]:
    """Strategy for symmetric positive (semi-)definite ``(P, P)`` Gram matrices with a bounded condition number.

    ``G = Q diag(lam) Q^T`` with ``Q`` a random orthogonal matrix and eigenvalues ``lam`` log-spread over a
    drawn condition number ``c`` in ``[1, max_condition]`` (the largest and smallest are ``c`` apart), scaled so
    that the mean diagonal entry (``trace / P``) is a drawn value in ``mean_variance``.  With ``min_rank < P``,
    ``P - r`` of the eigenvalues are exactly 0 for a drawn rank ``r >= min_rank`` (a singular matrix, PSD to
    rounding), and the condition number bounds the nonzero ones.

    Parameters
    ----------
    P : int
        Number of inputs, >= 1.
    mean_variance : (float, float), optional
        Range of ``trace(G) / P``, ``0 < low <= high``; default (0.1, 10).
    max_condition : float, optional
        Bound on the ratio of the largest to the smallest (nonzero) eigenvalue, >= 1; default 1e4.
    min_rank : int, optional
        Smallest rank drawn, ``1 <= min_rank <= P``; default ``P`` (positive definite).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Float64 arrays of shape ``(P, P)``, exactly symmetric, accepted by
        :func:`~sigprop.theory.meanfield.kernel_recursion` as ``G0``.

    Raises
    ------
    ImportError
        Hypothesis is not installed (``pip install 'sigprop[test]'``).
    InputError
        ``P < 1``, an empty or non-positive ``mean_variance``, ``max_condition < 1`` or ``min_rank`` out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from sigprop.theory import kernel_recursion
    >>> @settings(max_examples=10, derandomize=True, database=None, deadline=None)
    ... @given(gram_matrices(3, max_condition=100.0))
    ... def test_relu_critical_keeps_the_diagonal(G0):
    ...     lam = np.linalg.eigvalsh(G0)
    ...     assert lam.min() > 0 and lam.max() / lam.min() <= 100.0 * (1 + 1e-9)
    ...     K = kernel_recursion("relu", G0, depth=3, C_W=2.0)
    ...     np.testing.assert_allclose(np.diag(K[-1]), 2.0 * np.diag(G0), rtol=1e-12)
    >>> test_relu_critical_keeps_the_diagonal()
    """
    st = _st()
    P = integer_in_range("P", P, 1, who="gram_matrices")
    v_lo, v_hi = _interval("gram_matrices: mean_variance", mean_variance, 0.0, math.inf, closed_low=False)
    cmax = real_number("gram_matrices: max_condition", max_condition)
    if cmax < 1.0:
        raise InputError(f"gram_matrices: max_condition must be >= 1, got {max_condition!r}")
    rmin = P if min_rank is None else integer_in_range("min_rank", min_rank, 1, who="gram_matrices")
    if rmin > P:
        raise InputError(f"gram_matrices: min_rank must be <= P = {P}, got {min_rank!r}")

    @st.composite
    def draw_gram(draw):
        rank = draw(st.integers(rmin, P))
        cond = draw(st.floats(1.0, cmax, allow_nan=False, allow_infinity=False))
        mean_var = draw(st.floats(v_lo, v_hi, allow_nan=False, allow_infinity=False))
        rng = draw(_seeded(st))
        q, r = np.linalg.qr(rng.standard_normal((P, P)))
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # Haar-distributed orthogonal matrix
        u = rng.uniform(0.0, 1.0, rank)
        u[0] = 0.0
        if rank > 1:
            u[1] = 1.0  # the extremes are exactly cond apart
        lam = np.zeros(P)
        lam[:rank] = cond ** (-u)
        G = (q * lam) @ q.T
        G = 0.5 * (G + G.T)
        return G * (mean_var / (np.trace(G) / P))

    return draw_gram()


def inputs(P: int, n0: int, *, mean_square: tuple[float, float] = (0.1, 10.0)) -> SearchStrategy[np.ndarray]:
    """Strategy for input arrays ``X`` of shape ``(P, n0)``: Gaussian directions, drawn norms.

    Each row ``x_a`` is a Gaussian vector rescaled so that ``|x_a|^2 / n0`` (the diagonal of ``G0 = X X^T / n0``,
    docs/conventions.md) is a drawn value in ``mean_square``; no row is zero.  With ``P > n0`` the Gram matrix is
    singular, as it is for real data with more inputs than dimensions.

    Parameters
    ----------
    P, n0 : int
        Number of inputs and input dimension, both >= 1.
    mean_square : (float, float), optional
        Range of ``|x_a|^2 / n0``, ``0 < low <= high``; default (0.1, 10).

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Finite float64 arrays of shape ``(P, n0)``, accepted by :func:`~sigprop.kernels.simulate`.

    Raises
    ------
    ImportError
        Hypothesis is not installed (``pip install 'sigprop[test]'``).
    InputError
        ``P`` or ``n0`` < 1, or an empty or non-positive ``mean_square``.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=10, derandomize=True, database=None)
    ... @given(inputs(2, 5, mean_square=(1.0, 2.0)))
    ... def test_row_norms(X):
    ...     q = (X**2).sum(axis=1) / 5
    ...     assert X.shape == (2, 5) and np.all((q >= 1.0 - 1e-12) & (q <= 2.0 + 1e-12))
    >>> test_row_norms()
    """
    st = _st()
    P = integer_in_range("P", P, 1, who="inputs")
    n0 = integer_in_range("n0", n0, 1, who="inputs")
    q_lo, q_hi = _interval("inputs: mean_square", mean_square, 0.0, math.inf, closed_low=False)

    @st.composite
    def draw_inputs(draw):
        q = np.array([draw(st.floats(q_lo, q_hi, allow_nan=False, allow_infinity=False)) for _ in range(P)])
        rng = draw(_seeded(st))
        X = rng.standard_normal((P, n0))
        norms = np.sqrt((X**2).sum(axis=1))
        X[norms == 0.0] = 1.0  # probability 0, kept for safety
        norms = np.sqrt((X**2).sum(axis=1))
        return X * (np.sqrt(q * n0) / norms)[:, None]

    return draw_inputs()


def network_configs(*, activations: SearchStrategy | Sequence[str] | None = None, depth: tuple[int, int] = (1, 3),
                    width: tuple[int, int] = (2, 8), C_W: tuple[float, float] = (0.5, 2.5),
                    C_b: tuple[float, float] = (0.0, 0.5), methods: Sequence[str] = ("gram", "explicit"),
                    variants: bool = True, backward: bool = False) -> SearchStrategy[dict]:
    """Strategy for network configurations: keyword arguments of :func:`~sigprop.kernels.simulate`.

    Each example is a dict with ``depth``, ``width`` (a tuple, one width per hidden layer), ``activation``,
    ``C_W``, ``C_b``, ``method``, ``weights``, ``residual``, ``norm`` and ``backward``, a combination that
    ``simulate`` accepts: Gaussian weights with ``method='gram'``, any weights otherwise; LayerNorm only with
    every width >= 2; ``backward=True`` only with ``residual=0``, ``norm=None`` and method explicit or numpy.
    Call ``simulate(X, **config, n_networks=S, seed=seed)``.

    Parameters
    ----------
    activations : strategy or sequence of str, optional
        A strategy of activations (e.g. :func:`activations`) or names to draw from; default every built-in but
        ``exp`` (whose kernel overflows within a few layers), with drawn parameters.
    depth, width : (int, int), optional
        Ranges of the number of hidden layers (>= 1; default 1 to 3) and of each width (>= 1; default 2 to 8).
    C_W, C_b : (float, float), optional
        Ranges of the weight variance (> 0; default 0.5 to 2.5) and bias variance (>= 0; default 0 to 0.5).
    methods : sequence of str, optional
        Methods drawn from, among 'gram', 'explicit', 'numpy'; default ('gram', 'explicit').
    variants : bool, optional
        Also draw residual weights (0 or in [0, 0.9]) and normalisations (rms/ln, pre/post); default True.  With
        False every config has ``residual=0.0`` and ``norm=None``.
    backward : bool, optional
        Configurations for ``backward=True`` (default False): no residual, no norm, method explicit or numpy.

    Returns
    -------
    hypothesis.strategies.SearchStrategy
        Dicts of keyword arguments for ``simulate``.

    Raises
    ------
    ImportError
        Hypothesis is not installed (``pip install 'sigprop[test]'``).
    InputError
        Empty or out-of-range ranges, unknown methods or activation names, or ``backward=True`` with only the
        'gram' method.

    Examples
    --------
    >>> import numpy as np
    >>> from hypothesis import given, settings
    >>> from sigprop.kernels import simulate
    >>> @settings(max_examples=5, derandomize=True, database=None, deadline=None)
    ... @given(inputs(2, 3), network_configs(activations=["relu", "tanh"], methods=["gram"]))
    ... def test_gram_matrices_are_symmetric(X, config):
    ...     res = simulate(X, **config, n_networks=2, seed=0)
    ...     assert res.preact_gram.shape == (2, config["depth"], 2, 2)
    ...     np.testing.assert_array_equal(res.preact_gram, res.preact_gram.transpose(0, 1, 3, 2))
    >>> test_gram_matrices_are_symmetric()
    """
    st = _st()
    where = "network_configs"
    if activations is None:
        act_st = _activation_strategy([k for k in ACTIVATION_NAMES if k not in _FAST_GROWING])
    elif isinstance(activations, st.SearchStrategy):
        act_st = activations
    elif isinstance(activations, (str, Sequence)):
        act_st = _activation_strategy(_kinds(activations, where, ACTIVATION_NAMES))
    else:
        raise InputTypeError(f"{where}: activations must be a strategy or a sequence of names, got {activations!r}")
    d_lo, d_hi = (integer_in_range(f"depth[{i}]", v, 1, who=where)
                  for i, v in enumerate(_pair(depth, f"{where}: depth")))
    w_lo, w_hi = (integer_in_range(f"width[{i}]", v, 1, who=where)
                  for i, v in enumerate(_pair(width, f"{where}: width")))
    if d_lo > d_hi or w_lo > w_hi:
        raise InputError(f"{where}: depth and width must be (low, high) with low <= high, got {depth!r}, {width!r}")
    cw_lo, cw_hi = _interval(f"{where}: C_W", C_W, 0.0, math.inf, closed_low=False)
    cb_lo, cb_hi = _interval(f"{where}: C_b", C_b, 0.0, math.inf)
    if isinstance(methods, str):
        methods = [methods]
    meths = list(methods)
    if not meths or any(m not in METHODS for m in meths):
        raise InputError(f"{where}: methods must be a non-empty selection of {METHODS}, got {methods!r}")
    for name, flag in (("variants", variants), ("backward", backward)):
        if not isinstance(flag, (bool, np.bool_)):
            raise InputTypeError(f"{where}: {name} must be a bool, got {flag!r}")
    if backward:
        meths = [m for m in meths if m != "gram"]
        if not meths:
            raise InputError(f"{where}: backward=True needs method 'explicit' or 'numpy' in methods")
    floats = st.floats

    @st.composite
    def draw_config(draw):
        L = draw(st.integers(d_lo, d_hi))
        widths = tuple(draw(st.lists(st.integers(w_lo, w_hi), min_size=L, max_size=L)))
        method = draw(st.sampled_from(meths))
        weights = "gaussian" if method == "gram" else draw(st.sampled_from(WEIGHTS))
        residual, norm = 0.0, None
        if variants and not backward:
            residual = draw(st.just(0.0) | floats(0.0, 0.9, allow_nan=False))
            norms = [n for n in NORMS if min(widths) >= 2 or n not in ("ln_pre", "ln_post")]
            norm = draw(st.sampled_from(norms))
        return dict(depth=L, width=widths, activation=draw(act_st),
                    C_W=draw(floats(cw_lo, cw_hi, allow_nan=False)), C_b=draw(floats(cb_lo, cb_hi, allow_nan=False)),
                    method=method, weights=weights, residual=residual, norm=norm, backward=bool(backward))

    return draw_config()


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InputTypeError(f"{name} must be a (low, high) pair, got {value!r}")
    return value[0], value[1]
