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

from clvbayes.data.calendar import CalendarGrid
from clvbayes.math.calendar import clock, elapsed, inverse_elapsed, simulate_future
from clvbayes.models.calendar import covariate_matrix

__all__ = ["ForecastClock", "forecast_clock"]


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
        ``TimeEffects.covariates`` did not hold (indexed by period start).

    Raises
    ------
    ValueError
        When the fit has known covariates and some forecast period has no value for them
        (the message names the periods).
    """
    grid: CalendarGrid = fit.calendar
    post = fit.posterior
    P = grid.n_periods
    n_total = max(P, math.floor(grid.grid_end + horizon) + 1)
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
        base = options.covariates
        combined = extra if base is None else pd.concat([base, extra])
        combined = combined[~combined.index.duplicated(keep="last")]
        options = type(options)(combined, options.seasonality, options.n_free, options.priors)
    _, values = covariate_matrix(grid, options, n_total)
    return values
