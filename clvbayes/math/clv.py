"""Discounting arithmetic for customer lifetime value.

An *annual effective* discount rate ``d`` (e.g. 0.10 for 10 % a year) is converted to a
*continuous* rate per model time unit,

.. math::

    \\delta = \\ln(1 + d) \\cdot \\frac{\\text{days per unit}}{365.2425},

so that a cash flow at time ``t`` (in model units) is worth ``exp(-δ t)`` today and one
year later exactly ``1/(1+d)``. 365.2425 is the mean Gregorian year. Time units are
given as a number of days or a code or name of :mod:`clvbayes.math.units`. A continuous
rate per time unit, or an effective rate per time unit, can be given instead
(:func:`resolve_discount`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from clvbayes.math.units import DAYS_PER_YEAR, days_per_unit

__all__ = [
    "DAYS_PER_YEAR",
    "continuous_rate",
    "days_per_unit",
    "discount_factor",
    "discounted_expectation",
    "discounted_residual",
    "discounted_sum",
    "resolve_discount",
]


def continuous_rate(annual_rate: Any, time_unit: str | float = "week") -> Any:
    """Continuous discount rate per time unit from an annual effective rate.

    Parameters
    ----------
    annual_rate : float or array_like
        Annual effective rate ``d > -1`` (0.1 = 10 % a year; 0 = no discounting).
    time_unit : str or float
        The model's time unit: a code or name of :mod:`clvbayes.math.units` (``"W"``,
        ``"week"``, ...) or a number of days.

    Returns
    -------
    float or ndarray
        ``δ = log1p(d) · days_per_unit / 365.2425``.

    Examples
    --------
    >>> round(float(continuous_rate(0.1, "year")), 12) == round(float(np.log(1.1)), 12)
    True
    """
    d = np.asarray(annual_rate, dtype=float)
    if np.any(d <= -1):
        raise ValueError("annual_rate must be greater than -1")
    return np.log1p(d) * (days_per_unit(time_unit) / DAYS_PER_YEAR)


def resolve_discount(
    time_unit: str | float = "week",
    *,
    annual: float = 0.0,
    continuous: float | None = None,
    per_period: float | None = None,
) -> float:
    """The continuous discount rate ``δ`` per model time unit, from one of three conventions.

    Parameters
    ----------
    time_unit : str or float
        The model's time unit (see :func:`days_per_unit`).
    annual : float
        Annual *effective* rate ``d`` (0.1 = 10 % a year): ``δ = ln(1+d) · days/365.2425``.
    continuous : float, optional
        Continuous-time rate per model time unit: ``δ`` itself (a cash flow at ``t`` is
        worth ``exp(-δ t)``).
    per_period : float, optional
        Effective rate per model time unit ``d_u`` (0.01 = 1 % a week for weekly data):
        ``δ = ln(1 + d_u)``, so one unit later a cash flow is worth ``1/(1+d_u)``.
        pymc-marketing's ``discount_rate`` is this rate per month, applied in discrete
        monthly steps; here discounting is continuous, so the two agree at whole months.

    Returns
    -------
    float
        ``δ`` (0 without discounting).

    Raises
    ------
    ValueError
        If more than one convention is given, or a rate is out of range.
    """
    given = [n for n, v in (("annual", annual), ("continuous", continuous),
                            ("per_period", per_period)) if v not in (None, 0, 0.0)]  # fmt: skip
    if len(given) > 1:
        raise ValueError(
            f"give one discount rate, not {' and '.join(given)}: annual (effective per "
            "year), continuous (per time unit) or per_period (effective per time unit)."
        )
    if continuous is not None and continuous != 0:
        if not np.isfinite(continuous) or continuous < 0:
            raise ValueError(f"continuous discount rate must be >= 0, got {continuous!r}")
        return float(continuous)
    if per_period is not None and per_period != 0:
        if not per_period > -1:
            raise ValueError(f"per-period discount rate must be > -1, got {per_period!r}")
        return float(np.log1p(per_period))
    return float(continuous_rate(annual, time_unit))


def discount_factor(t: Any, rate: Any) -> Any:
    """Present value of one unit paid at time ``t``: ``exp(-δ t)`` (``rate`` is ``δ``)."""
    return np.exp(-np.asarray(rate, dtype=float) * np.asarray(t, dtype=float))


def discounted_sum(values: Any, times: Any, rate: Any, axis: int = -1) -> np.ndarray:
    """``Σ values_j · exp(-δ t_j)`` along ``axis``; NaN times (padding) contribute 0."""
    times = np.asarray(times, dtype=float)
    terms = np.asarray(values, dtype=float) * discount_factor(times, rate)
    return np.sum(np.where(np.isnan(times), 0.0, terms), axis=axis)


def discounted_expectation(
    expected: Callable[[Any], Any], horizon: Any, rate: float, *, nodes: int = 16
) -> Any:
    """Expected discounted count ``E[Σ_j exp(-δ t_j)]`` of events in ``(0, h]``.

    With ``E(t)`` the expected number of events in ``(0, t]`` (a conditional expected
    purchases function), integration by parts gives

    .. math::

        \\int_0^h e^{-δt}\\, dE(t) = e^{-δh} E(h) + δ \\int_0^h e^{-δt} E(t)\\, dt,

    and the last integral is computed by ``nodes``-point Gauss-Legendre quadrature.
    The models' ``E`` are smooth (analytic for ``t > 0``, linear near 0), so the rule
    converges geometrically: with 16 nodes the BG/NBD value agrees with a 20,000-step
    Stieltjes sum to 1e-6 relative up to ``δh = 20`` (``tests/test_predict.py``).
    Exact (no quadrature) when ``δ = 0``.

    Parameters
    ----------
    expected : callable
        ``t -> E(t)``, broadcasting over ``t`` like over ``horizon``.
    horizon : array_like
        Window length ``h``.
    rate : float
        Continuous discount rate ``δ`` per time unit.
    nodes : int
        Gauss-Legendre nodes.

    Returns
    -------
    ndarray
    """
    h = np.asarray(horizon, dtype=float)
    total = expected(h)
    delta = float(rate)
    if delta == 0:
        return total
    u, w = np.polynomial.legendre.leggauss(nodes)
    integral = 0.0
    for ui, wi in zip(u, w, strict=True):
        t = 0.5 * h * (ui + 1.0)
        integral = integral + 0.5 * h * wi * discount_factor(t, delta) * expected(t)
    return discount_factor(h, delta) * total + delta * integral


# e^{-40} ~ 4e-18: beyond δt = 40 the discounted tail is below double precision
_RESIDUAL_CUT = 40.0


def discounted_residual(
    expected: Callable[[Any], Any], scale: Any, rate: float, *, nodes: int = 64
) -> Any:
    """Expected discounted count of *all* future events, ``E[Σ_j exp(-δ t_j)]`` on ``(0, ∞)``.

    The infinite-horizon limit of :func:`discounted_expectation`: integrating by parts,

    .. math::

        \\int_0^\\infty e^{-δt}\\, dE(t) = \\int_0^\\infty δ e^{-δt} E(t)\\, dt
        = E_{\\tau \\sim \\text{Exp}(δ)}[E(\\tau)],

    the expected events before an exponential "discount clock" rings (CLVTools'
    discounted expected residual transactions, DERT, when ``E`` is a customer's
    conditional expected purchases). The integral runs in ``v = log(1 + t/c)`` with
    ``c = scale`` (the time scale on which ``E`` bends, e.g. ``α + T``), where the
    integrand is smooth and ends double-exponentially, up to ``δt = 40``; ``nodes``-point
    Gauss-Legendre. 64 nodes give ~1e-10 relative accuracy on the models' expectations
    for ``δc`` from 1e-4 to 100 (``tests/test_math_crm.py``).

    Parameters
    ----------
    expected : callable
        ``t -> E(t)``, broadcasting over ``t`` like over ``scale``; grows at most linearly.
    scale : array_like
        Positive time scale of ``E`` (broadcast against the output).
    rate : float
        Continuous discount rate ``δ > 0`` per time unit (with ``δ = 0`` the sum of all
        future events has no finite discounted value to compute).
    nodes : int
        Gauss-Legendre nodes.

    Returns
    -------
    ndarray
    """
    delta = float(rate)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(
            f"the discounted residual value needs a positive discount rate, got {rate!r}: "
            "without discounting the expected purchases over an unlimited future may be "
            "infinite; give a rate (e.g. continuous_rate(0.1, time_unit))."
        )
    c = np.asarray(scale, dtype=float)
    top = np.log1p(_RESIDUAL_CUT / (delta * c))
    u, w = np.polynomial.legendre.leggauss(nodes)
    total = 0.0
    for ui, wi in zip(u, w, strict=True):
        v = 0.5 * top * (ui + 1.0)
        t = c * np.expm1(v)
        jacobian = 0.5 * top * wi * (c + t)
        total = total + jacobian * delta * discount_factor(t, delta) * expected(t)
    return total
