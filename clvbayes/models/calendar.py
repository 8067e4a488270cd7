"""Calendar-time effects on the purchase rate: the options, the latent process, the clock.

``BGNBD(time_effects=True)`` (or ``MBGNBD``) multiplies every active customer's purchase
rate by a common calendar multiplier ``exp(f_p)`` per period of the grid
(:mod:`clvbayes.data.calendar`); for these models that is a change of clock
(:mod:`clvbayes.math.calendar`): the likelihood is the ordinary one at the operational
times ``(x, M(t_x), M(T))`` plus the Jacobian ``Σ_p N_p f_p``.

The default process, and why
----------------------------
``f_p = z_p'γ + u_p`` with known calendar covariates ``z`` (user columns, optional
yearly Fourier terms) and a latent ``u``: a **local level (random walk) plus white
noise**, ``u_p = ℓ_p + ε_p``, ``ℓ_p = ℓ_{p-1} + η_p``, with ``η ~ N(0, level_sigma)``
(persistent moves: a shop's growth or decline, a changed assortment) and
``ε ~ N(0, noise_sigma)`` (one-off weeks: promotions, holidays not in ``z``). Why this
process: real logs show both kinds of movement (on CDNOW master the weekly log ratio of
actual to expected repeat purchases has a standard deviation of 0.19 and a lag-1
autocorrelation of 0.22, against about 0.04 from Poisson noise), and the process has to
forecast. An AR(1) reverts to the calibration mean, which is exactly the failure of
stationary forecasts; a smooth trend (integrated random walk) extrapolates the last
slope and its intervals widen with the square of the horizon; white noise alone cannot
move the level at all. The local level continues at its last value with uncertainty
growing like the square root of the horizon. Fitted to CDNOW (master and sample) the
posterior means are a level step of 0.03 a week and noise of 0.19-0.22; the simulation
study behind the default priors (``benchmarks/study_time_effects.py``, numbers in
``benchmarks/RESULTS.md``) checks that the forecast intervals of totals hold what they
claim when the truth is such a process.

The level of ``f`` is not identified apart from ``alpha`` (multiplying all rates by
``e^δ`` is dividing ``alpha`` by it), so ``f`` is centred: ``Σ_p w_p f_p = 0`` with ``w``
the calibration's repeat purchases per period, and ``alpha`` keeps its meaning (the
purchase-rate scale at the calibration's average calendar conditions).

Acquisition periods. In the periods in which a cohort is acquired (``n_free``, by default
``"auto"``: the first periods until 95 % of the customers have made their first
purchase, when that is at most half of the calibration) the at-risk base is mostly new
customers, and whatever sets new customers apart (the BG/NBD has no age effect) shows up
as a calendar effect that later weeks do not share: in the calibration data of the cohort
logs the acquisition weeks run well above the later ones. Their effects are therefore free
(``N(0, free_sigma)`` each, outside the walk), so the transient does not inflate the
walk's scale. Logs that keep acquiring customers through the calibration get no free
periods (``"auto"`` gives 0 there: the base's age mix is then steady).

Sampling. The walk's differences are an MA(1) process whose covariance the fixed sine
basis diagonalises (:func:`clvbayes.math.calendar.difference_basis`), so the path is
sampled as ``Δu = V w`` with independent coordinates ``w_j ~ N(0, sqrt(λ_j))``: one
coordinate per period, no latent level. Each coordinate, and each free effect, is
partially centred by the data's information about it at the current scales
(:func:`clvbayes.math.calendar.partially_centred`, in units of :data:`PATH_UNIT`):
centred where the weekly purchases pin it down, non-centred where they do not or the
scale is small. NUTS (nutpie, the default sampler) starts the path's coordinates and
the walk's two scales at PyMC's support point without the usual U(-1, 1) jitter
(:func:`clvbayes.models.compiled.start_unjittered`): well-informed weeks have a
posterior sd of a few hundredths, so the jitter put each chain dozens of sds away and
the first 100 warm-up iterations took 10,000-14,000 leapfrog steps on CDNOW master
(6,000-7,000 without it; the fit 10 % faster, with the same rate of divergences over 5
seeds). ``r``, ``alpha`` and the dropout parameters are jittered as in every model, so
the chains still start apart, and so is ``free_sigma``: when no free period holds a
repeat purchase (one cohort acquired on the first period's last day, as in CLVTools'
apparel log) the free effects carry no information, and at the support point the
gradient of their scale is exactly 0, a start nutpie refuses.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvbayes.data.calendar import CalendarGrid, CalendarRFM
from clvbayes.math.calendar import (
    GridPositions,
    clock_at,
    difference_basis,
    partially_centred,
    polar_scales,
    polar_start,
    positions,
    walk_information,
)
from clvbayes.math.ops import Factor
from clvbayes.models.compiled import start_unjittered
from clvbayes.priors import Prior, resolve_priors

__all__ = [
    "FREE_SHARE",
    "PATH_UNIT",
    "TIME_EFFECT_PRIORS",
    "TIME_EFFECT_TUNE",
    "CalendarWarning",
    "TimeEffects",
    "attach_calendar",
    "check_time_effects",
    "covariate_periods",
    "operational_columns",
    "prepare_grid",
    "split_calendar",
    "time_effect",
    "time_effect_names",
]

TIME_EFFECT_PRIORS: dict[str, Prior] = {
    "level_sigma": Prior("HalfNormal", sigma=0.05),
    "noise_sigma": Prior("HalfNormal", sigma=0.3),
    "free_sigma": Prior("HalfNormal", sigma=0.5),
    "calendar_coefficient": Prior("Normal", mu=0.0, sigma=0.5),
}
"""Default priors of the time-effect process, per week (scaled for days: a random walk's
variance grows with elapsed time, ``level_sigma x sqrt(days/7)``; white noise averages,
``noise_sigma x sqrt(7/days)``).

``level_sigma`` (the weekly step of the persistent level): HalfNormal(0.05), chosen by
the aggregate calibration study ``benchmarks/study_time_effects.py calibration``
(CDNOW-like cohorts of 5,000 customers, 39 calibration and 39 holdout weeks, common
shocks with level steps drawn from 0-0.05 a week and white noise 0.05-0.25, the ranges
the calibration data of real logs show; numbers in ``benchmarks/RESULTS.md``). On the
same 30 data sets the previous default HalfCauchy(0.02) put the holdout total inside
its 90 % interval in 24 (80 %), with z-scores of standard deviation 1.21 (too narrow)
and divergences in 8 fits; HalfNormal(0.05) in 25 (83 %), z sd 0.96, divergences in 2.
It was chosen on these simulations and on no data set's holdout. Its mass up to about
0.1 a week lets the data open the walk up; the price on stationary data is a wider
interval of the total (the ``stationary`` study). ``noise_sigma``: 0.10-0.21 on every
log we fitted, data-dominated; HalfNormal(0.3) is weak. ``free_sigma``: the scale of
the free acquisition-period effects. ``calendar_coefficient``: per unit of a covariate
(a holiday that doubles purchases is 0.69)."""

TIME_EFFECT_TUNE = 600
"""Default NUTS tuning steps of a fit with calendar-time effects (without segments; the
others' default is 1,000). With the process's scales in polar coordinates
(:func:`clvbayes.math.calendar.polar_scales`), 600 steps sampled every log we measured
without a divergence and with more effective draws than 1,000 steps gave before
(CDNOW master, seeds 1-10 of 4 x (600 + 1,000): no divergence, minimum bulk ESS
3,291-4,270, against 1,602-2,832 and divergences in 11 of 16 fits with the scales
sampled directly at 600 or 1,000 steps); CDNOW sample, BTYDplus' grocery, CLVTools'
apparel with and without its season covariate and stationary simulated cohorts: no
divergence, R-hat at most 1.017 (``benchmarks/RESULTS.md``, sixteenth session)."""

FREE_SHARE = 0.95
"""``n_free="auto"``: free periods last until this share of the customers is acquired."""

PATH_UNIT = 0.2
"""The unit (per week; per period ``0.2 / sqrt(weeks per period)``, like the noise) in
which the path's partially centred coordinates are measured
(:func:`clvbayes.math.calendar.partially_centred`). It changes only NUTS' geometry, not
the model. With the unit 1 the weekly scales (0.03-0.2) sat far below it, and the
coordinates of weakly informed weeks moved more with their scale than non-centred ones
do: on small logs ``noise_sigma`` and ``free_sigma`` mixed slowly (R-hat 1.01-1.03,
bulk ESS 160-430 of 4,000 draws, E-BFMI under 0.3 on BTYDplus' grocery and CLVTools'
apparel logs, and on the CDNOW sample). 0.2, about the median of the noise scale's prior and
of the weekly noise fitted on every log, was chosen on sampling efficiency alone
(leapfrog steps, ESS, warnings, divergences) on those logs and CDNOW master; numbers in
``benchmarks/RESULTS.md``."""


@dataclass(frozen=True)
class TimeEffects:
    """Options of calendar-time effects (``BGNBD(time_effects=TimeEffects(...))``).

    Parameters
    ----------
    covariates : DataFrame, optional
        Known calendar covariates, one row per period, indexed by a date in the period
        (its first day, :attr:`clvbayes.data.calendar.CalendarRFM.periods`' ``start``, or
        any other: a row counts for the period that holds its date), numeric columns
        (e.g. a holiday dummy, a promotion indicator, a price index). Every calibration
        period needs a row; rows for future periods serve the forecasts (predictions over
        periods without a row are an error that names them). When the rows of a weekly
        grid are all dated on one weekday other than the one its weeks start on (e.g.
        CLVTools' Sunday-dated files), preparing the data warns: week-start dates may then
        belong to the next period. The options keep a copy of the frame.
    seasonality : int
        Number of yearly Fourier pairs (``sin``/``cos`` of ``2πk`` day-of-year / 365.25 at
        each period's middle day) added as covariates. Identified only with at least a
        year of calibration (with less, preparing the data warns); 0 (default) leaves
        seasons to the latent process.
    n_free : int or "auto"
        Periods at the start of the grid whose effects are free instead of following the
        latent process (see the module docstring).
    priors : mapping, optional
        Priors for ``level_sigma``, ``noise_sigma``, ``free_sigma`` and
        ``calendar_coefficient`` (pymc_extras ``Prior`` objects or dicts); defaults
        :data:`TIME_EFFECT_PRIORS` (per week).
    """

    covariates: pd.DataFrame | None = None
    seasonality: int = 0
    n_free: int | Literal["auto"] = "auto"
    priors: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.covariates is not None:
            _check_covariates(self.covariates)
            # a copy: later edits of the caller's frame must not change validated options
            # (their hash, or NaN slipped past the check)
            object.__setattr__(self, "covariates", self.covariates.copy(deep=True))
        object.__setattr__(self, "seasonality", _whole("seasonality", self.seasonality))
        if not (isinstance(self.n_free, str) and self.n_free == "auto"):
            object.__setattr__(self, "n_free", _whole("n_free", self.n_free, "'auto' or "))
        resolved = resolve_priors(
            TIME_EFFECT_PRIORS, self.priors, allowed=frozenset(TIME_EFFECT_PRIORS)
        )
        object.__setattr__(self, "priors", resolved)

    @classmethod
    def coerce(cls, value: Any) -> TimeEffects | None:
        """``True`` -> the defaults, ``None``/``False`` -> None, a TimeEffects as it is, a
        mapping -> :meth:`from_dict` (e.g. ``{"seasonality": 2, "n_free": 0}``)."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise TypeError(
            f"time_effects must be True, False, None, a clvbayes.TimeEffects or a mapping "
            f"of its options (e.g. {{'seasonality': 2}}; keys {list(_OPTION_NAMES)}), got "
            f"{type(value).__name__}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (stored with a fit)."""
        cov = None
        if self.covariates is not None:
            frame = self.covariates
            cov = {
                "index": [pd.Timestamp(i).date().isoformat() for i in frame.index],
                "columns": [str(c) for c in frame.columns],
                "values": frame.to_numpy(dtype=float).tolist(),
            }
        return {
            "covariates": cov,
            "seasonality": self.seasonality,
            "n_free": self.n_free,
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
        }

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> TimeEffects:
        """Rebuild from :meth:`to_dict`'s output, or build from a mapping of the options
        (``covariates`` a DataFrame or :meth:`to_dict`'s form; unknown keys are an error)."""
        unknown = [str(k) for k in stored if k not in _OPTION_NAMES]
        if unknown:
            raise ValueError(
                f"time_effects: unknown option(s) {unknown}; the options are "
                f"{list(_OPTION_NAMES)} (e.g. {{'seasonality': 2, 'n_free': 0}})."
            )
        cov = stored.get("covariates")
        frame = cov
        if isinstance(cov, Mapping):
            frame = pd.DataFrame(
                cov["values"], index=pd.to_datetime(cov["index"]), columns=cov["columns"]
            )
        return cls(
            frame, stored.get("seasonality", 0), stored.get("n_free", "auto"), stored.get("priors")
        )

    def __repr__(self) -> str:
        cov = None if self.covariates is None else list(self.covariates.columns)
        return (
            f"TimeEffects(covariates={cov}, seasonality={self.seasonality}, n_free={self.n_free!r})"
        )

    def json(self) -> str:
        """:meth:`to_dict` as sorted JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def __eq__(self, other: object) -> bool:
        # by content: the covariates' values, index and columns, the options and the
        # priors (a DataFrame field has no truth value, so the generated one failed)
        if not isinstance(other, TimeEffects):
            return NotImplemented
        return self.json() == other.json()

    def __hash__(self) -> int:
        return hash(self.json())


_OPTION_NAMES = tuple(f.name for f in dataclasses.fields(TimeEffects))


def _whole(name: str, value: Any, other: str = "") -> int:
    """``value`` as an int when it is a whole number >= 0 (numpy integers too; a bool is
    no count)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ValueError(f"{name} must be {other}a whole number >= 0, got {value!r}.")


def _check_covariates(frame: Any) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"covariates must be a DataFrame indexed by date (one row per period), got "
            f"{type(frame).__name__}."
        )
    if len(frame) == 0:
        raise ValueError(
            f"covariates has 0 rows (columns {[str(c) for c in frame.columns]}); give one row "
            "per period (every calibration period and the forecast periods), or leave "
            "covariates=None for no calendar covariates."
        )
    repeated = frame.columns[frame.columns.duplicated()].unique()
    if repeated.size:
        raise ValueError(
            f"covariates: {repeated.size} column name(s) occur more than once, e.g. "
            f"{[str(c) for c in repeated[:3]]}; give every column its own name (e.g. "
            "drop the repeated columns: frame.loc[:, ~frame.columns.duplicated()])."
        )
    dated = [str(c) for c in frame.columns if _holds_dates(frame[c])]
    kind = pd.api.types.infer_dtype(frame.index, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        shown = ", ".join(str(v) for v in frame.index[:3])
        column = dated[0] if dated else "date"
        raise ValueError(
            f"covariates must be indexed by a date in each period, but its {len(frame)} rows "
            f"are indexed by numbers ({type(frame.index).__name__}: {shown}, ...), which "
            f"would be read as dates in 1970; index the frame by date, e.g. "
            f"frame.set_index({column!r})."
        )
    try:
        dates = pd.DatetimeIndex(pd.to_datetime(frame.index))
    except (TypeError, ValueError) as err:
        raise ValueError(
            "covariates must be indexed by a date in each period (e.g. its first day, "
            "calendar_rfm(...).periods['start']); the index could not be read as dates."
        ) from err
    missing = np.flatnonzero(dates.isna())
    if missing.size:
        raise ValueError(
            f"covariates: {missing.size} of {len(frame)} rows have no date in the index "
            f"(NaT), e.g. row {int(missing[0])} (counted from 0); give every row its "
            "period's date or drop those rows (frame[frame.index.notna()])."
        )
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            if str(column) in dated:
                raise ValueError(
                    f"covariate column {column!r} holds dates (e.g. {values.iloc[0]!r}), "
                    "not values; if they date the rows, index the frame by them "
                    f"(frame.set_index({column!r})), otherwise drop the column."
                )
            raise ValueError(
                f"covariate column {column!r} is not numeric (e.g. {values.iloc[0]!r}); "
                "encode it (e.g. pandas.get_dummies(...).astype(float))."
            )
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            raise ValueError(
                f"covariate column {column!r}: {int(bad.sum())} of {bad.size} periods are "
                f"NaN or infinite (e.g. period {frame.index[np.flatnonzero(bad)[0]]}); fill them."
            )


def _holds_dates(values: pd.Series) -> bool:
    """Whether a column holds dates (datetimes, or strings that all read as dates)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_numeric_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
        return False
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("datetime", "datetime64", "date"):
        return True
    if kind != "string":
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = pd.to_datetime(values.dropna(), errors="coerce", format="mixed")
    return bool(read.size) and bool(read.notna().all())


# --- the grid a model is fitted on -----------------------------------------------------


def _n_free(first: np.ndarray, setting: int | str, n_periods: int) -> int:
    if setting != "auto":
        if int(setting) >= n_periods - 2:
            raise ValueError(
                f"n_free={setting}: the latent process needs at least 3 of the "
                f"{n_periods} calibration periods; pass a smaller n_free."
            )
        return int(setting)
    periods = np.floor(np.sort(first)).astype(np.int64)
    reached = int(periods[int(np.ceil(FREE_SHARE * periods.size)) - 1]) + 1
    return reached if reached <= n_periods // 2 else 0


def covariate_periods(grid: CalendarGrid, index: Any) -> np.ndarray:
    """The grid period of each row of a calendar-covariates frame (``index``: its dates).

    A row counts for the period that holds its date, so weekly values dated on any day
    of their week (a Sunday, say, where the grid's weeks start on Mondays) line up.

    Raises
    ------
    ValueError
        When two rows fall in the same period (the message names them).
    """
    period = grid.period_of(index)
    repeated = pd.Index(period).duplicated(keep=False)
    if repeated.any():
        first = period[repeated][0]
        dates = pd.to_datetime(pd.Index(index)[period == first]).normalize()
        shown = ", ".join(str(d.date()) for d in dates.unique()[:3])
        raise ValueError(
            f"calendar covariates: {int(repeated.sum())} rows share a period with another "
            f"row, e.g. {dates.size} rows dated {shown} in the period starting "
            f"{pd.Timestamp(grid.period_start(first)).date()} (periods of 1 {grid.time_unit} "
            f"from {grid.origin}); give one row per period, common to all customers (e.g. "
            "aggregate the rows of each period)."
        )
    return period


def covariate_matrix(
    grid: CalendarGrid, options: TimeEffects, n_periods: int, *, missing: str = "error"
) -> tuple[tuple[str, ...], np.ndarray]:
    """Names and values ``(n_periods, n)`` of the known covariates of the first
    ``n_periods`` periods of ``grid`` (user columns, then seasonality terms).

    ``missing="error"`` raises naming the periods the user's frame lacks; ``"truncate"``
    returns the rows up to the first missing one.
    """
    starts = pd.to_datetime(grid.period_start(np.arange(n_periods)))
    names: list[str] = []
    columns: list[np.ndarray] = []
    if options.covariates is not None:
        frame = options.covariates
        period = covariate_periods(grid, frame.index)
        inside = (period >= 0) & (period < n_periods)
        absent = starts[~np.isin(np.arange(n_periods), period[inside])]
        if absent.size and missing == "error":
            shown = ", ".join(str(d.date()) for d in absent[:5])
            more = "" if absent.size <= 5 else f" and {absent.size - 5} more"
            raise ValueError(
                f"calendar covariates are missing for {absent.size} period(s) starting "
                f"{shown}{more} (periods of 1 {grid.time_unit} from {grid.origin}; a row "
                "counts for the period that holds its date); give a row for every "
                "calibration period (TimeEffects(covariates=...)) and every forecast "
                "period (there, or calendar_covariates=... of the prediction)."
            )
        aligned = np.full((n_periods, frame.shape[1]), np.nan)
        aligned[period[inside]] = frame.to_numpy(dtype=float)[inside]
        names += [str(c) for c in frame.columns]
        columns += list(aligned.T)
    if options.seasonality:
        middle = starts + pd.Timedelta(days=grid.days_per_unit / 2)
        angle = 2 * np.pi * middle.day_of_year.to_numpy() / 365.25
        for k in range(1, options.seasonality + 1):
            names += [f"season_sin{k}", f"season_cos{k}"]
            columns += [np.sin(k * angle), np.cos(k * angle)]
    values = np.column_stack(columns) if columns else np.zeros((n_periods, 0))
    return tuple(names), values


def prepare_grid(grid: CalendarGrid, options: TimeEffects, first: np.ndarray) -> CalendarGrid:
    """``grid`` completed for a fit: the free periods and the known covariates of the
    calibration periods and of whatever future periods the covariates frame holds."""
    n_periods = grid.n_periods
    if n_periods < 4:
        raise ValueError(
            f"calendar-time effects need at least 4 calibration periods, the grid has "
            f"{n_periods}; use a longer calibration or a shorter time_unit."
        )
    n_free = _n_free(first, options.n_free, n_periods)
    known = n_periods
    if options.covariates is not None:
        last = int(grid.period_of(options.covariates.index).max())
        known = max(n_periods, last + 1)
        _warn_weekday(grid, options.covariates.index)
    if options.seasonality:
        _warn_short_seasonality(grid, options.seasonality)
    names, values = covariate_matrix(grid, options, n_periods)
    if known > n_periods:  # future rows as far as the frame reaches without a gap
        _, values = covariate_matrix(grid, options, known, missing="truncate")
        complete = np.isfinite(values).all(axis=1) if values.size else np.ones(known, bool)
        values = values[: n_periods + int(np.argmin(np.append(complete[n_periods:], False)))]
    if names:
        calibration = values[:n_periods]
        bad = ~np.isfinite(calibration)
        if bad.any():  # NaN (e.g. options.covariates edited after the check) is no "flat"
            columns = [n for n, b in zip(names, bad.any(axis=0), strict=True) if b]
            period = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(
                f"calendar covariate(s) {columns} are NaN or infinite in "
                f"{int(bad.any(axis=1).sum())} calibration period(s), e.g. the period "
                f"starting {pd.Timestamp(grid.period_start(period)).date()}; fill them."
            )
        varying = calibration.std(axis=0) > 0
        if not varying.all():
            flat = [n for n, v in zip(names, varying, strict=True) if not v]
            raise ValueError(
                f"calendar covariate(s) {flat} do not vary over the calibration periods, so "
                "their effect cannot be told from alpha; drop them."
            )
    return dataclasses.replace(grid, n_free=n_free, covariate_names=names, covariates=values)


_YEAR_DAYS = 365


class CalendarWarning(UserWarning):
    """Calendar-time options that may not mean what they say (seasonality on less than a
    year; covariate rows dated off the grid's week starts). A clvbayes warning, so the
    report records it, though it names the caller's line."""


_PACKAGE = str(Path(__file__).resolve().parent.parent)
"""The package's folder: the two warnings below name the caller's line outside it."""


def _warn_short_seasonality(grid: CalendarGrid, seasonality: int) -> None:
    """Warn when the calibration's periods cover less than a year (up to one period)."""
    days = grid.n_periods * grid.days_per_unit
    if days + grid.days_per_unit > _YEAR_DAYS:
        return
    end = pd.Timestamp(grid.period_start(grid.n_periods)) - pd.Timedelta(days=1)
    warnings.warn(
        f"seasonality={seasonality}: the calibration covers {days:g} days ({grid.n_periods} "
        f"periods of 1 {grid.time_unit} from {grid.origin} to {end.date()}), less than a "
        "year, so the yearly Fourier terms are not identified apart from the latent process "
        "and the forecast extrapolates them into months the calibration never saw; use "
        "seasonality=0 (the default) unless you mean it, or a calibration of a year or more.",
        CalendarWarning,
        skip_file_prefixes=(_PACKAGE,),
    )


def _warn_weekday(grid: CalendarGrid, index: Any) -> None:
    """Warn when every row of a weekly covariates frame is dated on one weekday that is
    not the day the grid's weeks start: the dates may be week starts of another
    convention (CLVTools' files: Sundays), which would land a period early. The rule
    stays: a row counts for the period that holds its date."""
    if grid.time_unit != "W":
        return
    days = pd.DatetimeIndex(pd.to_datetime(index)).tz_localize(None).normalize()
    weekday = np.unique(days.day_of_week)
    start = pd.Timestamp(grid.origin)
    if days.size < 2 or weekday.size != 1 or int(weekday[0]) == start.day_of_week:
        return
    offset = (int(weekday[0]) - start.day_of_week) % 7  # days after its week's start
    first = days.min()
    held = pd.Timestamp(grid.period_start(int(grid.period_of([first])[0])))
    if offset >= 4:  # a week starting on the date overlaps the grid's next week more
        advice = (
            f"each row's week overlaps the next grid week more: move them to the grid's week "
            f"starts with frame.index + pd.Timedelta(days={7 - offset}) (in a file: every "
            f"date {7 - offset} day(s) later; the row of "
            f"{first.date()} then counts for the week from "
            f"{(held + pd.Timedelta(days=7)).date()})"
        )
    else:
        advice = (
            "each row's week overlaps most with the grid week it counts for, and frame.index - "
            f"pd.Timedelta(days={offset}) puts them on the grid's week starts without "
            "changing that"
        )
    warnings.warn(
        f"calendar covariates: all {days.size} rows are dated on a {first.day_name()}, "
        f"while the grid's weeks start on a {start.day_name()} (weeks from {grid.origin}). "
        f"A row counts for the week that holds its date: the row dated {first.date()} "
        f"counts for the week {held.date()} to {(held + pd.Timedelta(days=6)).date()}. If "
        "the dates are the first days of the weeks they describe (as in CLVTools' "
        f"covariate files), {advice}. Rows indexed by the grid's week starts "
        "(calendar_rfm(...).periods['start']) raise no warning.",
        CalendarWarning,
        skip_file_prefixes=(_PACKAGE,),
    )


# --- the PyMC side ---------------------------------------------------------------------


def _scaled(prior: Prior, factor: float) -> Prior:
    """``prior`` with its scale multiplied by ``factor`` (HalfNormal/Normal ``sigma``)."""
    if factor == 1.0 or "sigma" not in prior.parameters:
        return prior
    params = dict(prior.parameters)
    params["sigma"] = float(params["sigma"]) * factor
    return Prior(prior.distribution, **params, dims=prior.dims, transform=prior.transform)


def time_effect(grid: Any, options: TimeEffects, data: Any) -> Any:
    """Create the time-effect variables in the current model and return ``f`` (P,).

    Variables: ``level_sigma``, ``noise_sigma`` (per period of the grid's unit;
    deterministic, sampled as ``time_effect_scale_radius`` and ``time_effect_scale_angle``:
    :func:`_process_scales`), ``time_effect_z`` (the walk's coordinates in the sine
    basis), ``free_effect`` (the
    free periods), ``calendar_coefficient`` (dims ``calendar_covariate``) and the
    deterministic ``time_effect`` (dims ``period``): the centred log multiplier of every
    calibration period. ``data`` supplies the data-dependent arrays (the level's weights,
    the information about each coordinate, the covariates) through ``data.derived`` (so a
    compiled model can take new data).

    The walk's coordinates and the free effects are partially centred by how much the
    data say about them (:func:`clvbayes.math.calendar.partially_centred`, with the
    information of :func:`clvbayes.math.calendar.walk_information`): ``time_effect_z`` and
    ``free_effect`` are the sampled coordinates, not standard normal. Non-centred, a
    large log's well-informed weeks tie every coordinate to the two scales (CDNOW master:
    13.7 leapfrog steps per draw and divergences); partially centred, 7.1 and none.
    """
    import pymc as pm
    import pytensor.tensor as pt

    n_periods, n_free = grid.n_periods, grid.n_free
    weeks = grid.days_per_unit / 7.0
    priors = options.priors
    s_level, s_noise = _process_scales(
        _scaled(priors["level_sigma"], np.sqrt(weeks)),
        _scaled(priors["noise_sigma"], 1.0 / np.sqrt(weeks)),
    )
    n_diff = n_periods - n_free - 1
    V, s = difference_basis(n_diff)
    information = data.derived(
        "time_effect_information", lambda d: walk_information(_grid_of(d).counts, n_free)
    )
    scale = pt.sqrt(s_level**2 + 4.0 * s_noise**2 * s)
    unit = PATH_UNIT / np.sqrt(weeks)  # per period, scaled like the noise
    sd, factor = partially_centred(scale, information[:n_diff], unit)
    z = pm.Normal("time_effect_z", 0.0, sd, shape=n_diff)
    start_unjittered(z)
    walk = pt.concatenate([pt.zeros(1), pt.cumsum(pt.dot(V, factor * z))])
    parts = [walk]
    if n_free:
        free_sigma = priors["free_sigma"].create_variable("free_sigma")
        sd, factor = partially_centred(free_sigma, information[n_diff:], unit)
        free_raw = pm.Normal("free_effect", 0.0, sd, shape=n_free)
        # free_sigma starts jittered: when no free period holds a repeat purchase (a
        # single cohort acquired on the first period's last day, e.g. CLVTools' apparel
        # log) its effects are non-centred, and at the support point (the HalfNormal's
        # scale, effects 0) its gradient is exactly 0, a start nutpie refuses
        start_unjittered(free_raw)
        free = free_raw * factor
        parts = [free, walk]
    f = pt.concatenate(parts) if len(parts) > 1 else walk
    if grid.covariate_names:
        gamma = Prior(
            priors["calendar_coefficient"].distribution,
            **priors["calendar_coefficient"].parameters,
            dims=("calendar_covariate",),
        ).create_variable("calendar_coefficient")
        z_cal = data.derived(
            "calendar_covariates", lambda d: d.extras["calendar"].covariates[:n_periods]
        )
        f = f + pt.dot(z_cal, gamma)
    weights = data.derived("calendar_weights", lambda d: _weights(d.extras["calendar"]))
    f = f - (f * weights).sum()
    return pm.Deterministic("time_effect", f, dims="period")


def _process_scales(level: Prior, noise: Prior) -> tuple[Any, Any]:
    """Create ``level_sigma`` and ``noise_sigma`` with the priors ``level`` and ``noise``
    (per period) in the current model and return them.

    Sampled in the polar coordinates of :func:`clvbayes.math.calendar.polar_scales`
    (free ``time_effect_scale_radius`` and ``time_effect_scale_angle``; the scales are
    deterministic, their prior density times the Jacobian a potential), starting
    unjittered at the priors' support points. The prior and the posterior of the scales
    do not change, only NUTS' geometry: the scales traded along a curved ridge the data
    leave (CDNOW master, 6 seeds of 4 x (1,000 + 1,000): divergences in 5 fits against
    none, minimum bulk ESS 2,174-2,832 against 2,840-3,821). Priors that are not a plain
    distribution with fixed numbers (a transform, dims, a prior as a parameter) are
    sampled directly, as they are.
    """
    import pymc as pm
    from pymc.distributions.distribution import support_point

    dists = [_plain_distribution(prior) for prior in (level, noise)]
    if any(d is None for d in dists):
        scales = level.create_variable("level_sigma"), noise.create_variable("noise_sigma")
        start_unjittered(*scales)
        return scales
    start = polar_start(*(float(support_point(d).eval()) for d in dists))
    radius = pm.Flat("time_effect_scale_radius", initval=start[0])
    angle = pm.Flat("time_effect_scale_angle", initval=start[1])
    start_unjittered(radius, angle)
    s_level, s_noise, log_jacobian = polar_scales(radius, angle)
    s_level = pm.Deterministic("level_sigma", s_level)
    s_noise = pm.Deterministic("noise_sigma", s_noise)
    pm.Potential(
        "time_effect_scales_prior",
        pm.logp(dists[0], s_level) + pm.logp(dists[1], s_noise) + log_jacobian,
    )
    return s_level, s_noise


def _plain_distribution(prior: Prior) -> Any:
    """``prior`` as an unregistered PyMC distribution, or None unless it is a plain
    distribution with fixed numbers (no transform, dims or priors as parameters)."""
    if prior.transform is not None or prior.dims:
        return None
    if not all(isinstance(v, numbers.Real) for v in prior.parameters.values()):
        return None
    return prior.pymc_distribution.dist(**prior.parameters)


def _weights(grid: CalendarGrid) -> np.ndarray:
    """The centring weights: the calibration's repeat purchases per period (the
    exposure where there are none), summing to 1."""
    w = grid.counts if grid.counts.sum() > 0 else grid.exposure
    return np.asarray(w, dtype=float) / float(np.sum(w))


def operational_columns(f: Any, grid: CalendarGrid, block: Any) -> tuple[Any, Any]:
    """The operational-time ``recency`` (per row) and ``T`` (a Factor over ``T``'s levels)
    of a block of compressed rows under the log multipliers ``f`` (numpy or PyTensor).

    A row first seen at ``c = G - T`` has ``M(T) = C(G) - C(c)`` (one value per level of
    ``T``) and ``M(t_x) = C(c + t_x) - C(c)``. The rows' grid positions are read from the
    data through ``block.derived`` (inputs of a compiled model that takes new data).
    """
    n = grid.n_periods

    def starts(d: Any) -> GridPositions:
        return positions(_grid_of(d).grid_end - d.factor("T").levels, n)

    def row_ends(d: Any) -> GridPositions:
        end = _grid_of(d).grid_end
        return positions(end - d.factor("T").values + d.factor("recency").values, n)

    at_start = GridPositions(
        block.derived("clock_start_index", lambda d: starts(d).index),
        block.derived("clock_start_fraction", lambda d: starts(d).fraction),
    )
    at_row = GridPositions(
        block.derived("clock_recency_index", lambda d: row_ends(d).index),
        block.derived("clock_recency_fraction", lambda d: row_ends(d).fraction),
    )
    at_end = GridPositions(  # scalars: they broadcast against the rows
        block.derived("clock_end_index", lambda d: positions(_grid_of(d).grid_end, n).index),
        block.derived("clock_end_fraction", lambda d: positions(_grid_of(d).grid_end, n).fraction),
    )
    c_start = clock_at(f, at_start)
    T = block.factor("T")
    c_end = clock_at(f, at_end)
    if getattr(c_end, "ndim", 0) > 0:  # numpy draws (..., P): one end per draw
        c_end = c_end[..., None]
    m_T = Factor(c_end - c_start, T.index, n_levels=T.levels.shape[-1])
    m_tx = clock_at(f, at_row) - c_start[..., T.index]
    return m_tx, m_T


def _grid_of(data: Any) -> CalendarGrid:
    """The calendar grid of compressed data (a segment block carries its parent's)."""
    return data.extras["calendar"]


# --- what a spec with time effects does with its options and data ----------------------


def check_time_effects(value: Any, family: Any) -> TimeEffects | None:
    """A spec's ``time_effects=`` option as :class:`TimeEffects` (or None), refused for
    families whose dropout is no function of purchases (no change of clock)."""
    options = TimeEffects.coerce(value)
    if options is not None and not getattr(family, "clock_change", False):
        raise ValueError(
            f"{family.kind}: calendar-time effects are a change of clock only for models "
            "whose dropout happens at purchases (BGNBD, MBGNBD); the Pareto/NBD's "
            "lifetime runs in calendar time and the Gamma-Gamma models spend, so "
            "time_effects is not available here. Use BGNBD(time_effects=True)."
        )
    return options


def time_effect_names(options: TimeEffects | None, data: Any = None) -> list[str]:
    """Posterior variables of the process (they depend on the data's grid: free periods,
    covariates; without data, all that may occur)."""
    if options is None:
        return []
    grid = None if data is None else data.extras.get("calendar")
    names = ["time_effect", "level_sigma", "noise_sigma"]
    if grid is None or grid.n_free:
        names.append("free_sigma")
    if grid is None or grid.covariate_names:
        names.append("calendar_coefficient")
    return names


def split_calendar(rfm: Any, options: TimeEffects | None, kind: str) -> tuple[Any, Any]:
    """``(customer table, calendar or None)`` of a spec's input; a clear error when time
    effects are asked for without a calendar."""
    if isinstance(rfm, CalendarRFM):
        return rfm.customers, rfm
    if options is not None:
        raise TypeError(
            f"{kind}(time_effects=...) needs the calendar of the data: build it with "
            "clvbayes.calendar_rfm(transactions, customer_col=..., date_col=..., "
            "calibration_end=...) instead of rfm_summary."
        )
    return rfm, None


def attach_calendar(data: Any, options: TimeEffects | None, calendar: Any, keep: np.ndarray) -> Any:
    """Compressed ``data`` with the calendar grid the time effects are fitted on (the
    customers ``keep`` of ``calendar``); unchanged without time effects."""
    if options is None:
        return data
    grid = prepare_grid(calendar.grid(keep), options, calendar.first_position[keep])
    return dataclasses.replace(data, extras={**data.extras, "calendar": grid})
