"""The forecast clock of a fit with calendar-time effects.

For every posterior draw the calibration's log multipliers ``f_0 .. f_{P-1}`` come from
the posterior, and the future ones from the latent process given that draw's path
(:func:`clvbayes.math.calendar.simulate_future`: the walk continued from its last level,
plus white noise, plus the known covariates' effects ``z'γ``), so the uncertainty of the
calendar grows with the horizon and is shared by every customer in a draw: that common
part is what makes the interval of a total honest. A :class:`ForecastClock` then gives
each customer's operational history ``(M(t_x), M(T))`` and window ``τ(h) = C(G + h) -
C(G)``, and maps purchase times simulated in operational time back to the calendar (so
discounting stays exact).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvbayes.data.calendar import CalendarGrid, CalendarRFM
from clvbayes.math.calendar import clock, elapsed, inverse_elapsed, simulate_future
from clvbayes.math.draws import draw_index
from clvbayes.models.calendar import covariate_matrix
from clvbayes.models.fitted import check_calendar, covariates_of, design_of
from clvbayes.predict.options import predictive_draws

__all__ = [
    "CALENDAR_VARIABLES",
    "ForecastClock",
    "birth_groups",
    "calendar_multipliers",
    "cohort_expectation",
    "forecast_clock",
]


CALENDAR_VARIABLES = ("time_effect", "level_sigma", "noise_sigma", "calendar_coefficient")
"""Posterior variables the forecast clock reads (besides the model's parameters)."""


@dataclass(frozen=True)
class ForecastClock:
    """Per-draw log multipliers of the calibration and the forecast periods.

    Attributes
    ----------
    f : ndarray, shape (draws, K)
        ``f`` of periods ``0 .. K-1`` (``K`` = calibration periods + forecast periods).
    grid_end : float
        ``G``, where the calibration ends (the forecast window starts).
    """

    f: np.ndarray
    grid_end: float

    def take(self, draws: Any) -> ForecastClock:
        """The clock of some draws (e.g. a block of them)."""
        return ForecastClock(self.f[draws], self.grid_end)

    def history(self, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray]:
        """Operational ``(M(t_x), M(T))`` per draw and customer, ``(draws, n)`` each."""
        start = self.grid_end - np.asarray(T, dtype=float)
        return elapsed(self.f, start, t_x), elapsed(self.f, start, T)

    def window(self, horizon: Any) -> np.ndarray:
        """Operational length of ``(G, G + h]`` per draw, ``(draws, *h.shape)``."""
        h = np.asarray(horizon, dtype=float)
        end = clock(self.f, self.grid_end + h)
        start = clock(self.f, np.array([self.grid_end]))[..., 0]
        return np.maximum(end - start.reshape(start.shape + (1,) * h.ndim), 0.0)

    def to_calendar(self, tau: Any, draw: Any) -> np.ndarray:
        """Calendar offsets after ``G`` of operational durations ``tau`` (element ``i`` in
        draw ``draw[i]``)."""
        return inverse_elapsed(self.f, self.grid_end, tau, draw)

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """The map from operational time after ``G`` to calendar offsets after ``G`` as
        per-draw knots ``(operational, calendar)``, each ``(draws, K)``: both start at 0,
        then one knot per period boundary after ``G`` up to the grid's end (the map is
        linear within a period, of slope ``exp(-f_p)``); beyond the grid's end it continues
        at the last period's rate (the forecast grid covers the horizons scored). The form
        :func:`clvbayes.math.kernels.simulate_alive_future` takes (its ``clock``).
        """
        w = np.exp(np.asarray(self.f, dtype=float))
        n_draws, n_periods = w.shape
        k0 = min(math.floor(self.grid_end), n_periods - 1)
        calendar = np.arange(k0 + 1, n_periods + 1, dtype=float) - self.grid_end
        if self.grid_end >= n_periods:  # G at (or past) the grid's end: the last rate
            calendar, steps = np.array([1.0]), w[:, -1:]
        else:  # the rest of G's period, then whole periods up to the grid's end
            head = (k0 + 1 - self.grid_end) * w[:, k0 : k0 + 1]
            steps = np.concatenate([head, w[:, k0 + 1 :]], axis=1)
        operational = np.concatenate([np.zeros((n_draws, 1)), np.cumsum(steps, axis=1)], 1)
        calendar = np.concatenate([[0.0], calendar])
        return operational, np.broadcast_to(calendar, operational.shape).copy()


def forecast_clock(
    fit: Any,
    draws: np.ndarray,
    horizon: float,
    rng: np.random.Generator,
    covariates: pd.DataFrame | None = None,
) -> ForecastClock:
    """The clock of ``fit`` for the posterior draws ``draws`` (flat indices) over a
    forecast of ``horizon`` time units after the calibration end.

    Parameters
    ----------
    fit : FittedModel
        A fit with calendar-time effects (``fit.calendar`` set).
    draws : ndarray of int
        Flat ``chain x draw`` indices of the posterior draws to use, in order.
    horizon : float
        The longest prediction window; the clock covers every period it reaches.
    rng : numpy.random.Generator
        Stream of the future paths.
    covariates : DataFrame, optional
        Values of the calendar covariates for forecast periods that the fit's
        ``TimeEffects.covariates`` did not hold (one row per period, indexed by a date
        in the period, e.g. its first day).

    Raises
    ------
    ValueError
        When the fit has known covariates and some forecast period has no value for them
        (the message names the periods).
    """
    grid: CalendarGrid = fit.calendar
    post = fit.posterior
    P = grid.n_periods
    # the periods holding (G, G + horizon]: an end on a period's boundary needs no period
    # after it (the tolerance keeps a rounding of G + horizon from asking for one)
    n_total = max(P, math.ceil(grid.grid_end + horizon - 1e-9))
    n_future = n_total - P

    def flat(name: str) -> np.ndarray:
        values = post[name].to_numpy()
        return values.reshape(-1, *values.shape[2:])[draws]

    f_cal = flat("time_effect")
    if n_future == 0:
        return ForecastClock(f_cal, grid.grid_end)
    effects = 0.0
    known = np.zeros(f_cal.shape)
    if grid.covariate_names:
        values = _future_covariates(fit, grid, n_total, covariates)
        gamma = flat("calendar_coefficient")
        known = gamma @ values[:P].T
        effects = gamma @ values[P:].T
    latent = f_cal - known
    walk = latent[:, grid.n_free :]
    future = simulate_future(
        walk, flat("level_sigma"), flat("noise_sigma"), n_future, rng, effects=effects
    )
    return ForecastClock(np.concatenate([f_cal, future], axis=1), grid.grid_end)


def _future_covariates(
    fit: Any, grid: CalendarGrid, n_total: int, extra: pd.DataFrame | None
) -> np.ndarray:
    """Known covariates of periods ``0 .. n_total-1``: the fit's, then ``extra``."""
    have = grid.covariates
    if have.shape[0] >= n_total:
        return have[:n_total]
    options = fit.spec.time_effects
    if extra is not None:
        try:  # the checks of TimeEffects(covariates=...): a date index, numbers, no NaT
            extra = type(options)(covariates=extra).covariates
        except (TypeError, ValueError) as err:
            raise type(err)(f"calendar_covariates: {err}") from None
        base = options.covariates
        extra = _forecast_rows(grid, base, extra)
        combined = extra if base is None else pd.concat([base, extra])
        # a row of ``extra`` replaces the fit's row of the same period
        combined = combined[~pd.Index(grid.period_of(combined.index)).duplicated(keep="last")]
        options = type(options)(combined, options.seasonality, options.n_free, options.priors)
    _, values = covariate_matrix(grid, options, n_total)
    return values


def _forecast_rows(grid: CalendarGrid, base: Any, extra: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``extra`` (a prediction's ``calendar_covariates``) for periods after the
    calibration. Rows for calibration periods are dropped when they repeat the values the
    model was fitted with, and refused when they differ: the fit's path was estimated
    with those values, and changing them would move the latent level the forecast
    continues from."""
    period = grid.period_of(extra.index)
    extra = extra[period >= 0]  # before the grid: no period, as in the fit
    period = period[period >= 0]
    past = np.asarray(period < grid.n_periods)
    if not past.any():
        return extra
    columns = [] if base is None else list(base.columns)
    missing = [c for c in columns if c not in extra.columns]
    if missing:
        raise ValueError(
            f"calendar_covariates has no column {missing[0]!r} (the fit's covariates are "
            f"{columns}); give the same columns as TimeEffects(covariates=...)."
        )
    given = extra.loc[past, columns].to_numpy(dtype=float)
    fitted = grid.covariates[period[past]][:, : len(columns)]
    differ = ~np.isclose(given, fitted, rtol=1e-12, atol=0.0).all(axis=1)
    if differ.any():
        first = int(np.flatnonzero(differ)[0])
        start = pd.Timestamp(grid.period_start(period[past][first])).date()
        raise ValueError(
            f"calendar_covariates: {int(differ.sum())} row(s) for calibration periods differ "
            f"from the values the model was fitted with, e.g. the period starting {start}: "
            f"{dict(zip(columns, given[first].tolist(), strict=True))} against "
            f"{dict(zip(columns, fitted[first].tolist(), strict=True))}. The calibration's "
            "values are part of the fit; give calendar_covariates for the forecast periods "
            "only (or refit with the corrected values)."
        )
    return extra[~past]


def calendar_multipliers(
    fit: Any,
    *,
    horizon: float = 0.0,
    ci_prob: float = 0.9,
    n_draws: int | None = None,
    seed: int | None = None,
    calendar_covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The estimated calendar multiplier ``exp(f_p)`` of every period, with bands.

    Calibration periods: the posterior of the time effects (a multiplier of 1.2 means
    every active customer bought at 1.2 times their own average rate of the
    calibration). Forecast periods (``horizon > 0``): the latent process continued from
    each draw's last level, plus the known covariates' effects; the bands widen with
    the horizon.

    Parameters
    ----------
    fit : FittedModel
        A fit with calendar-time effects (``BGNBD(time_effects=True)``).
    horizon : float
        Time units after the calibration end to forecast (0: calibration only).
    ci_prob : float
        Mass of the central band.
    n_draws : int, optional
        Posterior draws used (thinned evenly; more than the fit has repeat them, each
        with its own future path); None uses all, and at least
        :data:`~clvbayes.predict.options.PREDICTIVE_DRAWS` future paths when
        ``horizon > 0`` (a MAP fit has one draw: one path would show an uncertain
        forecast as a line without a band).
    seed : int, optional
        Stream of the future paths.
    calendar_covariates : DataFrame, optional
        Future values of the fit's calendar covariates (one row per period, indexed by
        a date in the period).

    Returns
    -------
    DataFrame
        One row per period: ``period``, ``start`` (date), ``calibration`` (bool),
        ``multiplier_mean``, ``multiplier_low``, ``multiplier_high``, ``time_effect_mean``
        (the posterior mean of ``f_p``).
    """
    grid = _calendar_of(fit, "calendar_multipliers")
    if not 0.0 < ci_prob < 1.0:
        raise ValueError(f"ci_prob must be in (0, 1); got {ci_prob!r}.")
    if not np.isfinite(horizon) or horizon < 0:
        raise ValueError(f"horizon must be a finite number >= 0; got {horizon!r}.")
    wanted = n_draws
    if horizon > 0:  # a point estimate (MAP) still has uncertain futures
        wanted = predictive_draws(fit.n_posterior_draws, n_draws)
    # the future paths are random given a draw: more than the draws repeat them
    take = draw_index(fit.n_posterior_draws, wanted, cycle=horizon > 0)
    rng = np.random.default_rng(seed)
    f = forecast_clock(fit, take, float(horizon), rng, calendar_covariates).f
    tail = (1.0 - ci_prob) / 2.0
    m = np.exp(f)
    periods = np.arange(f.shape[1])
    return pd.DataFrame(
        {
            "period": periods,
            "start": grid.period_start(periods),
            "calibration": periods < grid.n_periods,
            "multiplier_mean": m.mean(axis=0),
            "multiplier_low": np.quantile(m, tail, axis=0),
            "multiplier_high": np.quantile(m, 1.0 - tail, axis=0),
            "time_effect_mean": f.mean(axis=0),
        }
    )


def _calendar_of(fit: Any, caller: str) -> CalendarGrid:
    grid = getattr(fit, "calendar", None)
    if grid is None:
        raise ValueError(
            f"{caller} needs a fit with calendar-time effects (e.g. "
            "BGNBD(time_effects=True).fit(calendar_rfm(...))); this fit is stationary "
            "(its multiplier is 1 in every period)."
        )
    return grid


def birth_groups(
    fit: Any, customers: Any, birth: Any, draws: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The customers grouped by (segment, covariates, ``birth``): one expectation term per
    group, each with its own parameters (its segment's, scaled by its covariates).

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model.
    customers : DataFrame
        The customers, with ``fit``'s segment and covariate columns.
    birth : array_like
        Each customer's birth on the time axis of the expectation (e.g. the grid position
        of the first purchase, or ``T``).
    draws : ndarray of int, optional
        Flat ``chain x draw`` indices of the posterior draws (default: all).

    Returns
    -------
    births : ndarray, shape (n_groups,)
    counts : ndarray of int, shape (n_groups,)
        Customers per group.
    params : dict of str to ndarray
        Per parameter, ``(n_draws, n_groups)`` (or ``(n_draws, 1)`` when shared).
    """
    codes = fit.segment_codes(customers)
    codes = np.zeros(len(customers), dtype=np.int64) if codes is None else codes
    groups, first, counts = np.unique(
        np.column_stack([codes, covariates_of(fit, customers), birth]),
        axis=0, return_index=True, return_counts=True,
    )  # fmt: skip
    segment = [] if fit.segment_column is None else [fit.segment_column]
    columns = [*segment, *design_of(fit).names]
    rows = {k: np.asarray(customers[k])[first] for k in columns}
    return groups[:, -1], counts, fit.customer_params(rows, draws)


def cohort_expectation(
    fit: Any,
    data: CalendarRFM,
    positions: Any,
    draws: np.ndarray,
    rng: np.random.Generator,
    covariates: pd.DataFrame | None = None,
) -> np.ndarray:
    """Expected cumulative repeat purchases of ``data``'s customers at calendar grid
    ``positions``, per posterior draw: ``Σ_i E[X(M_i(s))]``, the *unconditional*
    expectation of a customer first seen at ``c_i`` (its birth only, not its history).

    For a stationary fit the clock is the identity; for a fit with time effects the
    calibration's multipliers come from the posterior and later ones from the process
    (:func:`forecast_clock`), so the values past the calibration are forecasts.

    Parameters
    ----------
    fit : FittedModel
        A fitted transaction model (any family; time effects need BG/NBD or MBG/NBD).
    data : CalendarRFM
        The customers and their calendar (:func:`clvbayes.calendar_rfm`).
    positions : array_like
        Calendar grid positions (time units since the grid's origin).
    draws : ndarray of int
        Flat ``chain x draw`` indices of the posterior draws.
    rng : numpy.random.Generator
        Stream of the future paths (time-effect fits).
    covariates : DataFrame, optional
        Future values of the calendar covariates.

    Returns
    -------
    ndarray, shape (len(draws), len(positions))
    """
    check_calendar(fit, data, same_origin=True)
    s = np.asarray(positions, dtype=float).reshape(-1)
    births, counts, params = birth_groups(fit, data.customers, data.first_position, draws)
    theta = {k: v[:, None, :] for k, v in params.items()}
    if fit.calendar is None:
        at_s = np.broadcast_to(s, (draws.size, s.size))
        at_birth = np.broadcast_to(births, (draws.size, births.size))
    else:
        horizon = max(float(s.max(initial=0.0)) - fit.calendar.grid_end, 0.0)
        f = forecast_clock(fit, draws, horizon, rng, covariates).f
        at_s, at_birth = clock(f, s), clock(f, births)
    age = np.maximum(at_s[:, :, None] - at_birth[:, None, :], 0.0)  # (draw, s, birth)
    family = fit.family
    per_birth = np.asarray(family.expected_purchases_new(*family.values(theta), age), dtype=float)
    return per_birth @ counts.astype(float)
