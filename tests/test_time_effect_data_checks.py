"""A fit with calendar-time effects meets data: what it records, what it refuses and what
its displays show (the data its grid cannot place, the calibration's covariate values,
the future covariates of every prediction)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvbayes
from clvbayes import BGNBD, TimeEffects, calendar_rfm

KW = dict(customer_col="customer_id", date_col="date", value_col="value")
PERIOD = dict(calibration_end="1997-09-30", observation_end="1998-06-30")


@pytest.fixture(scope="module")
def log(cdnow_sample_log) -> pd.DataFrame:
    return cdnow_sample_log


@pytest.fixture(scope="module")
def weekly(cdnow_sample_calendar):
    return cdnow_sample_calendar


@pytest.fixture(scope="module")
def fit(weekly):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BGNBD(time_effects=True).fit(weekly, method="map", seed=1, progressbar=False)


@pytest.fixture(scope="module")
def holidays(weekly) -> pd.DataFrame:
    """A covariate for every period of the calibration and the holdout."""
    starts = pd.to_datetime(weekly.periods["start"])
    return pd.DataFrame({"holiday": (np.arange(starts.size) % 5 == 0).astype(float)}, starts)


@pytest.fixture(scope="module")
def covariate_fit(weekly, holidays):
    """Fitted with the calibration periods' values only."""
    spec = BGNBD(time_effects=TimeEffects(covariates=holidays.iloc[: weekly.n_periods]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.fit(weekly, method="map", seed=1, progressbar=False)


def test_a_fit_on_calendar_data_records_its_time_unit(cdnow_sample_log, weekly, fit):
    """It was None, so a table in another unit passed unchecked (issue 16 hardening)."""
    assert weekly.attrs["time_unit"] == "W"
    assert fit.time_unit == "W"
    stationary = BGNBD().fit(weekly, method="map", seed=1, progressbar=False)
    assert stationary.time_unit == "W"
    daily = calendar_rfm(cdnow_sample_log, **KW, **PERIOD, time_unit="D")
    with pytest.raises(ValueError, match="days"):
        clvbayes.validate_holdout(stationary, daily, seed=1, n_draws=10)


def test_calendar_data_off_the_fits_grid_are_refused(log, fit):
    """Another unit or another calibration end: the forecast would start on the wrong day
    (before, a daily table doubled the predicted holdout total without a word)."""
    daily = calendar_rfm(log, **KW, **PERIOD, time_unit="D")
    later = calendar_rfm(log, **KW, calibration_end="1997-12-31", observation_end="1998-06-30")
    with pytest.raises(ValueError, match="not on the BGNBD fit's calendar"):
        clvbayes.validate_holdout(fit, daily, seed=1, n_draws=10)
    calls = {
        "p_alive": lambda: clvbayes.p_alive(fit, later),
        "expected_purchases": lambda: clvbayes.expected_purchases(fit, later, 10, seed=1),
        "predict_customers": lambda: clvbayes.predict_customers(fit, later, horizon=10, seed=1),
        "validate_holdout": lambda: clvbayes.validate_holdout(fit, later, seed=1, n_draws=10),
        "period_tracking": lambda: clvbayes.period_tracking(fit, later, seed=1),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"calibration end 1997-12-31\).*1997-09-30") as err:
            call()
        assert "calendar_rfm(..., calibration_end='1997-09-30'" in str(err.value), name


def test_customers_first_seen_before_the_fits_grid_are_refused(weekly, fit):
    """Their start ``G - T`` was clipped to the grid's origin, so every older customer got
    the same operational age."""
    table = weekly.customers.head(5).copy()
    table["T"] = [10.0, 38.0, 42.9, 51.9, 90.9]
    with pytest.raises(ValueError, match=r"3 of 5 customers were first seen before") as err:
        clvbayes.p_alive(fit, table)
    assert "T = 42.9" in str(err.value)
    with pytest.raises(ValueError, match="first seen before"):
        clvbayes.predict_customers(fit, table, horizon=10, seed=1)


def test_a_later_cohort_on_the_same_calibration_end_is_scored_on_the_fits_grid(log, weekly, fit):
    """Customers of another table with the fit's calibration end (a later origin) enter at
    ``c = G - T`` on the fit's grid: the same answers as in the fit's own data."""
    first = log.groupby("customer_id")["date"].min()
    late = first[first >= "1997-02-01"].index
    cohort = calendar_rfm(log[log["customer_id"].isin(late)], **KW, **PERIOD)
    assert cohort.origin != weekly.origin
    own = clvbayes.p_alive(fit, weekly).mean(("chain", "draw")).to_series()
    theirs = clvbayes.p_alive(fit, cohort).mean(("chain", "draw")).to_series()
    np.testing.assert_allclose(theirs.to_numpy(), own.loc[theirs.index].to_numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="from the fit's first day"):
        clvbayes.period_tracking(fit, cohort, seed=1)


def test_calendar_covariates_of_the_calibration_must_be_the_fitted_ones(
    weekly, holidays, covariate_fit
):
    """Rows for calibration periods replaced the fitted values and moved the forecast."""
    future = holidays.iloc[weekly.n_periods :]
    kw = dict(horizon=39, seed=1)
    only_future = clvbayes.calendar_multipliers(covariate_fit, **kw, calendar_covariates=future)
    everything = clvbayes.calendar_multipliers(covariate_fit, **kw, calendar_covariates=holidays)
    pd.testing.assert_frame_equal(only_future, everything)
    changed = holidays.copy()
    changed.iloc[:5, 0] = 1.0 - changed.iloc[:5, 0]
    with pytest.raises(ValueError, match=r"5 row\(s\) for calibration periods differ"):
        clvbayes.calendar_multipliers(covariate_fit, **kw, calendar_covariates=changed)


def test_every_prediction_takes_the_future_calendar_covariates(weekly, holidays, covariate_fit):
    """The missing-covariates error points to ``calendar_covariates=``; every function
    whose window reaches past the fit's covariates accepts it."""
    future = holidays.iloc[weekly.n_periods :]
    customers = weekly.customers.head(50)
    calls = {
        "expected_purchases": lambda **k: clvbayes.expected_purchases(
            covariate_fit, customers, 13, seed=1, **k
        ),
        "p_no_purchase": lambda **k: clvbayes.p_no_purchase(
            covariate_fit, customers, 13, seed=1, **k
        ),
        "purchase_pmf": lambda **k: clvbayes.purchase_pmf(
            covariate_fit, customers, 13, range(3), seed=1, **k
        ),
        "retention_curve": lambda **k: clvbayes.retention_curve(
            covariate_fit, customers, times=[0, 13], seed=1, **k
        ),
        "lapse_risk": lambda **k: clvbayes.lapse_risk(
            covariate_fit, customers, window=13, seed=1, **k
        ),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="calendar covariates are missing"):
            call()
        assert call(calendar_covariates=future) is not None, name


def test_spec_and_fit_displays_show_the_time_effects(weekly, fit, covariate_fit):
    card = BGNBD(time_effects=True)._repr_html_()
    assert "calendar-time effects" in card and "level_sigma" in card
    assert "calendar-time effects" not in BGNBD()._repr_html_()
    assert "time effects over 39 periods" in repr(fit)
    assert "time effects" not in repr(BGNBD().fit(weekly, method="map", seed=1))
    page = covariate_fit._repr_html_()
    assert "39 periods of 1 W from 1997-01-01" in page and "covariates holiday" in page


def test_purchases_on_the_last_day_of_a_daily_grid_count_for_the_period_before(
    cdnow_sample_log, weekly
):
    """On a daily grid ``G`` is the start of the last calibration day, so that day's
    period has no exposure; its purchases (at ``G``) made that day's effect unbounded
    (115 divergences and a forecast that never ended). They count for the day before."""
    daily = calendar_rfm(cdnow_sample_log, **KW, **PERIOD, time_unit="D")
    calibration = daily.periods[daily.periods["calibration"]]
    assert calibration["exposure"].iloc[-1] == 0 and calibration["repeat_purchases"].iloc[-1] > 0
    grid = daily.grid()
    table = calibration["repeat_purchases"].to_numpy(dtype=float)
    assert grid.counts[-1] == 0 and grid.counts.sum() == table.sum()
    np.testing.assert_array_equal(grid.counts[:-2], table[:-2])
    assert grid.counts[-2] == table[-2] + table[-1]
    per_customer = np.bincount(grid.purchases[1], grid.purchases[2], grid.n_periods)
    np.testing.assert_array_equal(per_customer, grid.counts)
    # a weekly grid's last period has exposure (G inside it): nothing moves
    calibration = weekly.periods[weekly.periods["calibration"]]
    np.testing.assert_array_equal(weekly.grid().counts, calibration["repeat_purchases"])


def test_the_multipliers_forecast_of_a_map_fit_has_a_band(fit):
    """A MAP fit has one draw; its forecast used one future path, shown as a line with a
    band of width 0 (the report's multiplier plot and table)."""
    table = clvbayes.calendar_multipliers(fit, horizon=13, seed=1)
    future = table[~table["calibration"]]
    assert len(future) == 13
    assert (future["multiplier_high"] > future["multiplier_low"]).all()
    calibration = table[table["calibration"]]
    np.testing.assert_allclose(calibration["multiplier_low"], calibration["multiplier_high"])
    again = clvbayes.calendar_multipliers(fit, horizon=13, seed=1)
    pd.testing.assert_frame_equal(table, again)


def test_calendar_covariates_of_a_prediction_are_checked_like_the_fits(
    weekly, holidays, covariate_fit
):
    """A frame without a date index gave a raw IndexError (its 1970 'dates' indexed the
    fit's covariates from the end); rows before the grid are ignored, as in the fit."""
    numbered = holidays.iloc[weekly.n_periods :].reset_index(drop=True)
    with pytest.raises(ValueError, match="calendar_covariates: covariates must be indexed by"):
        clvbayes.calendar_multipliers(
            covariate_fit, horizon=13, seed=1, calendar_covariates=numbered
        )
    future = holidays.iloc[weekly.n_periods :]
    early = pd.DataFrame({"holiday": [7.0]}, index=[holidays.index[0] - pd.Timedelta(days=30)])
    kw = dict(horizon=13, seed=1)
    with_early = clvbayes.calendar_multipliers(
        covariate_fit, **kw, calendar_covariates=pd.concat([early, future])
    )
    pd.testing.assert_frame_equal(
        with_early, clvbayes.calendar_multipliers(covariate_fit, **kw, calendar_covariates=future)
    )


def test_the_tracking_bands_of_a_map_fit_hold_its_future_paths_and_counts(weekly, fit):
    """A MAP fit has one draw, and the tracking functions took one draw without
    repeating it: one future path and one Poisson count per period, so every band had
    width 0 and often missed its own mean (e.g. mean 1.76, band 0 to 0)."""
    from clvbayes.ppc import period_tracking, tracking_curve

    table = period_tracking(fit, weekly, seed=1)
    assert (table["predicted_high"] > table["predicted_low"]).all()
    inside = (table["predicted_low"] <= table["predicted_mean"]) & (
        table["predicted_mean"] <= table["predicted_high"]
    )
    assert inside.all()
    curve = tracking_curve(fit, weekly, seed=1)
    holdout = curve[curve["period"] == "holdout"]
    assert (holdout["predicted_high"] > holdout["predicted_low"]).all()
    calibration = curve[curve["period"] == "calibration"]  # the fitted multipliers: known
    np.testing.assert_allclose(calibration["predicted_low"], calibration["predicted_high"])
